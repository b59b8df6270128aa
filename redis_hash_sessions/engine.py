"""
A session engine that keeps each session in a Redis hash.

Set ``SESSION_ENGINE = "redis_hash_sessions.engine"``. A session lives
at ``<SESSION_REDIS_KEY_PREFIX>:<SHA-256 of its ID, base64url>`` (through the
cache entry's key function, see keys.py) as a hash:

- ``d:<name>`` holds the JSON of ``request.session[name]``;
- ``m:created`` holds the Unix time it was created, so that a session with
  no data still exists;
- ``m:expiry`` holds the rule of a custom expiry (``set_expiry()``), so that
  every write sets the TTL from what Redis holds (lua/common.lua);
- ``m:indexed``, in a signed-in session, notes its entry in its user's
  index, for the count that loads the session (load_and_incr()).

A save sends only the fields this request changed, in one Lua script that
writes only if the session still exists, so concurrent requests keep each
other's changes and a logout is never undone. The same scripts keep each
logged-in user's index of sessions (users.py reads it), which shares a hash
slot with the user's sessions (keys.py): a session that gains a user moves
to a key tagged for that user, so that it works the same on Redis Cluster.
"""

from __future__ import annotations

import enum
import json
import json.scanner
import logging
import math
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import redis
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import (
    CreateError,
    SessionBase,
    UpdateError,
)
from django.utils.functional import cached_property
from django.utils.module_loading import import_string
from redis.exceptions import RedisClusterException

from . import keys
from .connection import (
    RENAME_BACK_LUA,
    AsyncConnection,
    Connection,
    NotReplicated,
    get_async_connection,
    get_connection,
    unavailable_on_error,
)
from .exceptions import RotationInterrupted, SessionStoreUnavailable

DATA_FIELD_PREFIX = "d:"
USER_FIELD = DATA_FIELD_PREFIX + SESSION_KEY
USER_FIELD_BYTES = USER_FIELD.encode()
# Every session holds it: a hash without it is no session (see
# _load_and_incr_commands()).
CREATED_FIELD = b"m:created"
EXPIRY = "_session_expiry"
# The longest expiry the engine takes, about 3,000 years: Redis could keep
# more, but Python's datetime (which Django turns expiries into) ends at the
# year 9999. A longer one is refused before any Redis call.
MAX_EXPIRY_AGE = 10**11
# HINCRBY works on signed 64-bit integers.
INT64 = range(-(2**63), 2**63)
# lua/common.lua's INDEX_SLACK: an index entry is scored up to this many
# seconds past its session's expiry, and a count has a save renew the TTL
# and see to the entry about once in this many seconds, not on every visit.
INDEX_SLACK = 60
# How long the hash lives that a count makes on a key that holds no session.
STRAY_SECONDS = 60
# The m:indexed note, two Unix times (lua/common.lua): more digits than any
# time is not ours, and int() refuses a string of over 4,300.
_INDEX_NOTE = re.compile(rb"(\d{1,15}):(\d{1,15})")

suspicious_logger = logging.getLogger("django.security.SuspiciousSession")
_json_decoder = json.JSONDecoder()
_json_decode = _json_decoder.decode
# The decoder's scanner, called directly: JSONDecoder.decode() wraps it in
# Python that costs more than scanning the short values a session holds
# (typeshed declares the decoder argument as the scanner's own type).
_json_scan = json.scanner.make_scanner(_json_decoder)  # type: ignore[arg-type]

Mode = Literal["create", "update", "rotate"]


class State(enum.Enum):
    """Where the session's key stands with Redis."""

    NEW = "new"  # not in Redis: no key yet, or one made here that a save creates
    STORED = "stored"  # Redis has it, or had it when the cookie was sent
    DELETED = "deleted"  # this store deleted it
    # The cookie's session was renamed by a concurrent request's cycle_key()
    # (the browser gets the new key from that response): this request has no
    # session, and must leave the cookie alone.
    MOVED = "moved"


@dataclass(frozen=True)
class _Write:
    """One save, planned: the script's keys and arguments, and what Redis then holds."""

    keys: list[str]
    args: list[str | int | bytes]
    stored: dict[str, bytes]
    # It signs a user in or out: SESSION_REDIS_WAIT_REPLICAS applies.
    auth: bool = False
    mode: Mode = "update"
    # "rotate": the key hash the session moves from.
    source: str | None = None


# ASCII, as Django's JSONSerializer writes it: a lone surrogate (which a
# request's JSON body can carry) is escaped, not an encoding error. Made
# once: json.dumps() with separators builds an encoder on every call.
_json_encode = json.JSONEncoder(separators=(",", ":")).encode


def encode(value: Any) -> bytes:
    """Return a session value as the hash stores it: JSON, as Django's serializer."""
    # An int (a count) as the encoder writes it, without the encoder:
    # JSONEncoder.encode() builds a C encoder for anything but a string,
    # which adds microseconds to a save for each such value.
    if type(value) is int:
        return int.__repr__(value).encode()
    return _json_encode(value).encode()


def _field_name(name: object) -> str:
    """Return a session key as JSON would name it (1 -> "1"), or raise TypeError."""
    if isinstance(name, str):
        return name
    if name is None or isinstance(name, int | float):
        key: str = next(iter(json.loads(json.dumps({name: 0}))))
        return key
    raise TypeError(f"Session keys must be strings, not {name!r}.")


def _decode(raw: dict[bytes, bytes]) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """Return (session data, stored fields) from a hash, or None if corrupted."""
    data: dict[str, Any] = {}
    stored: dict[str, bytes] = {}
    try:
        for field, value in raw.items():
            name = field.decode()
            if name.startswith(DATA_FIELD_PREFIX):
                name = name.removeprefix(DATA_FIELD_PREFIX)
                data[name] = _json_value(value.decode())
                stored[name] = value
    # UnicodeDecodeError and JSONDecodeError are ValueErrors; a value nested
    # past the recursion limit can only be written around the engine.
    except (ValueError, RecursionError):
        return None
    return data, stored


def _json_value(text: str) -> Any:
    """Return the value of one JSON document; raise ValueError or RecursionError."""
    try:
        value, end = _json_scan(text, 0)
    except StopIteration:  # nothing JSON can start with
        return _json_decode(text)
    # More than one value (or whitespace around it): decode() says which.
    return value if end == len(text) else _json_decode(text)


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """Return the dict of a flat [field, value, field, value, ...] reply."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _session_in(raw: Any) -> dict[bytes, bytes]:
    """Return a session's HGETALL, or {} if the hash holds no session."""
    return cast(dict[bytes, bytes], raw) if CREATED_FIELD in raw else {}


@dataclass(frozen=True)
class _Counted:
    """What a count's commands (_load_and_incr_commands()) answered."""

    value: int | redis.ResponseError  # HINCRBY's
    # The session found: {} for none, an error for a key of another type.
    found: dict[bytes, bytes] | redis.ResponseError
    had_no_ttl: bool  # EXPIRE NX set one
    ttl: int
    now: int  # Redis's clock

    @classmethod
    def of(cls, replies: list[Any]) -> _Counted:
        value, no_ttl, flat, ttl, (now, _) = replies
        if not isinstance(flat, redis.ResponseError):
            # A map under RESP3 (redis-py's default), a flat list under RESP2.
            flat = _session_in(flat if isinstance(flat, dict) else _pairs(flat))
        return cls(value, flat, no_ttl == 1, ttl, int(now))


def _checked_age(age: object, what: str) -> int:
    """
    Return age (seconds) as a whole number, or raise TypeError/ValueError.

    A fraction of a second counts as a whole one; anything already past
    counts as -1 (expired).
    """
    if isinstance(age, bool) or not isinstance(age, int | float):
        raise TypeError(f"{what} must be a number of seconds, not {age!r}.")
    if age > MAX_EXPIRY_AGE:
        raise ValueError(f"{what} of {age} seconds is more than Redis can keep.")
    return max(math.ceil(age), -1)


def _expiry_rule(expiry: object) -> str:
    """Return the m:expiry rule (lua/common.lua) for a _session_expiry value."""
    if not expiry:
        return ""
    if isinstance(expiry, str):
        at = datetime.fromisoformat(expiry).timestamp()
        _checked_age(at - datetime.now().timestamp(), "The session's expiry")
        return f"@{int(at)}"
    return str(_checked_age(expiry, "The session's expiry"))


def is_wrong_type(exc: redis.ResponseError) -> bool:
    """Return True for Redis's error for a key of another type than the command's."""
    return str(exc).startswith("WRONGTYPE")


def _incr_error(exc: redis.ResponseError, key: str) -> Exception:
    """Return the Python error for a failed HINCRBY, or exc if it is not one."""
    if "not an integer" in str(exc):
        return TypeError(f"Session value {key!r} is not an integer.")
    if "overflow" in str(exc):
        return ValueError(f"Session value {key!r} would overflow 64 bits.")
    return exc


def _count_needs_save(counted: _Counted, default_age: int) -> bool:
    """
    Return True if a session that a count loaded needs a save to follow.

    The count leaves the TTL as the last write set it: the save renews it
    once it lags what a write would set by more than INDEX_SLACK seconds
    (a tenth of a shorter age), and sets it when it is longer than that (a
    shorter SESSION_COOKIE_AGE since) or was none; and the save sees to the
    session's entry in its user's index when the m:indexed note
    (lua/common.lua) says that the session would outlive the entry or that
    no write has looked at the entry for INDEX_SLACK seconds (it may have
    been lost with its index). Times are Redis's, as in the note.
    """
    raw, ttl, now = counted.found, counted.ttl, counted.now
    assert isinstance(raw, dict)
    if counted.had_no_ttl:
        return True
    rule = raw.get(b"m:expiry")
    if rule is None:
        wanted: int | None = default_age
    elif rule.startswith(b"@"):  # at a fixed time: what the last write set
        wanted = None
    else:
        try:
            wanted = int(rule)
        except ValueError:  # not one of ours: the save reads it as Lua does
            return True
    if wanted is not None and not (
        wanted - min(INDEX_SLACK, wanted // 10) <= ttl <= wanted
    ):
        return True
    user = raw.get(USER_FIELD_BYTES, b"")
    if not user.startswith(b'"') or user == b'""':  # indexes no user: _index()
        return False
    note = _INDEX_NOTE.fullmatch(raw.get(b"m:indexed", b""))
    if note is None:
        return True
    entry, seen = int(note[1]), int(note[2])
    if entry > now + MAX_EXPIRY_AGE + INDEX_SLACK or seen > now:
        return True  # not a note the engine writes, or another primary's clock
    return entry < now + ttl or now - seen >= INDEX_SLACK


def _check_amount(amount: object) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"The amount must be an integer, not {amount!r}.")
    if amount not in INT64:
        raise ValueError(f"The amount {amount} does not fit in 64 bits.")


def _user_of(data: dict[str, Any]) -> str | None:
    """Return the user a session names, as login() stores it (a string), or None."""
    user = data.get(SESSION_KEY)
    return user if isinstance(user, str) and user else None


class SessionStore(SessionBase):
    """A session store that keeps each session in a Redis hash."""

    if TYPE_CHECKING:
        # SessionBase's own helpers, which django-stubs does not declare.
        _session_cache: dict[str, Any]

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...
        def _validate_session_key(self, key: str | None) -> bool: ...

    def __init__(self, session_key: str | None = None) -> None:
        self.names = keys.names()
        self._state = State.STORED
        # Fields as Redis holds them since the last load or save, by name;
        # a save sends only what differs from this. None: not known (the
        # session was never loaded), so a save replaces every field.
        self._stored: dict[str, bytes] | None = None
        # The key whose TTL this request has set (a save or an increment),
        # or found current (a count, _count_needs_save()): a key taken since
        # (a rotation, even one that failed) has had none.
        self._ttl_set_for: str | None = None
        # A count that loaded the session found its TTL or its entry in its
        # user's index due: the save at the end of the request sees to them.
        self._save_due = False
        # The moved marks that this request's cycle_key() calls left.
        self._moved_marks_left: list[str] = []
        # The session this request left for a key in another hash slot: its
        # key, its moved mark, its fields and TTL (ms), until that key is made.
        self._left_behind: tuple[str, str, dict[bytes, bytes], int] | None = None
        # The mark that says the cookie's session moved, when a load met it:
        # ending this session (a logout) deletes it, so that nothing that
        # moved it puts it back.
        self._moved_from: str | None = None
        # The last key hashed and its hash, since it is named again and again.
        self._hashed: tuple[str, str] | None = None
        # SessionBase.__init__() would also resolve SESSION_SERIALIZER on
        # every request; only encode() and decode() use it (serializer).
        # A cookie enters here: only a validly signed key is taken.
        self._session_key = keys.verify(session_key)
        self.accessed = False
        self.modified = False

    @cached_property
    def serializer(self) -> Any:
        return import_string(settings.SESSION_SERIALIZER)

    def _get_new_session_key(self) -> str:
        # 165 random bits: the create-if-absent write is the only check needed.
        return keys.new_session_key()

    async def _aget_new_session_key(self) -> str:
        return keys.new_session_key()

    @property
    def key_hash(self) -> str | None:
        """Return the session's name in Redis (a hash of its ID), or None."""
        key = self.session_key
        if key is None:
            return None
        if self._hashed is None or self._hashed[0] != key:
            self._hashed = (key, keys.key_hash(key))
        return self._hashed[1]

    def _redis_key(self, session_key: str | None = None) -> str:
        if session_key is None or session_key == self.session_key:
            key_hash = self.key_hash
            assert key_hash is not None
            return self.names.session(key_hash)
        return self.names.session(keys.key_hash(session_key))

    def _trusted(self, session_key: str | None) -> str | None:
        """Return a key given to exists() or delete(), or None if it is no key."""
        if keys.is_well_formed(session_key):
            return keys.verify(session_key)
        return session_key if self._validate_session_key(session_key) else None

    # Loading

    def load(self) -> dict[str, Any]:
        """Return the session's data, or {} (and no key) if it is gone."""
        if self.session_key is None:
            return self._apply_loaded({})
        client = get_connection().client
        with unavailable_on_error():
            try:
                raw = _session_in(client.hgetall(self._redis_key()))
            except redis.ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                raw = None
            # Only a session that is gone costs a second look: did it move?
            moved = raw == {} and bool(client.exists(self._moved_mark()))
        return self._apply_loaded(raw, moved=moved)

    async def aload(self) -> dict[str, Any]:
        if self.session_key is None:
            return self._apply_loaded({})
        client = (await get_async_connection()).client
        with unavailable_on_error():
            try:
                raw = _session_in(await client.hgetall(self._redis_key()))
            except redis.ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                raw = None
            moved = raw == {} and bool(await client.exists(self._moved_mark()))
        return self._apply_loaded(raw, moved=moved)

    def _moved_mark(self) -> str:
        key_hash = self.key_hash
        assert key_hash is not None
        return self.names.moved(key_hash)

    @property
    def moved(self) -> bool:
        """Return True if a concurrent request renamed this request's session."""
        return self._state is State.MOVED

    def _apply_loaded(
        self, raw: dict[bytes, bytes] | None, *, moved: bool = False
    ) -> dict[str, Any]:
        """Take what a load found: a hash, {} for none, None for a wrong type."""
        decoded = None if raw is None else _decode(raw)
        if decoded is None:
            suspicious_logger.warning("Session data corrupted")
        if not raw or decoded is None:
            self._moved_from = self._moved_mark() if moved else None
            self._session_key = None
            self._state = State.MOVED if moved else State.NEW
            self._stored = {}
            return {}
        data, self._stored = decoded
        self._state = State.STORED
        return data

    def exists(self, session_key: str | None) -> bool:
        """Return True if the given session_key already exists."""
        trusted = self._trusted(session_key)
        if trusted is None:
            return False
        redis_key = self._redis_key(trusted)
        with unavailable_on_error():
            try:
                return bool(get_connection().client.hexists(redis_key, CREATED_FIELD))
            except redis.ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                return True  # taken, if by no session: a create there fails

    async def aexists(self, session_key: str | None) -> bool:
        trusted = self._trusted(session_key)
        if trusted is None:
            return False
        redis_key = self._redis_key(trusted)
        client = (await get_async_connection()).client
        with unavailable_on_error():
            try:
                return bool(await client.hexists(redis_key, CREATED_FIELD))
            except redis.ResponseError as exc:
                if not is_wrong_type(exc):
                    raise
                return True

    # Saving

    def create(self) -> None:
        """Save the session under a new key; raise CreateError if it is taken."""
        self._refuse_if_moved()
        self._start_new_key()
        self.save(must_create=True)
        self.modified = True

    async def acreate(self) -> None:
        self._refuse_if_moved()
        self._start_new_key()
        await self.asave(must_create=True)
        self.modified = True

    def _start_new_key(self) -> None:
        self._session_key = keys.new_session_key()
        self._state = State.NEW
        self._stored = {}

    def save(self, must_create: bool = False) -> None:
        """
        Write what this request changed, in one round trip.

        Raise CreateError if must_create and the key is taken, UpdateError if
        the session was deleted meanwhile (a concurrent logout, say).
        """
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        if self.session_key is None:  # loading found the session gone
            return self.create()
        connection = get_connection()
        if (tag := self._tag_to_take(data)) is not None:
            if (leave := self._leave_plan(data)) is not None:
                with unavailable_on_error():
                    self._left(connection, data, leave)
            self._session_key = keys.new_session_key(tag)
        create = must_create or self._state is State.NEW
        write = self._plan_save(data, "create" if create else "update")
        if write is None:
            return
        try:
            with unavailable_on_error():
                result = self._written(connection, write)
        except SessionStoreUnavailable:
            self._put_back(connection)
            raise
        self._finish_save(write, result)

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        data = await self._aget_session(no_load=must_create)
        if self.session_key is None:  # loading found the session gone
            return await self.acreate()
        connection = await get_async_connection()
        if (tag := self._tag_to_take(data)) is not None:
            if (leave := self._leave_plan(data)) is not None:
                with unavailable_on_error():
                    await self._aleft(connection, data, leave)
            self._session_key = keys.new_session_key(tag)
        create = must_create or self._state is State.NEW
        write = self._plan_save(data, "create" if create else "update")
        if write is None:
            return
        try:
            with unavailable_on_error():
                result = await self._awritten(connection, write)
        except SessionStoreUnavailable:
            await self._aput_back(connection)
            raise
        self._finish_save(write, result)

    def _tag_to_take(self, data: dict[str, Any]) -> str | None:
        """
        Return the tag of the user the session names, if its key lacks it.

        A session that gains a user moves to a key tagged for that user
        (keys.user_tag()), so that the user's index, in the same hash slot,
        is kept in the same atomic step: a key this request made is simply
        remade; a stored one is left (_leave_plan()) and created anew.
        """
        user = _user_of(data)
        if user is None or not self.names.tagged:
            return None
        tag = keys.user_tag(user)
        return None if self.key_hash and self.key_hash.startswith(tag) else tag

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key == SESSION_KEY:
            self._retag_new_key()

    async def aset(self, key: str, value: Any) -> None:
        await super().aset(key, value)
        if key == SESSION_KEY:
            self._retag_new_key()

    def _retag_new_key(self) -> None:
        """
        Give a key not yet in Redis its user's tag as soon as login() sets it.

        So the key that login() hands out (to user_logged_in's receivers,
        say) is the one the save creates, on Redis Cluster too.
        """
        if (
            self._state is State.NEW
            and self.session_key is not None
            and (tag := self._tag_to_take(self._session_cache)) is not None
        ):
            self._session_key = keys.new_session_key(tag)

    def _remember_left(self, write: _Write, reply: list[Any]) -> None:
        """Keep what leave.lua returned, to put the session back if need be."""
        if reply:
            fields = _pairs(reply[1])
            self._left_behind = (write.keys[0], write.keys[1], fields, int(reply[0]))

    def _put_back_call(self) -> tuple[list[str], list[Any]] | None:
        """
        Plan putting back the session this request left (put_back.lua).

        Its new key (in another hash slot) could not be written, or its
        leaving was not confirmed by replicas, and the browser keeps the old
        cookie: the old session goes on as it was, unless a logout of the
        old cookie ended it meanwhile.
        """
        if self._left_behind is None:
            return None
        key, mark, fields, ttl = self._left_behind
        self._left_behind = None
        default_ms = _checked_age(self.get_session_cookie_age(), "The age") * 1000
        flat = [item for pair in fields.items() for item in pair]
        return [key, mark], [ttl if ttl > 0 else default_ms, *flat]

    def _put_back(self, connection: Connection) -> None:
        if call := self._put_back_call():
            # Best effort, while another error goes up: it must not hide it.
            with suppress(redis.RedisError, RedisClusterException):
                connection.call(connection.put_back, *call)

    async def _aput_back(self, connection: AsyncConnection) -> None:
        if call := self._put_back_call():
            with suppress(redis.RedisError, RedisClusterException):
                await connection.call(connection.put_back, *call)

    def _written(self, connection: Connection, write: _Write) -> int:
        """Send a planned save; undo what replicas left unconfirmed, if it can be."""
        try:
            return int(
                connection.run(connection.save, write.keys, write.args, auth=write.auth)
            )
        except NotReplicated as exc:
            if undo := self._undo(write, exc.reply):
                connection.send_all(undo)
            raise

    async def _awritten(self, connection: AsyncConnection, write: _Write) -> int:
        try:
            return int(
                await connection.run(
                    connection.save, write.keys, write.args, auth=write.auth
                )
            )
        except NotReplicated as exc:
            if undo := self._undo(write, exc.reply):
                await connection.send_all(undo)
            raise

    def _undo(self, write: _Write, reply: int) -> list[tuple[Any, ...]]:
        """
        Return the commands that undo an unconfirmed write, where one can be.

        The request answers 503 and the browser keeps its old cookie, so
        nothing this request made may stay usable, and the old cookie must
        not meet a moved mark (400). A sign-in is deleted: the session it
        created or moved here, its index entry, and every moved mark this
        request left, so that the old cookie starts afresh. A key change that
        signs nobody in is renamed back (lua/rename_back.lua), its mark
        deleted: the browser goes on with its session. Any other unconfirmed
        write stays (the session the browser holds). Nothing if the write did
        not happen (reply 0 or -1). Best effort and not waited for: a
        failover that loses these commands loses the write they undo as well.
        """
        if reply != 1:
            return []
        key, _, mark, *index = write.keys
        if not write.auth:
            if write.mode != "rotate":
                return []
            assert self.session_key is not None
            members = [keys.key_hash(self.session_key), write.source]
            return [("eval", RENAME_BACK_LUA, len(write.keys), *write.keys, *members)]
        if write.mode == "update" and not self._moved_marks_left:
            return []
        marks = [*self._moved_marks_left, *([mark] if write.mode == "rotate" else [])]
        if self._left_behind is not None:  # kept: the put-back needs it
            marks.remove(self._left_behind[1])
        self._state, self._stored = State.DELETED, {}
        assert self.session_key is not None
        return [
            ("delete", key),
            *(("delete", moved) for moved in marks),
            *(("zrem", name, keys.key_hash(self.session_key)) for name in index),
        ]

    def _refuse_if_moved(self) -> None:
        """
        Raise UpdateError instead of creating a session for a cookie that moved.

        The parallel request that renamed it sends the browser the new key; a
        new anonymous session here would replace it and sign the user out.
        """
        if self._state is State.MOVED:
            raise UpdateError("The session moved to a new key in a parallel request.")

    def _plan_save(
        self, data: dict[str, Any], mode: Mode, source: str | None = None
    ) -> _Write | None:
        """Plan the write of data to the session's key (from source, a key hash)."""
        encoded = {_field_name(name): encode(value) for name, value in data.items()}
        stored = {} if mode == "create" else self._stored
        if stored is None:
            changed, deleted = encoded, []
        else:
            changed = {n: v for n, v in encoded.items() if stored.get(n) != v}
            deleted = [n for n in stored if n not in encoded]
        if (
            mode == "update"
            and not changed
            and not deleted
            and self._ttl_set_for == self.session_key
            and not self._save_due
        ):
            return None
        if stored is not None and EXPIRY not in changed and EXPIRY not in deleted:
            rule = "="
        else:
            rule = _expiry_rule(data.get(EXPIRY))
        default_age = _checked_age(self.get_session_cookie_age(), "The session age")
        key = self._redis_key()
        redis_keys = [key, key, key]
        if source is not None:
            redis_keys[1:] = [self.names.session(source), self.names.moved(source)]
        user, index_args = self._index(data)
        if user is not None:
            redis_keys.append(self.names.index(user))
        pairs: list[str | bytes] = []
        for name, value in changed.items():
            pairs += [DATA_FIELD_PREFIX + name, value]
        args: list[str | int | bytes] = [
            mode, default_age, rule, "1" if stored is None else "0", *index_args,
            len(pairs) // 2, *pairs, *(DATA_FIELD_PREFIX + n for n in deleted),
        ]  # fmt: skip
        auth = (
            _field_name(SESSION_KEY) in changed or _field_name(SESSION_KEY) in deleted
        )
        return _Write(redis_keys, args, encoded, auth, mode, source)

    def _index(self, data: dict[str, Any]) -> tuple[str | None, list[str | bytes]]:
        """
        Return the session's user and the scripts' arguments to index it.

        Django's login() stores the user's id as a string; a session with
        anything else there is not indexed, nor one whose key is not tagged
        for its user (a save moves it first: _tag_to_take()).
        """
        user = _user_of(data)
        key_hash = self.key_hash
        assert key_hash is not None
        if user is None or (
            self.names.tagged and not key_hash.startswith(keys.user_tag(user))
        ):
            return None, [USER_FIELD, "", ""]
        return user, [USER_FIELD, encode(user), key_hash]

    def _finish_save(self, write: _Write, result: int) -> None:
        if result == -1:
            raise CreateError(f"Session key {write.keys[0]} is already taken.")
        if result == 0:
            raise UpdateError("The session was deleted before it could be saved.")
        self._stored = write.stored
        self._state = State.STORED
        self._ttl_set_for = self.session_key
        self._save_due = False
        self._left_behind = None  # its new key is written

    def cycle_key(self) -> None:
        """
        Give the session a new key, keeping its data.

        The old key is gone when this returns, in one round trip, and a
        short-lived mark says it moved (so that a parallel request that loads
        the old key leaves the browser's cookie alone). A signed-in session
        is renamed at once to a new key with its user's tag. Any other is
        deleted and its data kept here, for the save that ends the request
        to create under a new key: login() sets the user after this, and the
        key takes the user's tag then (in another hash slot, which no rename
        can reach on Redis Cluster).

        If the session was gone already (deleted, or renamed by a parallel
        request), an anonymous one goes on afresh under the new key with
        this request's data, so a login form sent twice logs in twice; a
        signed-in one raises UpdateError (400), so that a logout is never
        undone and no second signed-in session is made.
        """
        data = self._get_session()
        connection = get_connection()
        if (leave := self._leave_plan(data)) is not None:
            with unavailable_on_error():
                self._left(connection, data, leave)
        previous = self.session_key
        source = self._start_rotation(data)
        if source is None:
            return
        while True:
            write = self._plan_rotation(data, source, previous)
            with unavailable_on_error():
                result = self._written(connection, write)
            if self._finish_rotation(write, result, data):
                return

    async def acycle_key(self) -> None:
        data = await self._aget_session()
        connection = await get_async_connection()
        if (leave := self._leave_plan(data)) is not None:
            with unavailable_on_error():
                await self._aleft(connection, data, leave)
        previous = self.session_key
        source = self._start_rotation(data)
        if source is None:
            return
        while True:
            write = self._plan_rotation(data, source, previous)
            with unavailable_on_error():
                result = await self._awritten(connection, write)
            if self._finish_rotation(write, result, data):
                return

    def _leave_plan(self, data: dict[str, Any]) -> _Write | None:
        """
        Plan leaving a stored session's key for one in another hash slot.

        Only on Redis Cluster (elsewhere cycle_key() renames), and None if
        the session is not stored, or if it names a user and its key carries
        that user's tag (cycle_key() renames it then). The write of data is
        planned first, so that a value the session cannot store is refused
        before the old key goes.
        """
        if not self.names.tagged:
            return None
        if self.session_key is None or self._state is not State.STORED:
            return None
        user = _user_of(data)
        key_hash = self.key_hash
        assert key_hash is not None
        if user is not None and key_hash.startswith(keys.user_tag(user)):
            return None
        self._plan_save(data, "create")
        # Leaving a signed-in session signs it out there: a logout's wait.
        signed_in = self._stored is None or _field_name(SESSION_KEY) in self._stored
        return _Write([self._redis_key(), self._moved_mark()], [], {}, signed_in)

    def _left(
        self, connection: Connection, data: dict[str, Any], write: _Write
    ) -> None:
        try:
            reply = connection.run(
                connection.leave, write.keys, write.args, auth=write.auth
            )
        except NotReplicated as exc:
            self._remember_left(write, exc.reply)
            self._put_back(connection)
            raise
        self._after_leaving(write, reply, data)

    async def _aleft(
        self, connection: AsyncConnection, data: dict[str, Any], write: _Write
    ) -> None:
        try:
            reply = await connection.run(
                connection.leave, write.keys, write.args, auth=write.auth
            )
        except NotReplicated as exc:
            self._remember_left(write, exc.reply)
            await self._aput_back(connection)
            raise
        self._after_leaving(write, reply, data)

    def _after_leaving(
        self, write: _Write, reply: list[Any], data: dict[str, Any]
    ) -> None:
        """
        Take what leave.lua found: the session now waits for a save to create it.

        What concurrent requests changed since this one loaded it is kept,
        except where this request changed the same key.
        """
        raw = _pairs(reply[1]) if reply else {}
        if not raw and SESSION_KEY in data:
            raise RotationInterrupted("The session was gone before its key changed.")
        if raw:
            self._moved_marks_left.append(write.keys[1])
            self._remember_left(write, reply)
        decoded = _decode(raw)
        if raw and decoded is not None and self._stored is not None:
            now, loaded = decoded[0], self._stored
            for name in {*now, *loaded}:
                mine = encode(data[name]) if name in data else None
                if mine != loaded.get(name):
                    continue  # changed (or deleted) by this request
                if name in now:
                    data[name] = now[name]
                else:
                    data.pop(name, None)
        self._state, self._stored = State.NEW, {}

    def _start_rotation(self, data: dict[str, Any]) -> str | None:
        """Take a new key; return the key hash of the session to rename, if any."""
        stored = self.session_key is not None and self._state is State.STORED
        source = self.key_hash if stored else None
        user = _user_of(data)
        tag = keys.user_tag(user) if user is not None and self.names.tagged else None
        self._session_key = keys.new_session_key(tag)
        self.modified = True
        if source is None:
            self._state, self._stored = State.NEW, {}
        return source

    def _plan_rotation(
        self, data: dict[str, Any], source: str, previous: str | None
    ) -> _Write:
        """Plan the rename; on a bad value, keep the key being left."""
        try:
            write = self._plan_save(data, "rotate", source)
        except (TypeError, ValueError):
            self._session_key = previous
            raise
        assert write is not None
        return write

    def _finish_rotation(
        self, write: _Write, result: int, data: dict[str, Any]
    ) -> bool:
        """Apply a rotation's result; return False if it must be tried again."""
        if result == -1:  # the new key is taken: 150 random bits made it so
            assert self.session_key is not None
            tag = keys.tag_of(self.session_key) if self.names.tagged else None
            self._session_key = keys.new_session_key(tag)
            return False
        if result == 0:
            # Gone: deleted, or renamed by a parallel rotation. Only a signed-in
            # session must not come back (that could undo a logout that
            # happened since); an anonymous one goes on afresh.
            if SESSION_KEY in data:
                # Also a SessionInterrupted: raised in a middleware (Django's
                # get_user() rotates), it becomes a 400, not a 500.
                raise RotationInterrupted(
                    "The session was gone before its key changed."
                )
            self._state, self._stored = State.NEW, {}
            return True
        self._finish_save(write, result)
        self._moved_marks_left.append(write.keys[2])
        return True

    # Counting

    def incr(self, key: str, amount: int = 1) -> int:
        """
        Add amount to the integer at key (absent counts as 0), atomically.

        Return the new value. It costs one round trip on a stored session,
        loading it in the same step if nothing has read it yet, and none on
        one that is not saved yet; concurrent increments never lose a count.
        Raise TypeError if the value is not an integer, ValueError if the sum
        leaves 64 bits, UpdateError if the session was deleted meanwhile.
        """
        if self._loads_with_incr(amount):
            counted = self.load_and_incr(key, amount)
            if counted is not None:
                return counted
        session = self._get_session()
        local = self._incr_locally(session, key, amount)
        if local is not None:
            return local
        write = self._plan_incr(session, key, amount)
        connection = get_connection()
        with unavailable_on_error():
            try:
                result = connection.run(
                    connection.incr, write.keys, write.args, auth=False
                )
            except redis.ResponseError as exc:
                raise _incr_error(exc, key) from exc
        return self._finish_incr(session, key, result)

    async def aincr(self, key: str, amount: int = 1) -> int:
        if self._loads_with_incr(amount):
            counted = await self.aload_and_incr(key, amount)
            if counted is not None:
                return counted
        session = await self._aget_session()
        local = self._incr_locally(session, key, amount)
        if local is not None:
            return local
        write = self._plan_incr(session, key, amount)
        connection = await get_async_connection()
        with unavailable_on_error():
            try:
                result = await connection.run(
                    connection.incr, write.keys, write.args, auth=False
                )
            except redis.ResponseError as exc:
                raise _incr_error(exc, key) from exc
        return self._finish_incr(session, key, result)

    def load_and_incr(self, key: str, amount: int = 1) -> int | None:
        """
        Load the session and add amount to the integer at key, in one round trip.

        For a page whose first use of the session is to count: incr() does
        this itself on a session nothing has read yet. Return the new value,
        or None if Redis holds no session under this key (deleted or moved:
        nothing is counted in it) or holds one that is corrupted (a field
        that is not JSON: the count lands in it, and the engine reads it no
        more); the session is then as load() would have found it. Raise as
        incr() does. The session's TTL and its index entry are left to the
        save at the end of the request, which renews them about once a
        minute (_count_needs_save()). On a session already loaded, or not
        stored, this is incr(), or None.
        """
        if not self._loads_with_incr(amount):
            if hasattr(self, "_session_cache"):
                return self.incr(key, amount)
            return None
        default_age = _checked_age(self.get_session_cookie_age(), "The session age")
        redis_key, commands = self._load_and_incr_commands(key, amount)
        connection = get_connection()
        with unavailable_on_error():
            counted = _Counted.of(
                connection.transaction(redis_key, commands, auth=False)
            )
            # Only a session that is gone costs a second look: did it move?
            # (One key per transaction: during a slot move, a transaction
            # of two keys, one of them missing, gets TRYAGAIN throughout.)
            moved = counted.found == {} and bool(
                connection.client.exists(self._moved_mark())
            )
        return self._loaded_with_incr(key, counted, default_age, moved=moved)

    async def aload_and_incr(self, key: str, amount: int = 1) -> int | None:
        if not self._loads_with_incr(amount):
            if hasattr(self, "_session_cache"):
                return await self.aincr(key, amount)
            return None
        default_age = _checked_age(self.get_session_cookie_age(), "The session age")
        redis_key, commands = self._load_and_incr_commands(key, amount)
        connection = await get_async_connection()
        with unavailable_on_error():
            counted = _Counted.of(
                await connection.transaction(redis_key, commands, auth=False)
            )
            moved = counted.found == {} and bool(
                await connection.client.exists(self._moved_mark())
            )
        return self._loaded_with_incr(key, counted, default_age, moved=moved)

    def _loads_with_incr(self, amount: int) -> bool:
        """Return True if an increment loads the session too (load_and_incr())."""
        _check_amount(amount)
        return (
            not hasattr(self, "_session_cache")
            and self.session_key is not None
            and self._state is State.STORED
        )

    def _load_and_incr_commands(
        self, key: str, amount: int
    ) -> tuple[str, list[tuple[Any, ...]]]:
        """
        Return the key and the commands that count in a session not loaded yet.

        No script: each script call costs Redis more than these commands
        together (see the README's cost model). HINCRBY cannot ask whether
        the session exists: on a key that holds none it makes a hash of that
        one field, which is no session (it lacks "m:created", which every
        read and every script looks for) and which EXPIRE NX gives a short
        life (every write gives a session a TTL; one that lost it has its
        save due). The TTL is left as the last write set it
        (_count_needs_save()).
        """
        redis_key = self._redis_key()
        return redis_key, [
            ("HINCRBY", redis_key, DATA_FIELD_PREFIX + key, amount),
            ("EXPIRE", redis_key, STRAY_SECONDS, "NX"),
            ("HGETALL", redis_key),
            ("TTL", redis_key),
            ("TIME",),
        ]

    def _loaded_with_incr(
        self, key: str, counted: _Counted, default_age: int, *, moved: bool
    ) -> int | None:
        """
        Take what the count's commands did; return the new value, if it counted.

        If the session was not there (or not one of ours), it is loaded as
        load() would have found it, and None says to count afresh.
        """
        self.accessed = True
        raw = counted.found
        if isinstance(raw, redis.ResponseError):
            if not is_wrong_type(raw):
                raise raw
            self._session_cache = self._apply_loaded(None)
            return None
        if not raw:
            self._session_cache = self._apply_loaded({}, moved=moved)
            return None
        if isinstance(counted.value, redis.ResponseError):
            raise _incr_error(counted.value, key) from counted.value
        self._session_cache = self._apply_loaded(raw)
        if self.session_key is None:  # stored, but not as JSON: corrupted
            return None
        # SESSION_SAVE_EVERY_REQUEST renews the TTL on every request.
        self._save_due = settings.SESSION_SAVE_EVERY_REQUEST or _count_needs_save(
            counted, default_age
        )
        return self._finish_incr(self._session_cache, key, int(counted.value))

    def _plan_incr(self, session: dict[str, Any], key: str, amount: int) -> _Write:
        default_age = _checked_age(self.get_session_cookie_age(), "The session age")
        redis_keys = [self._redis_key()]
        user, index_args = self._index(session)
        if user is not None:
            redis_keys.append(self.names.index(user))
        args = [DATA_FIELD_PREFIX + key, amount, default_age, *index_args]
        return _Write(redis_keys, args, {})

    def _incr_locally(
        self, session: dict[str, Any], key: str, amount: int
    ) -> int | None:
        """Apply an increment that Redis need not see yet; else return None."""
        _check_amount(amount)
        current = session.get(key, 0)
        if not isinstance(current, int) or isinstance(current, bool):
            raise TypeError(f"Session value {key!r} is not an integer.")
        if current + amount not in INT64:
            raise ValueError(f"Session value {key!r} would overflow 64 bits.")
        stored = self._stored or {}
        local = encode(current) if key in session else None
        changed_here = stored.get(key) != local
        if (
            self._state is State.STORED
            and self._stored is not None
            and not changed_here
        ):
            return None
        self[key] = current + amount
        return current + amount

    def _finish_incr(
        self, session: dict[str, Any], key: str, result: int | None
    ) -> int:
        if result is None:
            raise UpdateError("The session was deleted before it could be saved.")
        session[key] = result
        assert self._stored is not None
        self._stored[key] = encode(result)
        self._ttl_set_for = self.session_key
        self.modified = True
        return result

    # Deleting

    def delete(self, session_key: str | None = None) -> None:
        """Delete the session under this key (by default, the current one)."""
        signs_out = self._may_be_signed_in(session_key)
        if redis_keys := self._keys_to_delete(session_key):
            with unavailable_on_error():
                get_connection().delete(redis_keys, auth=signs_out)

    async def adelete(self, session_key: str | None = None) -> None:
        signs_out = self._may_be_signed_in(session_key)
        if redis_keys := self._keys_to_delete(session_key):
            connection = await get_async_connection()
            with unavailable_on_error():
                await connection.delete(redis_keys, auth=signs_out)

    def _may_be_signed_in(self, session_key: str | None) -> bool:
        """Return False only for a session this store knows holds no user."""
        if session_key is not None and session_key != self.session_key:
            return True
        return self._stored is None or _field_name(SESSION_KEY) in self._stored

    def _keys_to_delete(self, session_key: str | None) -> list[str]:
        """
        Return the Redis keys to delete: a session and the mark that it moved.

        The mark goes too, so that nothing that moved the session (a sign-in
        on Redis Cluster that could not finish) puts it back after a logout.
        """
        if session_key is not None and session_key != self.session_key:
            trusted = self._trusted(session_key)
            return [] if trusted is None else self._with_mark(trusted)
        if self._state is State.MOVED and self._moved_from is not None:
            mark, self._moved_from = self._moved_from, None
            self._state = State.DELETED
            return [mark]
        if self.session_key is None or self._state is State.DELETED:
            return []
        stored = self._state is State.STORED
        self._state = State.DELETED
        return self._with_mark(self.session_key) if stored else []

    def _with_mark(self, session_key: str) -> list[str]:
        key_hash = keys.key_hash(session_key)
        return [self.names.session(key_hash), self.names.moved(key_hash)]

    def load_and_delete(self) -> None:
        """
        Delete the session, keeping its data readable for this request.

        One round trip where load() then delete() take two, for logout, which
        must read who is leaving before it flushes.
        """
        if hasattr(self, "_session_cache"):
            self.delete()
            return
        redis_keys = self._keys_to_delete(None)
        flat: list[bytes] = []
        if redis_keys:
            connection = get_connection()
            with unavailable_on_error():
                flat = connection.run(
                    connection.load_and_delete, redis_keys, [], auth=True
                )
        self._loaded_and_deleted(flat)

    async def aload_and_delete(self) -> None:
        if hasattr(self, "_session_cache"):
            await self.adelete()
            return
        redis_keys = self._keys_to_delete(None)
        flat: list[bytes] = []
        if redis_keys:
            connection = await get_async_connection()
            with unavailable_on_error():
                flat = await connection.run(
                    connection.load_and_delete, redis_keys, [], auth=True
                )
        self._loaded_and_deleted(flat)

    def _loaded_and_deleted(self, flat: list[bytes]) -> None:
        key = self.session_key
        self._session_cache = self._apply_loaded(_session_in(_pairs(flat)))
        # Still this request's key, so that flush() and the middleware see
        # the session that ended; Redis no longer has it.
        self._session_key, self._state = key, State.DELETED
        self.accessed = True

    @classmethod
    def clear_expired(cls) -> None:
        """Do nothing: Redis expires sessions by their TTL."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """Do nothing: Redis expires sessions by their TTL."""
