"""What the views do, as plain functions of the request's parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
