"""Build the Redis clients and scripts that the session engine uses.

This is the only module that creates connections. The sync client is
django-redis's own client for ``SESSION_CACHE_ALIAS`` (its primary, so that
sessions are always read where they were written; behind Redis Sentinel,
the primary that the sentinels name). The async client is built from that
client's connection pool: the same address or sentinels, credentials, TLS,
timeouts, keepalive and health checks. It is made once per event loop,
because a ``redis.asyncio`` connection belongs to the loop that opened it,
and closed when that loop shuts down.

It is also the one place that tells a Redis outage from any other error,
and that makes a write wait for replicas (SESSION_REDIS_WAIT_REPLICAS).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import redis
import redis._parsers
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.sentinel
from django.conf import settings
from django.core.cache import CacheHandler
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import PipelineCommand as AsyncPipelineCommand
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.commands.core import AsyncScript, Script
from redis.exceptions import RedisClusterException, SlotNotCoveredError
from redis.maint_notifications import MaintNotificationsConfig

from .exceptions import SessionStoreRefused, SessionStoreUnavailable
from .from_settings import FromSettings
from .sentinel import AsyncSentinel, addresses

LUA_DIR = Path(__file__).resolve().parent / "lua"

logger = logging.getLogger("redis_hash_sessions")


def _lua(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text()


# The scripts that write sessions, list or end them start with the shared
# helpers.
SAVE_LUA = _lua("common") + _lua("save")
INCR_LUA = _lua("common") + _lua("incr")
LEAVE_LUA = _lua("common") + _lua("leave")
PUT_BACK_LUA = _lua("common") + _lua("put_back")
# Sent with EVAL by an undo, which is rare and best effort (send_all()).
RENAME_BACK_LUA = _lua("common") + _lua("rename_back")
LOAD_AND_DELETE_LUA = _lua("load_and_delete")
SESSIONS_OF_LUA = _lua("common") + _lua("sessions_of")
END_SESSIONS_LUA = _lua("common") + _lua("end_sessions")
# Loaded and run by a readiness check (Connection.probe()), not a request.
PROBE_LUA = _lua("probe")
# Redis names a script by its SHA-1: a name, not a security measure.
PROBE_SHA = hashlib.sha1(PROBE_LUA.encode(), usedforsecurity=False).hexdigest()
# Each script by the name of the connection's field that runs it.
SCRIPTS_BY_NAME = {
    "save": SAVE_LUA,
    "incr": INCR_LUA,
    "leave": LEAVE_LUA,
    "put_back": PUT_BACK_LUA,
    "load_and_delete": LOAD_AND_DELETE_LUA,
    "sessions_of": SESSIONS_OF_LUA,
    "end_sessions": END_SESSIONS_LUA,
}
SCRIPTS = tuple(SCRIPTS_BY_NAME.values())


def _registered(client: Any) -> dict[str, Any]:
    """Return the engine's scripts registered on client, by field name."""
    return {name: client.register_script(lua) for name, lua in SCRIPTS_BY_NAME.items()}


class NotReplicated(redis.RedisError):
    """A write reached the primary, but too few replicas confirmed it in time."""

    def __init__(self, message: str, reply: Any) -> None:
        super().__init__(message)
        self.reply = reply  # the write's own reply, from the primary


# Errors of a Redis that cannot serve now (down, unreachable, hung, refusing
# our credentials, loading, a read-only replica, out of memory, a cluster or
# primary that is down, a slot that is moving); every other error is a bug
# or a bad argument.
OUTAGES: tuple[type[Exception], ...] = (
    # Also BusyLoadingError (LOADING), AuthenticationError and, behind
    # Sentinel, MasterNotFoundError (no primary) and a primary turned replica.
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ClusterDownError,  # MasterDownError (MASTERDOWN) is one
    redis.exceptions.TryAgainError,
    # A cluster's redirections (TRYAGAIN while a slot moves) ran out.
    redis.exceptions.ClusterError,
    NotReplicated,
)
# Replies of a Redis that cannot serve now, which redis-py has no class for:
# a script running too long, too few replicas for a write, a failed snapshot
# that stops writes.
OUTAGE_REPLIES = ("BUSY ", "NOREPLICAS ", "MISCONF ")


# The oldest Redis the engine runs on: a count sends EXPIRE ... NX (7.0).
MINIMUM_VERSION = (7, 0)


def _version(hello: Any) -> tuple[int, ...]:
    """Return the version a HELLO reply gives, as numbers; () if it gives none."""
    # A map under RESP3, a flat list under RESP2.
    if isinstance(hello, list) and len(hello) % 2 == 0:
        hello = dict(zip(hello[::2], hello[1::2], strict=True))
    version = hello.get(b"version") if isinstance(hello, dict) else None
    if not isinstance(version, bytes):
        return ()
    return tuple(int(part) for part in re.findall(rb"\d+", version))


# A cluster's shard that does not answer: down, unreachable, or its slots
# served by no node yet (a failover).
_NOT_ANSWERING = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    SlotNotCoveredError,
)


def is_outage(exc: Exception) -> bool:
    """Return True if exc says that Redis cannot serve now."""
    if isinstance(exc, RedisClusterException):
        # Not a RedisError: no node of the cluster answers, or none serves
        # the slot yet. Keys of several slots in one command (a bug) are not
        # an outage.
        return isinstance(exc, SlotNotCoveredError) or "cannot be connected" in str(exc)
    return isinstance(exc, OUTAGES) or str(exc).startswith(OUTAGE_REPLIES)


def replicas_to_wait_for(*, auth: bool) -> int:
    """
    Return how many replicas must confirm a write before it counts as done.

    SESSION_REDIS_WAIT_REPLICAS (default 0: none) applies to the writes that
    sign a user in or out (auth) or, with SESSION_REDIS_WAIT_FOR = "writes",
    to every write.
    """
    replicas = int(getattr(settings, "SESSION_REDIS_WAIT_REPLICAS", 0))
    if replicas and (auth or _wait_for() == "writes"):
        return replicas
    return 0


def _wait_for() -> str:
    return str(getattr(settings, "SESSION_REDIS_WAIT_FOR", "logins"))


def _wait_timeout_ms() -> int:
    # Never 0, which would make WAIT block until the replicas answer.
    seconds = float(getattr(settings, "SESSION_REDIS_WAIT_TIMEOUT", 0.2))
    return max(1, round(seconds * 1000))


def _replicated(results: list[Any], replicas: int) -> Any:
    """Return the write's reply if WAIT's (the last) says enough replicas have it."""
    *replies, confirmed = results
    if confirmed < replicas:
        raise NotReplicated(
            f"{confirmed} of the {replicas} replicas that SESSION_REDIS_WAIT_REPLICAS "
            "asks for confirmed the write in time.",
            replies[0],
        )
    return replies[0]


# How many MOVED or ASK redirections a waited write or a transaction
# follows before it answers 503, as a slot that keeps moving is an outage of
# its own.
REDIRECTIONS = 3


def _redirection(
    results: list[Any],
) -> redis.exceptions.AskError | redis.exceptions.MovedError | None:
    """Return the MOVED or ASK reply among a pipeline's results, if any."""
    for result in results:
        if isinstance(result, redis.exceptions.AskError | redis.exceptions.MovedError):
            return result
    return None


def _asked(
    redirection: redis.exceptions.AskError | redis.exceptions.MovedError,
) -> tuple[str, int] | None:
    """Return where an ASK sends this one command (a slot half moved), or None."""
    if isinstance(redirection, redis.exceptions.AskError):
        return (redirection.host, redirection.port)
    return None


def _unredirected() -> redis.exceptions.TryAgainError:
    return redis.exceptions.TryAgainError(
        f"The key's hash slot moved {REDIRECTIONS} times while a write was sent."
    )


def _raise_lost(results: list[Any]) -> None:
    """
    Raise a lost connection that a pipeline left among its replies.

    An asyncio cluster node's pipeline keeps it there, where the caller
    would take it for a reply and never map the cluster again.
    """
    for result in results:
        if isinstance(result, redis.ConnectionError | redis.TimeoutError):
            raise result


def _no_script(results: list[Any]) -> bool:
    return any(isinstance(r, redis.exceptions.NoScriptError) for r in results)


def _transaction(
    commands: Sequence[tuple[Any, ...]], replicas: int
) -> list[tuple[Any, ...]]:
    """Return commands in MULTI/EXEC, then a WAIT for replicas if any."""
    wait = [("WAIT", replicas, _wait_timeout_ms())] if replicas else []
    return [("MULTI",), *commands, ("EXEC",), *wait]


def _executed(replies: list[Any], replicas: int) -> list[Any]:
    """
    Return EXEC's replies, or raise what kept EXEC from running.

    With replicas, a WAIT followed: raise NotReplicated if too few confirmed.
    """
    confirmed = replies.pop() if replicas else None
    if isinstance(replies[-1], Exception):
        raise next(reply for reply in replies if isinstance(reply, Exception))
    if replicas:
        if isinstance(confirmed, Exception):
            raise confirmed
        _replicated([replies[-1], confirmed], replicas)
    return cast(list[Any], replies[-1])


@dataclass(frozen=True)
class Connection:
    """A sync client and the engine's scripts registered on it."""

    client: redis.Redis | RedisCluster
    save: Script
    incr: Script
    leave: Script
    put_back: Script
    load_and_delete: Script
    sessions_of: Script
    end_sessions: Script

    def run(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], *, auth: bool
    ) -> Any:
        """Run script; wait for replicas if the settings ask it of this write."""
        replicas = replicas_to_wait_for(auth=auth)
        if not replicas:
            return self.call(script, keys, args)
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        return self._waited(replicas, keys[0], command, script)

    def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """
        Run script, loading it where it is missing.

        On a cluster, only on the primary of its keys: redis-py's Script
        loads it on every primary, which fails while any one is down (and a
        promoted replica starts without scripts).
        """
        if not isinstance(self.client, RedisCluster):
            return script(keys=keys, args=args)
        try:
            return self.client.evalsha(script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self._node(keys[0], None).script_load(script.script)
            return self.client.evalsha(script.sha, len(keys), *keys, *args)

    def transaction(
        self, key: str, commands: Sequence[tuple[Any, ...]], *, auth: bool
    ) -> list[Any]:
        """
        Send commands on key's slot in MULTI/EXEC: atomic, in one round trip.

        Return their replies as Redis gives them, without redis-py's
        callbacks (an HGETALL is a map under RESP3, a flat list under RESP2);
        a command that fails has its error in its place. Sent as a plain
        pipeline to the slot's primary (redis-py's asyncio cluster pipeline
        runs each queued command of a transaction on a thread and an event
        loop of its own), with a WAIT if the settings ask it of this write.
        """
        replicas = replicas_to_wait_for(auth=auth)
        return _executed(
            self._on_primary(key, _transaction(commands, replicas)), replicas
        )

    def ping(self) -> None:
        """
        Ask Redis whether it answers: on a cluster, whether any node does.

        With HELLO, which no ACL can refuse (PING, a least-privilege user
        may lack).
        """
        if not isinstance(self.client, RedisCluster):
            self.client.execute_command("HELLO")  # type: ignore[no-untyped-call]
            return
        failure: redis.RedisError | None = None
        for node in self.client.get_nodes():  # type: ignore[no-untyped-call]
            try:
                self.client.execute_command("HELLO", target_nodes=node)  # type: ignore[no-untyped-call]
            except redis.RedisError as exc:
                failure = exc
            else:
                return
        raise failure or redis.ConnectionError("The cluster has no nodes.")

    def probe(self, keys: Sequence[str]) -> None:
        """
        Raise what keeps the engine from working on this Redis, changing nothing.

        In one round trip to the primary of keys' slot, as a request's write
        does: MULTI, SCRIPT LOAD and EVALSHA of lua/probe.lua on keys, EXEC;
        then HELLO, which no ACL can refuse, for the version (INFO is in
        @dangerous, which least-privilege users lack; Valkey gives its own,
        7.2 and later). On a cluster whose shard of keys does not answer
        (down, or its slot not served yet: a failover) while others serve,
        it is enough that any node answers.
        """
        load_and_run = [
            ("SCRIPT", "LOAD", PROBE_LUA),
            ("EVALSHA", PROBE_SHA, len(keys), *keys),
        ]
        commands = [*_transaction(load_and_run, 0), ("HELLO",)]
        try:
            *transaction, hello = self._on_primary(keys[0], commands)
            if isinstance(hello, Exception):
                raise hello
            if (version := _version(hello)) < MINIMUM_VERSION:
                given = ".".join(map(str, version)) or "none"
                raise too_old.failed(f"HELLO gives version {given}")
            for reply in _executed(transaction, 0):
                if isinstance(reply, Exception):
                    raise reply
        except _NOT_ANSWERING:
            if not isinstance(self.client, RedisCluster):
                raise
            self.ping()

    def delete(self, keys: Sequence[str], *, auth: bool) -> None:
        """Delete keys (of one slot); wait for replicas if the settings ask it."""
        if replicas := replicas_to_wait_for(auth=auth):
            self._waited(replicas, keys[0], ("DEL", *keys), None)
        else:
            self.client.delete(*keys)

    def send_all(self, commands: Sequence[tuple[Any, ...]]) -> None:
        """
        Send commands (method name, arguments), best effort: errors are ignored.

        One pipeline, or on a cluster one command at a time, as a cluster's
        pipeline refuses RENAME (and the commands may span slots).
        """
        if isinstance(self.client, RedisCluster):
            for command, *args in commands:
                with suppress(redis.RedisError):
                    getattr(self.client, command)(*args)
            return
        pipe = self.client.pipeline(transaction=False)
        for command, *args in commands:
            getattr(pipe, command)(*args)
        pipe.execute(raise_on_error=False)

    def _waited(
        self, replicas: int, key: str, command: tuple[Any, ...], script: Script | None
    ) -> Any:
        """
        Send the write and a WAIT on one connection, in one round trip.

        WAIT counts the replicas that have this connection's writes, so on a
        cluster both go to the primary of key's slot. See _replicated().
        """
        wait = ("WAIT", replicas, _wait_timeout_ms())
        results = self._on_primary(key, [command, wait], script)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return _replicated(results, replicas)

    def _on_primary(
        self,
        key: str,
        commands: Sequence[tuple[Any, ...]],
        script: Script | None = None,
    ) -> list[Any]:
        """
        Send commands on one connection to the primary of key's slot.

        Follow MOVED and ASK as the cluster client would, and load script
        where it is missing. Return the commands' replies, errors among them.
        """
        asking: tuple[str, int] | None = None
        for _ in range(REDIRECTIONS + 1):
            node = self._node(key, asking)
            pipe: Pipeline = node.pipeline(transaction=False)
            if asking:
                pipe.execute_command("ASKING")  # type: ignore[no-untyped-call]
            for command in commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            try:
                results = pipe.execute(raise_on_error=False)[1 if asking else 0 :]
                _raise_lost(results)
            except (redis.ConnectionError, redis.TimeoutError):
                if isinstance(self.client, RedisCluster):
                    self.client.nodes_manager.initialize()
                raise
            if script and _no_script(results):
                # A fresh process, or a primary promoted by a failover.
                node.script_load(script.script)
                script = None
                continue
            if moved := _redirection(results):
                assert isinstance(self.client, RedisCluster)
                asking = _asked(moved)
                if not asking:  # MOVED: the slot has a new owner for good
                    self.client.nodes_manager.move_slot(moved)
                continue
            return results
        raise _unredirected()

    def _node(self, key: str, asking: tuple[str, int] | None) -> redis.Redis:
        """Return the client of the server that holds key (or that ASK named)."""
        if not isinstance(self.client, RedisCluster):
            return self.client
        if asking:
            node = self.client.get_node(*asking)  # type: ignore[no-untyped-call]
        else:
            node = self.client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        if node is None:
            raise redis.exceptions.TryAgainError(f"No node {asking} in the cluster.")
        return self.client.get_redis_connection(node)


@dataclass(frozen=True)
class AsyncConnection:
    """An async client and the engine's scripts registered on it."""

    client: redis.asyncio.Redis | AsyncRedisCluster
    save: AsyncScript
    incr: AsyncScript
    leave: AsyncScript
    put_back: AsyncScript
    load_and_delete: AsyncScript
    sessions_of: AsyncScript
    end_sessions: AsyncScript

    async def run(
        self,
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        auth: bool,
    ) -> Any:
        replicas = replicas_to_wait_for(auth=auth)
        if not replicas:
            return await self.call(script, keys, args)
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        return await self._waited(replicas, keys[0], command, script)

    async def call(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        if not isinstance(self.client, AsyncRedisCluster):
            return await script(keys=keys, args=args)
        try:
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await self._sent(keys[0], None, [("SCRIPT", "LOAD", script.script)])
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)

    async def transaction(
        self, key: str, commands: Sequence[tuple[Any, ...]], *, auth: bool
    ) -> list[Any]:
        replicas = replicas_to_wait_for(auth=auth)
        sent = _transaction(commands, replicas)
        return _executed(await self._on_primary(key, sent), replicas)

    async def delete(self, keys: Sequence[str], *, auth: bool) -> None:
        if replicas := replicas_to_wait_for(auth=auth):
            await self._waited(replicas, keys[0], ("DEL", *keys), None)
        else:
            await self.client.delete(*keys)

    async def send_all(self, commands: Sequence[tuple[Any, ...]]) -> None:
        if isinstance(self.client, AsyncRedisCluster):
            for command, *args in commands:
                with suppress(redis.RedisError):
                    await getattr(self.client, command)(*args)
            return
        pipe = self.client.pipeline(transaction=False)
        for command, *args in commands:
            getattr(pipe, command)(*args)
        await pipe.execute(raise_on_error=False)

    async def _waited(
        self,
        replicas: int,
        key: str,
        command: tuple[Any, ...],
        script: AsyncScript | None,
    ) -> Any:
        wait = ("WAIT", replicas, _wait_timeout_ms())
        results = await self._on_primary(key, [command, wait], script)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return _replicated(results, replicas)

    async def _on_primary(
        self,
        key: str,
        commands: Sequence[tuple[Any, ...]],
        script: AsyncScript | None = None,
    ) -> list[Any]:
        asking: tuple[str, int] | None = None
        for _ in range(REDIRECTIONS + 1):
            sent = [*([("ASKING",)] if asking else []), *commands]
            try:
                results = (await self._sent(key, asking, sent))[1 if asking else 0 :]
                _raise_lost(results)
            except (redis.ConnectionError, redis.TimeoutError):
                if isinstance(self.client, AsyncRedisCluster):
                    await self.client.nodes_manager.initialize()
                raise
            if script and _no_script(results):
                await self._sent(key, asking, [("SCRIPT", "LOAD", script.script)])
                script = None
                continue
            if moved := _redirection(results):
                assert isinstance(self.client, AsyncRedisCluster)
                asking = _asked(moved)
                if not asking:
                    await self.client.nodes_manager.move_slot(moved)
                continue
            return results
        raise _unredirected()

    async def _sent(
        self, key: str, asking: tuple[str, int] | None, commands: list[tuple[Any, ...]]
    ) -> list[Any]:
        """Send commands on one connection to key's server; return their replies."""
        if not isinstance(self.client, AsyncRedisCluster):
            pipe: AsyncPipeline = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=False)
        if self.client._initialize:  # not mapped yet: its first mapping failed
            await self.client.initialize()
        if asking:
            node = self.client.get_node(*asking)
        else:
            node = self.client.get_node_from_key(key)
        if node is None:
            raise redis.exceptions.TryAgainError(f"No node {asking} in the cluster.")
        pipeline = [
            AsyncPipelineCommand(position, *command)
            for position, command in enumerate(commands)
        ]
        await node.execute_pipeline(pipeline)
        return [command.result for command in pipeline]


@dataclass
class _LoopClients:
    """The async connections made on one event loop."""

    # Each alias's connection, and the sync connection it was built from.
    current: dict[str, tuple[AsyncConnection, Connection]] = field(default_factory=dict)
    # What closes each connection made on the loop, those replaced since
    # (a request may still use one) as well: close_async_connections() or
    # the loop's shutdown_asyncgens(), which closes suspended async
    # generators, run them.
    closers: list[AsyncIterator[None]] = field(default_factory=list)


_async_connections: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, _LoopClients
] = weakref.WeakKeyDictionary()


@FromSettings
def get_connection() -> Connection:
    """Return the sync connection for SESSION_CACHE_ALIAS, made once per settings."""
    # A cluster's client maps the cluster as it is made: an outage too.
    with unavailable_on_error():
        client = _session_cache().client.get_client(write=True)
    return Connection(client=client, **_registered(client))


def _session_cache() -> Any:
    """
    Make SESSION_CACHE_ALIAS's django-redis cache, as Django's handler does.

    With a handler of the settings as they are, not Django's caches: that
    handler is rebuilt by a setting_changed receiver that may run after
    ours, and a call in between would make a client of the old entry.
    django-redis keeps one connection pool per URL for the whole process.
    """
    return CacheHandler(settings.CACHES)[settings.SESSION_CACHE_ALIAS]


# Connection options of redis-py's sync connections that redis.asyncio's do
# not have; refused rather than silently dropped.
_SYNC_ONLY_OPTIONS = (
    "ssl_validate_ocsp",
    "ssl_validate_ocsp_stapled",
    "ssl_ocsp_context",
    "ssl_ocsp_expected_cert",
)


# What redis-py's sync pool adds to the connection settings for itself.
_POOL_BOOKKEEPING = ("orig_", "maint_notifications_", "himport_registry")


def _async_parser(sync_parser: type) -> type:
    """Return redis-py's asyncio twin of a sync reply parser (_RESP2Parser...)."""
    twin = getattr(redis._parsers, "_Async" + sync_parser.__name__.lstrip("_"), None)
    if twin is None:
        raise ImproperlyConfigured(
            f"The session engine has no asyncio twin of {sync_parser.__name__}."
        )
    return cast(type, twin)


def async_pool_for(pool: redis.ConnectionPool) -> redis.asyncio.ConnectionPool:
    """Return an asyncio connection pool with the settings of a sync one."""
    twins = (
        (
            redis.sentinel.SentinelManagedSSLConnection,
            redis.asyncio.sentinel.SentinelManagedSSLConnection,
        ),
        (
            redis.sentinel.SentinelManagedConnection,
            redis.asyncio.sentinel.SentinelManagedConnection,
        ),
        (redis.SSLConnection, redis.asyncio.SSLConnection),
        (redis.UnixDomainSocketConnection, redis.asyncio.UnixDomainSocketConnection),
        (redis.Connection, redis.asyncio.Connection),
    )
    sync_class = pool.connection_class
    async_class = next((a for s, a in twins if issubclass(sync_class, s)), None)
    if async_class is None:
        raise ImproperlyConfigured(
            f"The session engine has no asyncio twin of {sync_class.__name__}."
        )
    kwargs = pool.connection_kwargs
    if refused := [name for name in _SYNC_ONLY_OPTIONS if kwargs.get(name)]:
        raise ImproperlyConfigured(
            f"redis.asyncio does not support {', '.join(refused)}, which the "
            "session cache entry sets."
        )
    options = {
        name: value
        for name, value in kwargs.items()
        if not name.startswith(_POOL_BOOKKEEPING) and name != "connection_pool"
    }
    if "parser_class" in options:
        options["parser_class"] = _async_parser(options["parser_class"])
    # Off: with redis-py's default ("auto", under RESP3) its asyncio pool
    # skips the check that drops a pooled connection the server has closed,
    # so the first request after a Redis restart answered 503 under ASGI
    # (tests/test_faults.py, the AOF restart). Maintenance notifications
    # are a managed-Redis feature that a restart-safe pool does not need.
    options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    if isinstance(pool, redis.sentinel.SentinelConnectionPool):
        return redis.asyncio.sentinel.SentinelConnectionPool(  # type: ignore[no-untyped-call]
            pool.service_name,
            _async_sentinel_for(pool.sentinel_manager),
            is_master=pool.is_master,
            check_connection=pool.check_connection,
            connection_class=async_class,
            max_connections=pool.max_connections,
            **options,
        )
    if isinstance(pool, redis.BlockingConnectionPool):
        return redis.asyncio.BlockingConnectionPool(
            connection_class=async_class,
            max_connections=pool.max_connections,
            timeout=pool.timeout,
            **options,
        )
    return redis.asyncio.ConnectionPool(
        connection_class=async_class, max_connections=pool.max_connections, **options
    )


# What an asyncio RedisCluster takes of a sync one's node settings.
_CLUSTER_OPTIONS = (
    "username",
    "password",
    "client_name",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "socket_keepalive_options",
    "max_connections",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
)


def async_cluster_for(cluster: RedisCluster) -> AsyncRedisCluster:
    """Return an asyncio RedisCluster with the nodes and settings of a sync one."""
    kwargs = cluster.nodes_manager.connection_kwargs
    options = {name: kwargs[name] for name in _CLUSTER_OPTIONS if name in kwargs}
    connection_class = kwargs.get("connection_class", redis.Connection)
    return AsyncRedisCluster(
        startup_nodes=[
            AsyncClusterNode(node.host, node.port)
            for node in cluster.nodes_manager.startup_nodes.values()
        ],
        ssl=issubclass(connection_class, redis.SSLConnection),
        retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
        reinitialize_steps=0,  # see cluster.py
        # As for the asyncio pool above.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
        **options,
    )


def _async_sentinel_for(sentinel: redis.sentinel.Sentinel) -> AsyncSentinel:
    """Return an asyncio Sentinel that asks the same sentinels, the same way."""
    # Without the sync client's retry policy: AsyncSentinel sets its own.
    options = {k: v for k, v in sentinel.sentinel_kwargs.items() if k != "retry"}
    return AsyncSentinel(
        addresses(sentinel),
        min_other_sentinels=sentinel.min_other_sentinels,
        sentinel_kwargs=options,
    )


async def _closed_at_shutdown(connection: AsyncConnection) -> AsyncIterator[None]:
    """Close the connection when the event loop closes its async generators."""
    try:
        yield
    finally:
        pool = getattr(connection.client, "connection_pool", None)
        try:
            await connection.client.aclose()
        finally:
            if isinstance(pool, redis.asyncio.sentinel.SentinelConnectionPool):
                await pool.sentinel_manager.aclose()


async def get_async_connection() -> AsyncConnection:
    """Return the async connection for SESSION_CACHE_ALIAS on the running loop."""
    alias = settings.SESSION_CACHE_ALIAS
    clients = _async_connections.setdefault(asyncio.get_running_loop(), _LoopClients())
    sync_connection = get_connection()
    # Built from the sync connection of the settings as they are: one built
    # from that of settings since changed is made again.
    if (made := clients.current.get(alias)) is not None and made[1] is sync_connection:
        return made[0]
    sync_client = sync_connection.client
    client: redis.asyncio.Redis | AsyncRedisCluster
    if isinstance(sync_client, RedisCluster):
        client = async_cluster_for(sync_client)
    else:
        # from_pool: the client owns the pool, so closing it closes the
        # connections.
        client = redis.asyncio.Redis.from_pool(
            async_pool_for(sync_client.connection_pool)
        )
    connection = AsyncConnection(client=client, **_registered(client))
    # asyncio.run(), asgiref's async_to_sync and ASGI servers all call the
    # loop's shutdown_asyncgens() before closing it: an async generator that
    # is suspended then gets closed, and its finally closes the connection.
    closer = _closed_at_shutdown(connection)
    await anext(closer)
    clients.closers.append(closer)
    clients.current[alias] = (connection, sync_connection)
    if isinstance(client, AsyncRedisCluster):
        # Mapped now, once the connection is shared (concurrent requests
        # wait on redis-py's own lock): redis-py 8.1 sends the first command
        # of an unmapped client to any node, which costs a MOVED and a
        # second round trip.
        with unavailable_on_error():
            await client.initialize()
    return connection


async def close_async_connections() -> int:
    """Close the clients opened on the running event loop; return how many."""
    clients = _async_connections.pop(asyncio.get_running_loop(), _LoopClients())
    for closer in clients.closers:
        await closer.aclose()  # type: ignore[attr-defined]
    return len(clients.closers)


@receiver(setting_changed)
def _forget_connections(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CACHES", "SESSION_CACHE_ALIAS"}:
        get_connection.forget()


class _Outage:
    """Whether this process's last Redis call failed so: log it once, and its end."""

    def __init__(self, started: str, ended: str) -> None:
        self.ongoing = False
        self.started = started
        self.ended = ended
        self._lock = threading.Lock()

    def failed(self, exc: Exception) -> None:
        with self._lock:
            if self.ongoing:
                return
            self.ongoing = True
        logger.error("%s: %s: %s", self.started, type(exc).__name__, exc)

    def recovered(self) -> None:
        if not self.ongoing:  # the common case, without taking the lock
            return
        with self._lock:
            if not self.ongoing:
                return
            self.ongoing = False
        logger.warning(self.ended)


outage = _Outage(
    "Redis is unavailable, answering 503 for sessions",
    "Redis is available again.",
)


class _Refusal:
    """A Redis set up so that the engine cannot work: each reply logged once."""

    def __init__(self, message: str, state: str) -> None:
        self.message = message
        self.state = state
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def failed(self, reply: str) -> SessionStoreRefused:
        """Log Redis's reply, the first time; return the error to raise."""
        # Not the arguments that Redis repeats after an unknown command:
        # they may hold session data.
        reply = reply.split(", with args beginning with:")[0]
        with self._lock:
            new = reply not in self._logged
            self._logged.add(reply)
        if new:
            logger.error("%s Answering 503: %s", self.message, reply)
        return SessionStoreRefused(self.message, self.state)


too_old = _Refusal(
    "Redis is older than 7.0, which the session engine needs (or Valkey).",
    "unsupported",
)
refused = _Refusal(
    "Redis refuses the session engine a command or a key (an ACL, or a "
    "command renamed away): see the README's Deploy for what it needs.",
    "refused",
)
not_a_cluster = _Refusal(
    "Redis Cluster cannot be mapped: a node REDIS_CLUSTER_NODES names is not "
    "in cluster mode, or the ACL refuses CLUSTER SLOTS (see the README's "
    "Deploy).",
    "refused",
)
_NOT_A_CLUSTER = "Cluster mode is not enabled on this node"
denied = _Refusal(
    "Redis is in protected mode and refuses this host: give it a password "
    "(requirepass), as REDIS_URL then must.",
    "refused",
)
# Replies that say which. Too old: a form of a command that came with 7.0
# (EXPIRE ... NX, which every count sends) or 6.2 (HELLO without
# arguments), or HELLO unknown in the backquotes of a Redis before 6.0
# (RESP3 clients open every connection with it; a later Redis that quotes
# it so had it renamed away). Refused: any other command unknown (renamed
# away), at the top or in a script, or a script's command refused by the
# ACL (in Valkey's words, then Redis's, which 6.2 puts inside its own).
_TOO_OLD = re.compile(
    r"wrong number of arguments for '(expire|hello)' command|unknown command `HELLO`"
)
_REFUSED_IN_SCRIPT = re.compile(
    r"unknown (redis )?command called from (lua )?script|ACL failure in script|"
    r"The user executing the script can't",
    re.IGNORECASE,
)


# What redis-py's pipelines put before a reply: the command, its arguments
# (key names) included.
_PIPELINE_ERROR = re.compile(
    r"^Command # \d+ \(.*?\) of pipeline caused error: ", re.DOTALL
)


def _reply(exc: Exception) -> str:
    """Return Redis's reply in exc, without what a pipeline put before it."""
    return _PIPELINE_ERROR.sub("", str(exc), count=1)


def _refusal(exc: redis.RedisError | RedisClusterException) -> _Refusal | None:
    """Return how Redis's setup keeps the engine from working, if exc says so."""
    if isinstance(exc, RedisClusterException):
        # What redis-py says when a node answers CLUSTER SLOTS with an error.
        return not_a_cluster if _NOT_A_CLUSTER in str(exc) else None
    if not isinstance(exc, redis.ResponseError):
        return None
    reply = _reply(exc)
    if _TOO_OLD.match(reply):
        return too_old
    if (
        isinstance(exc, redis.exceptions.NoPermissionError)
        or reply.startswith("unknown command ")
        or _REFUSED_IN_SCRIPT.search(reply)
    ):
        return refused
    if reply.startswith("DENIED "):
        return denied
    return None


class _PoolExhaustion:
    """
    Count requests refused for want of a free pooled connection; log the count.

    Not Redis's fault: every connection of this process's pool was in use
    for longer than a request may wait (REDIS_MAX_CONNECTIONS,
    REDIS_POOL_TIMEOUT). The count is logged by the next request that Redis
    serves, at most once a minute, so that a burst is one line with its
    size. A Redis outage forgets it: while Redis hangs, the requests waiting
    behind the hung ones find the pool full too (often just before the first
    timeout), and the outage's own line explains them.
    """

    INTERVAL = 60.0

    def __init__(self) -> None:
        self._count = 0
        self._since = 0.0
        self._logged_at = -math.inf
        self._lock = threading.Lock()

    def failed(self) -> None:
        with self._lock:
            if not self._count:
                self._since = time.monotonic()
            self._count += 1

    def forget(self) -> None:
        with self._lock:
            self._count = 0

    def served(self) -> None:
        if not self._count:  # the common case, without taking the lock
            return
        now = time.monotonic()
        with self._lock:
            if not self._count or now - self._logged_at < self.INTERVAL:
                return
            count, seconds = self._count, now - self._since
            self._count, self._logged_at = 0, now
        logger.error(
            "%d request(s) answered 503 for want of a free Redis connection in "
            "this process's pool, over %.1f s: raise REDIS_MAX_CONNECTIONS.",
            count,
            seconds,
        )


pool_exhausted = _PoolExhaustion()


def _is_pool_exhausted(exc: Exception) -> bool:
    # redis-py's blocking pools say so in a plain ConnectionError.
    return isinstance(exc, redis.exceptions.MaxConnectionsError) or str(exc) == (
        "No connection available."
    )


class _OutageGuard:
    """The context manager of unavailable_on_error(); it holds no state."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            outage.recovered()
            pool_exhausted.served()
            return
        if not isinstance(exc, redis.RedisError | RedisClusterException):
            return
        if refusal := _refusal(exc):
            raise refusal.failed(_reply(exc)) from exc
        if not is_outage(exc):
            return
        if _is_pool_exhausted(exc):
            pool_exhausted.failed()
        else:
            pool_exhausted.forget()
            outage.failed(exc)
        raise SessionStoreUnavailable(
            f"The session store did not answer: {exc.__class__.__name__}: {exc}. "
            "It is likely that Redis is down, unreachable, loading, read-only "
            "or out of memory, or that every pooled connection is in use."
        ) from exc


# A class, not a @contextmanager generator: it guards every Redis call, and
# entering a generator costs a microsecond.
_outage_guard = _OutageGuard()


def unavailable_on_error() -> _OutageGuard:
    """
    Raise SessionStoreUnavailable for a Redis outage inside the block.

    So does a Redis set up so that the engine cannot work (SessionStoreRefused):
    too old (before 7.0), refusing it a command or a key (an ACL, a command
    renamed away), in protected mode; logged once per process and reply.
    Any other Redis error (a wrong type, a script error, a bad argument) is
    a bug or a bad value, not an outage: it goes up as it is.
    """
    return _outage_guard
