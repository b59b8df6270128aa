"""What the views do, as plain functions of the request's parts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils import timezone

from sessionsite.redis_sessions import keys
from sessionsite.redis_sessions.engine import SessionStore

VISITS = "visits"
SIGNED_IN_AT = "signed_in_at"


@dataclass(frozen=True)
class SessionFacts:
    signed_in_at: datetime | None
    expires_at: datetime
    redis_key: str | None


# An absolute path on this site: one leading slash, then no backslash, no
# control character or space, and no slash or backslash in disguise (%2F, %5C).
_LOCAL_PATH = re.compile(r"/(?![/\\])(?:(?!%2[fF]|%5[cC])[^\\\x00-\x20\x7f])*")


def is_local_path(url: str) -> bool:
    """Return True if url is a plain absolute path on this site."""
    return _LOCAL_PATH.fullmatch(url) is not None


def client_ip(request: HttpRequest) -> str | None:
    """
    Return the client's IP address.

    Behind the TLS proxy that DJANGO_BEHIND_TLS_PROXY declares, that is the
    last address in X-Forwarded-For: the one the proxy itself appended.
    Anywhere else X-Forwarded-For is the client's word and is ignored.
    """
    if settings.BEHIND_TLS_PROXY:
        forwarded: str = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if last := forwarded.rsplit(",", 1)[-1].strip():
            return last
    remote_addr: str | None = request.META.get("REMOTE_ADDR")
    return remote_addr


def log_in(*, request: HttpRequest, user: User) -> None:
    """Log the user in under a new session key and note when."""
    # login() keeps the key when the same user logs in again; a new login
    # always gets a new key (OWASP ASVS 5.0, 7.2.4).
    request.session.cycle_key()
    login(request, user)
    request.session[SIGNED_IN_AT] = timezone.now().isoformat()


def log_out(*, request: HttpRequest) -> None:
    """End the session: its data gone from Redis, the user logged out."""
    if isinstance(request.session, SessionStore):
        # Deletes and reads in one round trip; logout() then reads who is
        # leaving from memory and its flush() has nothing left to delete.
        request.session.load_and_delete()
    logout(request)


def count_visit(*, session: SessionBase) -> int:
    """Add one visit to the session's count and return the new count."""
    if isinstance(session, SessionStore):
        return session.incr(VISITS)
    session[VISITS] = session.get(VISITS, 0) + 1
    return int(session[VISITS])


def session_facts(*, session: SessionBase) -> SessionFacts:
    """Return what the dashboard tells about the session."""
    signed_in_at = session.get(SIGNED_IN_AT)
    redis_key = None
    if isinstance(session, SessionStore) and session.session_key is not None:
        redis_key = keys.redis_key(session.key_prefix, session.session_key)
    return SessionFacts(
        signed_in_at=datetime.fromisoformat(signed_in_at) if signed_in_at else None,
        expires_at=session.get_expiry_date(),
        redis_key=redis_key,
    )
