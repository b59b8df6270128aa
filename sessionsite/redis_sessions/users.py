"""
Each user's sessions: list them, end one, all but some, or all.

The engine's scripts keep, for every logged-in user, a sorted set of that
user's sessions (see lua/index.lua) in the same atomic steps that create,
rotate, save and delete them. Sessions are named by their key hash (the
SHA-256 of their ID, never the ID itself), which is safe to show and to put
in a form: a user can only ever end sessions listed under their own id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from . import engine, keys
from .connection import get_connection, unavailable_on_error
from .engine import DATA_FIELD_PREFIX, key_prefix


@dataclass(frozen=True)
class UserSession:
    """One of a user's live sessions."""

    key_hash: str
    expires_at: datetime
    data: dict[str, Any]
    # False if a field read is not JSON: data is then empty.
    readable: bool = True


def _index(user_id: object) -> str:
    return f"{key_prefix()}:user:{user_id}"


def sessions_of(user_id: object, *, fields: Sequence[str] = ()) -> list[UserSession]:
    """
    Return the user's live sessions, soonest to expire first, in one round trip.

    fields names the session keys to read from each session (missing ones
    are left out of its data).
    """
    args: list[str | int] = [
        int(engine.clock()),
        key_prefix(),
        *(DATA_FIELD_PREFIX + f for f in fields),
    ]
    with unavailable_on_error():
        rows = get_connection().sessions_of(keys=[_index(user_id)], args=args)
    return [_user_session(row, fields) for row in rows]


def _user_session(row: list[bytes], fields: Sequence[str]) -> UserSession:
    """Return one row of sessions_of.lua, flagged unreadable if a field is not JSON."""
    key_hash = row[0].decode()
    expires_at = datetime.fromtimestamp(float(row[1]), tz=UTC)
    try:
        data = {
            name: json.loads(value)
            for name, value in zip(fields, row[2:], strict=True)
            if value is not None
        }
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors.
        return UserSession(key_hash, expires_at, {}, readable=False)
    return UserSession(key_hash, expires_at, data)


def end_sessions(
    user_id: object,
    *,
    only: Iterable[str] | None = None,
    keep: Iterable[str] = (),
) -> int:
    """
    End the user's sessions named in only, or else all but those in keep.

    Return how many ended. Each ended session leaves a mark for as long as a
    session lives, so that its next request can tell it was ended (ended()).
    """
    which, named = ("only", list(only)) if only is not None else ("except", list(keep))
    args: list[str | int] = [
        int(engine.clock()),
        key_prefix(),
        settings.SESSION_COOKIE_AGE,
        which,
        *named,
    ]
    with unavailable_on_error():
        return int(get_connection().end_sessions(keys=[_index(user_id)], args=args))


def was_ended(session_key: str) -> bool:
    """Return True if the session was ended by end_sessions() lately."""
    verified = keys.verify(session_key)
    if verified is None:
        return False
    with unavailable_on_error():
        mark = f"{key_prefix()}:ended:{keys.key_hash(verified)}"
        return bool(get_connection().client.exists(mark))


def user_of(key_hash: str) -> str | None:
    """Return the id of the user a session (named by its key hash) belongs to."""
    with unavailable_on_error():
        raw = get_connection().client.hget(
            f"{key_prefix()}:{key_hash}", DATA_FIELD_PREFIX + "_auth_user_id"
        )
    return None if raw is None else str(json.loads(raw))


def count_sessions() -> int:
    """Count the sessions in Redis with SCAN, which never blocks the server."""
    client = get_connection().client
    with unavailable_on_error():
        return sum(1 for _ in client.scan_iter(match=f"{key_prefix()}:*", _type="HASH"))
