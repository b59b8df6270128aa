"""
A session engine that keeps each session in a Redis hash.

Set ``SESSION_ENGINE = "sessionsite.redis_sessions.engine"``. A session lives
at ``<SESSION_REDIS_KEY_PREFIX>:<SHA-256 of its ID, base64url>`` as a hash:

- ``d:<name>`` holds the JSON of ``request.session[name]``;
- ``m:created`` holds the Unix time it was created, so that a session with
  no data still exists;
- the key's TTL is the session's expiry age, refreshed on every write.

A save sends only the fields this request changed, in one Lua script that
writes only if the session still exists, so concurrent requests keep each
other's changes and a logout is never undone. ``cycle_key()`` renames the
hash as part of the next save instead of copying it. The same scripts keep
each logged-in user's index of sessions (lua/index.lua; users.py reads it).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import redis
from django.conf import settings
from django.contrib.sessions.backends.base import (
    CreateError,
    SessionBase,
    UpdateError,
)

from . import keys
from .connection import get_async_connection, get_connection, unavailable_on_error

KEY_PREFIX = "session"
DATA_FIELD_PREFIX = "d:"
CREATED_FIELD = "m:created"

suspicious_logger = logging.getLogger("django.security.SuspiciousSession")

# The engine's clock, for the index's expiry scores; tests replace it.
clock = time.time


def key_prefix() -> str:
    """Return SESSION_REDIS_KEY_PREFIX, or its default."""
    prefix: str = getattr(settings, "SESSION_REDIS_KEY_PREFIX", KEY_PREFIX)
    return prefix


@dataclass(frozen=True)
class _Write:
    """One save, planned: the script's keys and arguments, and what Redis then holds."""

    keys: list[str]
    args: list[str | int | bytes]
    stored: dict[str, bytes]


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _decode(raw: dict[bytes, bytes]) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """Return (session data, stored fields) from a hash, or None if corrupted."""
    data: dict[str, Any] = {}
    stored: dict[str, bytes] = {}
    try:
        for field, value in raw.items():
            name = field.decode()
            if name.startswith(DATA_FIELD_PREFIX):
                name = name.removeprefix(DATA_FIELD_PREFIX)
                data[name] = json.loads(value)
                stored[name] = value
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors.
        return None
    return data, stored


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """Return the dict of a flat [field, value, field, value, ...] reply."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _is_wrong_type(exc: redis.ResponseError) -> bool:
    return str(exc).startswith("WRONGTYPE")


def _is_not_integer(exc: redis.ResponseError) -> bool:
    return "not an integer" in str(exc)


class SessionStore(SessionBase):
    """A session store that keeps each session in a Redis hash."""

    if TYPE_CHECKING:
        # SessionBase's own helpers, which django-stubs does not declare.
        _session_cache: dict[str, Any]

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...

    def __init__(self, session_key: str | None = None) -> None:
        self.key_prefix = key_prefix()
        # Fields as Redis holds them since the last load or save, by name;
        # a save sends only what differs from this.
        self._stored: dict[str, bytes] = {}
        # The session key was made here and Redis does not have it yet.
        self._unsaved_key = False
        # The Redis key this session is moving away from (cycle_key); the
        # next save renames it.
        self._rotate_from: str | None = None
        # This request has already set the TTL (a save or an increment).
        self._ttl_fresh = False
        # This request has already deleted the session from Redis.
        self._deleted = False
        super().__init__(keys.verify(session_key))

    def _validate_session_key(self, key: str | None) -> bool:
        return keys.is_well_formed(key)

    def _get_new_session_key(self) -> str:
        # 165 random bits: the create-if-absent write is the only check needed.
        return keys.new_session_key()

    async def _aget_new_session_key(self) -> str:
        return keys.new_session_key()

    @property
    def key_hash(self) -> str | None:
        """Return the session's name in Redis (a hash of its ID), or None."""
        if self.session_key is None:
            return None
        return keys.key_hash(self.session_key)

    def _redis_key(self, session_key: str | None = None) -> str:
        key = session_key or self.session_key
        assert key is not None
        return keys.redis_key(self.key_prefix, key)

    # Loading

    def load(self) -> dict[str, Any]:
        """Return the session's data, or {} (and no key) if it is gone."""
        client = get_connection().client
        with unavailable_on_error():
            try:
                raw = cast(dict[bytes, bytes], client.hgetall(self._redis_key()))
            except redis.ResponseError as exc:
                if not _is_wrong_type(exc):
                    raise
                raw = None
        return self._apply_loaded(raw)

    async def aload(self) -> dict[str, Any]:
        client = get_async_connection().client
        with unavailable_on_error():
            try:
                raw = cast(dict[bytes, bytes], await client.hgetall(self._redis_key()))
            except redis.ResponseError as exc:
                if not _is_wrong_type(exc):
                    raise
                raw = None
        return self._apply_loaded(raw)

    def _apply_loaded(self, raw: dict[bytes, bytes] | None) -> dict[str, Any]:
        decoded = None if raw is None else _decode(raw)
        if decoded is None:
            suspicious_logger.warning("Session data corrupted")
        if not raw or decoded is None:
            self._session_key = None
            self._stored = {}
            return {}
        data, self._stored = decoded
        return data

    def exists(self, session_key: str) -> bool:
        """Return True if the given session_key already exists."""
        verified = keys.verify(session_key)
        if verified is None:
            return False
        with unavailable_on_error():
            return bool(get_connection().client.exists(self._redis_key(verified)))

    async def aexists(self, session_key: str) -> bool:
        verified = keys.verify(session_key)
        if verified is None:
            return False
        client = get_async_connection().client
        with unavailable_on_error():
            return bool(await client.exists(self._redis_key(verified)))

    # Saving

    def create(self) -> None:
        """Save the session under a new key; raise CreateError if it is taken."""
        self._start_new_key()
        self.save(must_create=True)
        self.modified = True

    async def acreate(self) -> None:
        self._start_new_key()
        await self.asave(must_create=True)
        self.modified = True

    def _start_new_key(self) -> None:
        self._session_key = keys.new_session_key()
        self._unsaved_key = True
        self._rotate_from = None
        self._deleted = False

    def save(self, must_create: bool = False) -> None:
        """
        Write what this request changed, in one round trip.

        Raise CreateError if must_create and the key is taken, UpdateError if
        the session was deleted meanwhile (a concurrent logout, say).
        """
        if self.session_key is None:
            return self.create()
        write = self._plan_save(self._get_session(no_load=must_create), must_create)
        if write is None:
            return
        with unavailable_on_error():
            result = get_connection().save(keys=write.keys, args=write.args)
        self._finish_save(write, result)

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        data = await self._aget_session(no_load=must_create)
        write = self._plan_save(data, must_create)
        if write is None:
            return
        with unavailable_on_error():
            result = await get_async_connection().save(keys=write.keys, args=write.args)
        self._finish_save(write, result)

    def _plan_save(self, data: dict[str, Any], must_create: bool) -> _Write | None:
        encoded = {}
        for name, value in data.items():
            if not isinstance(name, str):
                raise TypeError(f"Session keys must be strings, not {name!r}.")
            encoded[name] = _encode(value)
        ttl = self.get_expiry_age()
        mode: Literal["create", "update", "rotate"]
        key = self._redis_key()
        # KEYS[2] is where the session comes from: itself, but for a rotation.
        if must_create or (self._unsaved_key and self._rotate_from is None):
            mode, redis_keys, stored = "create", [key, key], {}
        elif self._unsaved_key:
            assert self._rotate_from is not None
            mode, redis_keys, stored = "rotate", [key, self._rotate_from], self._stored
        else:
            mode, redis_keys, stored = "update", [key, key], self._stored
        changed = {n: v for n, v in encoded.items() if stored.get(n) != v}
        deleted = [n for n in stored if n not in encoded]
        if mode == "update" and not changed and not deleted and self._ttl_fresh:
            return None
        now = int(clock())
        pairs: list[str | int | bytes] = []
        if mode == "create":
            pairs += [CREATED_FIELD, now]
        for name, value in changed.items():
            pairs += [DATA_FIELD_PREFIX + name, value]
        args: list[str | int | bytes] = [
            mode, ttl, now, self.key_prefix, len(pairs) // 2, *pairs
        ]  # fmt: skip
        args += [DATA_FIELD_PREFIX + name for name in deleted]
        return _Write(redis_keys, args, encoded)

    def _finish_save(self, write: _Write, result: int) -> None:
        if result == -1:
            raise CreateError(f"Session key {write.keys[0]} is already taken.")
        if result == 0:
            raise UpdateError("The session was deleted before it could be saved.")
        self._stored = write.stored
        self._unsaved_key = False
        self._rotate_from = None
        self._ttl_fresh = True

    def cycle_key(self) -> None:
        """
        Give the session a new key, keeping its data.

        The new key is written, and the old one renamed to it, by the next
        save: one round trip, and none if the response is an error.
        """
        self._get_session()
        self._move_to_new_key()

    async def acycle_key(self) -> None:
        await self._aget_session()
        self._move_to_new_key()

    def _move_to_new_key(self) -> None:
        if self.session_key is not None and not self._unsaved_key:
            self._rotate_from = self._redis_key()
        self._session_key = keys.new_session_key()
        self._unsaved_key = True
        self.modified = True

    # Counting

    def incr(self, key: str, amount: int = 1) -> int:
        """
        Add amount to the integer at key (absent counts as 0), atomically.

        Return the new value. It costs one round trip on a stored session and
        none on one that is not saved yet; concurrent increments never lose
        a count. Raise TypeError if the value is not an integer, UpdateError
        if the session was deleted meanwhile.
        """
        session = self._get_session()
        local = self._incr_locally(session, key, amount)
        if local is not None:
            return local
        connection = get_connection()
        args = self._incr_args(key, amount)
        with unavailable_on_error():
            try:
                result = connection.incr(keys=[self._redis_key()], args=args)
            except redis.ResponseError as exc:
                if not _is_not_integer(exc):
                    raise
                raise TypeError(f"Session value {key!r} is not an integer.") from exc
        return self._finish_incr(session, key, result)

    async def aincr(self, key: str, amount: int = 1) -> int:
        session = await self._aget_session()
        local = self._incr_locally(session, key, amount)
        if local is not None:
            return local
        connection = get_async_connection()
        args = self._incr_args(key, amount)
        with unavailable_on_error():
            try:
                result = await connection.incr(keys=[self._redis_key()], args=args)
            except redis.ResponseError as exc:
                if not _is_not_integer(exc):
                    raise
                raise TypeError(f"Session value {key!r} is not an integer.") from exc
        return self._finish_incr(session, key, result)

    def _incr_args(self, key: str, amount: int) -> list[str | int]:
        ttl, now = self.get_expiry_age(), int(clock())
        return [DATA_FIELD_PREFIX + key, amount, ttl, now, self.key_prefix]

    def _incr_locally(
        self, session: dict[str, Any], key: str, amount: int
    ) -> int | None:
        """Apply an increment that Redis need not see yet; else return None."""
        current = session.get(key, 0)
        if not isinstance(current, int) or isinstance(current, bool):
            raise TypeError(f"Session value {key!r} is not an integer.")
        local = _encode(current) if key in session else None
        changed_here = self._stored.get(key) != local
        if self.session_key is not None and not self._unsaved_key and not changed_here:
            return None
        self[key] = current + amount
        return current + amount

    def _finish_incr(
        self, session: dict[str, Any], key: str, result: int | None
    ) -> int:
        if result is None:
            raise UpdateError("The session was deleted before it could be saved.")
        session[key] = result
        self._stored[key] = _encode(result)
        self._ttl_fresh = True
        self.modified = True
        return result

    # Deleting

    def delete(self, session_key: str | None = None) -> None:
        """Delete the session under this key (by default, the current one)."""
        redis_keys = self._keys_to_delete(session_key)
        if redis_keys:
            with unavailable_on_error():
                get_connection().delete(keys=redis_keys, args=self._delete_args())

    async def adelete(self, session_key: str | None = None) -> None:
        redis_keys = self._keys_to_delete(session_key)
        if redis_keys:
            with unavailable_on_error():
                await get_async_connection().delete(
                    keys=redis_keys, args=self._delete_args()
                )

    def _delete_args(self) -> list[str | int]:
        return [int(clock()), self.key_prefix]

    def _keys_to_delete(self, session_key: str | None) -> list[str]:
        if session_key is not None:
            verified = keys.verify(session_key)
            if verified is None:
                return []
            if verified != self.session_key:
                return [self._redis_key(verified)]
        if self.session_key is None or self._deleted:
            return []
        redis_keys = [] if self._unsaved_key else [self._redis_key()]
        if self._rotate_from is not None:
            redis_keys.append(self._rotate_from)
        self._deleted = True
        self._rotate_from = None
        return redis_keys

    def load_and_delete(self) -> None:
        """
        Delete the session, keeping its data readable for this request.

        One round trip where load() then delete() take two, for logout, which
        must read who is leaving before it flushes.
        """
        if hasattr(self, "_session_cache") or self.session_key is None:
            self.delete()
            return
        redis_keys = self._keys_to_delete(None)
        with unavailable_on_error():
            flat = get_connection().delete(keys=redis_keys, args=self._delete_args())
        self._session_cache = self._apply_loaded(_pairs(flat))
        self.accessed = True

    async def aload_and_delete(self) -> None:
        if hasattr(self, "_session_cache") or self.session_key is None:
            await self.adelete()
            return
        redis_keys = self._keys_to_delete(None)
        with unavailable_on_error():
            flat = await get_async_connection().delete(
                keys=redis_keys, args=self._delete_args()
            )
        self._session_cache = self._apply_loaded(_pairs(flat))
        self.accessed = True

    @classmethod
    def clear_expired(cls) -> None:
        """Do nothing: Redis expires sessions by their TTL."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """Do nothing: Redis expires sessions by their TTL."""
