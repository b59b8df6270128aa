"""Log authentication events, note sign-ins, end the sessions of users who leave."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import (
    user_logged_in,
    user_logged_out,
    user_login_failed,
)
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest

from .services import (
    client_ip,
    end_sessions_of_user_who_left,
    record_sign_in,
    signing_in_async,
)

logger = logging.getLogger("accounts.auth")
# Usernames come from the request as sent: a log line shows this much of one.
LOGGED_USERNAME_LENGTH = 150


def shown(username: object) -> object:
    """Return a username as a log line shows it, cut to LOGGED_USERNAME_LENGTH."""
    if isinstance(username, str) and len(username) > LOGGED_USERNAME_LENGTH:
        return username[:LOGGED_USERNAME_LENGTH] + "..."
    return username


@receiver(user_logged_in)
def note_sign_in(*, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Note the sign-in in the session, whichever way the user logged in."""
    if not signing_in_async.get():
        record_sign_in(request=request, user=user)


@receiver(user_logged_in)
def log_login(*, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    logger.info(
        "login succeeded: user=%r ip=%s", user.get_username(), client_ip(request)
    )


@receiver(user_login_failed)
def log_failed_login(
    *, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django has already masked the password in credentials; only the
    # username is logged.
    ip = client_ip(request) if request is not None else None
    username = shown(credentials.get("username"))
    logger.warning("login failed: user=%r ip=%s", username, ip)


@receiver(user_locked_out)
def log_lockout(
    *, request: HttpRequest, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    logger.warning("login locked out: user=%r ip=%s", shown(username), ip_address)


@receiver(user_logged_out)
def log_logout(*, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    username = user.get_username() if user is not None else None
    logger.info("logout: user=%r ip=%s", username, client_ip(request))


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def end_sessions_of_inactive_user(*, instance: Any, using: str, **kwargs: Any) -> None:
    """End every session of a user who is deactivated, once that is committed."""
    if not instance.is_active:
        _end_sessions_on_commit(instance.pk, using)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def end_sessions_of_deleted_user(*, instance: Any, using: str, **kwargs: Any) -> None:
    _end_sessions_on_commit(instance.pk, using)


def _end_sessions_on_commit(user_id: object, using: str) -> None:
    # After the commit: inside the transaction a Redis outage would roll the
    # user's change back, and a rollback would leave the sessions ended.
    transaction.on_commit(
        partial(end_sessions_of_user_who_left, user_id=user_id), using=using
    )
