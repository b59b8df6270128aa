"""
Each user's sessions: list them, end one, all but some, or all.

The engine's scripts keep, for every logged-in user, a sorted set of that
user's sessions scored by expiry, updated in the same atomic steps that
create, rotate and save them. Sessions are named by their key hash (the
SHA-256 of their ID, never the ID itself), which is safe to show and to put
in a form: a user can only ever end sessions that name them.

An entry of a session that was deleted, or whose user changed, stays in the
index until the index is next read (listing and ending drop it) or its
expiry passes (every write prunes expired entries): what these functions
return is always exact.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis
from django.conf import settings

from . import keys
from .connection import get_async_connection, get_connection, unavailable_on_error
from .engine import DATA_FIELD_PREFIX, USER_FIELD, encode, is_wrong_type
from .keys import KeyNames

# Keys that count_sessions() asks SCAN for, and then Redis about, at a time.
SCAN_BATCH = 1000
# The latest expiry a UserSession can say, in Unix time: the last second of
# the year 9999.
_LATEST = datetime.max.replace(tzinfo=UTC).timestamp() - 1


@dataclass(frozen=True)
class UserSession:
    """One of a user's live sessions."""

    key_hash: str
    expires_at: datetime
    data: dict[str, Any]
    # False if a field read is not JSON: data is then empty.
    readable: bool = True


def _user_args(user_id: object) -> list[str | bytes]:
    """Return the scripts' arguments that say which user a session must name."""
    return [USER_FIELD, encode(str(user_id))]


def _listed(names: KeyNames, user_id: object) -> list[str]:
    """Return the names in the user's index (one round trip)."""
    try:
        with unavailable_on_error():
            members = get_connection().client.zrange(names.index(str(user_id)), 0, -1)
    except redis.ResponseError as exc:
        return _none_if_wrong_type(exc)
    return _names(cast(list[bytes], members))


async def _alisted(names: KeyNames, user_id: object) -> list[str]:
    client = (await get_async_connection()).client
    try:
        with unavailable_on_error():
            members = await client.zrange(names.index(str(user_id)), 0, -1)
    except redis.ResponseError as exc:
        return _none_if_wrong_type(exc)
    return _names(cast(list[bytes], members))


def _names(members: list[bytes]) -> list[str]:
    """Return the index's members as text; _theirs() drops those not ours."""
    # A key hash is ASCII: a member that is not keeps a replacement
    # character, which no key hash has.
    return [member.decode(errors="replace") for member in members]


def _none_if_wrong_type(exc: redis.ResponseError) -> list[str]:
    """List nothing for an index key of another type; raise anything else."""
    # Not written by the engine (corrupted data): the next write of one of
    # the user's sessions replaces it (lua/common.lua).
    if not is_wrong_type(exc):
        raise exc
    return []


def _theirs(user_id: object, members: Iterable[str]) -> list[str]:
    """Return the members that can name one of the user's sessions (keys.py)."""
    names = keys.names()
    return [m for m in members if names.user_may_own(str(user_id), m)]


def sessions_of(user_id: object, *, fields: Sequence[str] = ()) -> list[UserSession]:
    """
    Return the user's live sessions, soonest to expire first.

    fields names the session keys to read from each session (missing ones
    are left out of its data). Two round trips: the index, then the
    sessions it names (a script must be told every key it reads).
    """
    names = keys.names()
    members = _theirs(user_id, _listed(names, user_id))
    if not members:
        return []
    redis_keys, args = _sessions_of_call(names, user_id, fields, members)
    with unavailable_on_error():
        connection = get_connection()
        rows = connection.call(connection.sessions_of, redis_keys, args)
    return [_user_session(row, fields) for row in rows]


async def asessions_of(
    user_id: object, *, fields: Sequence[str] = ()
) -> list[UserSession]:
    names = keys.names()
    members = _theirs(user_id, await _alisted(names, user_id))
    if not members:
        return []
    redis_keys, args = _sessions_of_call(names, user_id, fields, members)
    connection = await get_async_connection()
    with unavailable_on_error():
        rows = await connection.call(connection.sessions_of, redis_keys, args)
    return [_user_session(row, fields) for row in rows]


def _sessions_of_call(
    names: KeyNames, user_id: object, fields: Sequence[str], members: list[str]
) -> tuple[list[str], list[str | int | bytes]]:
    """Return the keys and arguments of sessions_of.lua."""
    args: list[str | int | bytes] = [
        *_user_args(user_id),
        len(fields),
        *(DATA_FIELD_PREFIX + f for f in fields),
        *members,
    ]
    return [names.index(str(user_id)), *map(names.session, members)], args


def _user_session(row: list[bytes], fields: Sequence[str]) -> UserSession:
    """Return one row of sessions_of.lua, flagged unreadable if a field is not JSON."""
    key_hash = row[0].decode()
    # A TTL set around the engine may end past what a datetime holds.
    expires_at = datetime.fromtimestamp(min(float(row[1]), _LATEST), tz=UTC)
    try:
        data = {
            name: json.loads(value)
            for name, value in zip(fields, row[2:], strict=True)
            if value is not None
        }
    # UnicodeDecodeError and JSONDecodeError are ValueErrors; a value nested
    # past the recursion limit can only be written around the engine.
    except (ValueError, RecursionError):
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
    session lives, so that its next request can tell it was ended
    (was_ended()). Ending named sessions takes one round trip; ending all
    but some takes two (the index is read first).
    """
    names = keys.names()
    if only is not None:
        members = _theirs(user_id, only)
    else:
        kept = set(keep)
        members = [m for m in _listed(names, user_id) if m not in kept]
        members = _theirs(user_id, members)
    if not members:
        return 0
    redis_keys, args = _end_sessions_call(names, user_id, members)
    connection = get_connection()
    with unavailable_on_error():
        return int(connection.run(connection.end_sessions, redis_keys, args, auth=True))


async def aend_sessions(
    user_id: object,
    *,
    only: Iterable[str] | None = None,
    keep: Iterable[str] = (),
) -> int:
    names = keys.names()
    if only is not None:
        members = _theirs(user_id, only)
    else:
        kept = set(keep)
        members = [m for m in await _alisted(names, user_id) if m not in kept]
        members = _theirs(user_id, members)
    if not members:
        return 0
    redis_keys, args = _end_sessions_call(names, user_id, members)
    connection = await get_async_connection()
    with unavailable_on_error():
        return int(
            await connection.run(connection.end_sessions, redis_keys, args, auth=True)
        )


def _end_sessions_call(
    names: KeyNames, user_id: object, members: list[str]
) -> tuple[list[str], list[str | int | bytes]]:
    """Return the keys and arguments of end_sessions.lua."""
    redis_keys = [names.index(str(user_id))]
    for member in members:
        redis_keys += [names.session(member), names.ended(member)]
    return redis_keys, [*_user_args(user_id), settings.SESSION_COOKIE_AGE, *members]


def was_ended(session_key: str) -> bool:
    """Return True if the session was ended by end_sessions() lately."""
    mark = _ended_mark(session_key)
    if mark is None:
        return False
    with unavailable_on_error():
        return bool(get_connection().client.exists(mark))


async def awas_ended(session_key: str) -> bool:
    mark = _ended_mark(session_key)
    if mark is None:
        return False
    client = (await get_async_connection()).client
    with unavailable_on_error():
        return bool(await client.exists(mark))


def _ended_mark(session_key: str) -> str | None:
    """Return the key of the mark that end_sessions() leaves, or None if forged."""
    verified = keys.verify(session_key)
    return None if verified is None else keys.names().ended(keys.key_hash(verified))


def user_of(key_hash: str) -> str | None:
    """Return the id of the user a session (named by its key hash) belongs to."""
    names = keys.names()
    if not names.is_key_hash(key_hash):
        return None
    try:
        with unavailable_on_error():
            raw = get_connection().client.hget(names.session(key_hash), USER_FIELD)
    except redis.ResponseError as exc:
        if not is_wrong_type(exc):
            raise
        return None  # no session: corrupted data
    if raw is None:
        return None
    try:
        user = json.loads(raw)
    except (ValueError, RecursionError):  # not a user id the engine wrote
        return None
    # As login() stores it: anything else names no user (engine._user_of()).
    return user if isinstance(user, str) and user else None


def count_sessions() -> int:
    """
    Count the sessions in Redis with SCAN, which never blocks the server.

    A hash without "m:created" (what a count leaves on a key whose session
    is gone) is none: each batch that SCAN finds is asked in one pipeline.
    """
    client = get_connection().client
    pattern = keys.names().sessions_pattern()
    counted = 0
    with unavailable_on_error():
        hashes = client.scan_iter(match=pattern, _type="HASH", count=SCAN_BATCH)
        for batch in itertools.batched(hashes, SCAN_BATCH, strict=False):
            pipe = client.pipeline(transaction=False)
            for key in batch:
                pipe.hexists(key, "m:created")
            counted += sum(pipe.execute())
    return counted
