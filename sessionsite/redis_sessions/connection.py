"""Build the Redis clients and scripts that the session engine uses.

This is the only module that creates connections. The sync client is
django-redis's own client for ``SESSION_CACHE_ALIAS`` (its primary, so that
sessions are always read where they were written). The async client is
built from that client's connection pool: the same address, credentials,
TLS, timeouts, keepalive and health checks. It is made once per event loop,
because a ``redis.asyncio`` connection belongs to the loop that opened it,
and closed when that loop shuts down.

It is also the one place that tells a Redis outage from any other error.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis
import redis._parsers
import redis.asyncio
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_redis import get_redis_connection
from redis.commands.core import AsyncScript, Script
from redis.maint_notifications import MaintNotificationsConfig

from .exceptions import SessionStoreUnavailable

LUA_DIR = Path(__file__).resolve().parent / "lua"

logger = logging.getLogger("sessionsite.redis_sessions")


def _lua(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text()


# The scripts that write sessions start with the shared helpers.
SAVE_LUA = _lua("common") + _lua("save")
INCR_LUA = _lua("common") + _lua("incr")
LOAD_AND_DELETE_LUA = _lua("load_and_delete")
SESSIONS_OF_LUA = _lua("sessions_of")
END_SESSIONS_LUA = _lua("end_sessions")
SCRIPTS = (SAVE_LUA, INCR_LUA, LOAD_AND_DELETE_LUA, SESSIONS_OF_LUA, END_SESSIONS_LUA)

# Errors of a Redis that cannot serve now (down, unreachable, hung, refusing
# our credentials, loading, a read-only replica, out of memory, a cluster or
# primary that is down, a slot that is moving); every other error is a bug
# or a bad argument.
OUTAGES: tuple[type[Exception], ...] = (
    redis.ConnectionError,  # BusyLoadingError (LOADING) and AuthenticationError
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ClusterDownError,  # MasterDownError (MASTERDOWN) is one
    redis.exceptions.TryAgainError,
)
# Replies of a Redis that cannot serve now, which redis-py has no class for:
# a script running too long, too few replicas for a write, a failed snapshot
# that stops writes.
OUTAGE_REPLIES = ("BUSY ", "NOREPLICAS ", "MISCONF ")


def is_outage(exc: redis.RedisError) -> bool:
    """Return True if exc says that Redis cannot serve now."""
    return isinstance(exc, OUTAGES) or str(exc).startswith(OUTAGE_REPLIES)


@dataclass(frozen=True)
class Connection:
    """A sync client and the engine's scripts registered on it."""

    client: redis.Redis
    save: Script
    incr: Script
    load_and_delete: Script
    sessions_of: Script
    end_sessions: Script


@dataclass(frozen=True)
class AsyncConnection:
    """An async client and the engine's scripts registered on it."""

    client: redis.asyncio.Redis
    save: AsyncScript
    incr: AsyncScript
    load_and_delete: AsyncScript
    sessions_of: AsyncScript
    end_sessions: AsyncScript


_connections: dict[str, Connection] = {}
# Per event loop: the connection of each alias, and the async generator
# whose closing (at the loop's shutdown_asyncgens()) closes them.
_async_connections: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[AsyncConnection, AsyncIterator[None]]]
] = weakref.WeakKeyDictionary()


def get_connection() -> Connection:
    """Return the sync connection for SESSION_CACHE_ALIAS, creating it once."""
    alias = settings.SESSION_CACHE_ALIAS
    try:
        return _connections[alias]
    except KeyError:
        pass
    client = get_redis_connection(alias, write=True)
    connection = Connection(
        client=client,
        save=client.register_script(SAVE_LUA),
        incr=client.register_script(INCR_LUA),
        load_and_delete=client.register_script(LOAD_AND_DELETE_LUA),
        sessions_of=client.register_script(SESSIONS_OF_LUA),
        end_sessions=client.register_script(END_SESSIONS_LUA),
    )
    _connections[alias] = connection
    return connection


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
        if not name.startswith(_POOL_BOOKKEEPING)
    }
    if "parser_class" in options:
        options["parser_class"] = _async_parser(options["parser_class"])
    # Off: with redis-py's default ("auto", under RESP3) its asyncio pool
    # skips the check that drops a pooled connection the server has closed,
    # so the first request after a Redis restart answered 503 under ASGI
    # (tests/test_faults.py, the AOF restart). Maintenance notifications
    # are a managed-Redis feature that a restart-safe pool does not need.
    options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
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


async def _closed_at_shutdown(connection: AsyncConnection) -> AsyncIterator[None]:
    """Close the connection when the event loop closes its async generators."""
    try:
        yield
    finally:
        await connection.client.aclose()


async def get_async_connection() -> AsyncConnection:
    """Return the async connection for SESSION_CACHE_ALIAS on the running loop."""
    alias = settings.SESSION_CACHE_ALIAS
    loop = asyncio.get_running_loop()
    per_alias = _async_connections.setdefault(loop, {})
    try:
        return per_alias[alias][0]
    except KeyError:
        pass
    pool = async_pool_for(get_connection().client.connection_pool)
    # from_pool: the client owns the pool, so closing it closes the connections.
    client = redis.asyncio.Redis.from_pool(pool)
    connection = AsyncConnection(
        client=client,
        save=client.register_script(SAVE_LUA),
        incr=client.register_script(INCR_LUA),
        load_and_delete=client.register_script(LOAD_AND_DELETE_LUA),
        sessions_of=client.register_script(SESSIONS_OF_LUA),
        end_sessions=client.register_script(END_SESSIONS_LUA),
    )
    # asyncio.run(), asgiref's async_to_sync and ASGI servers all call the
    # loop's shutdown_asyncgens() before closing it: an async generator that
    # is suspended then gets closed, and its finally closes the connection.
    closer = _closed_at_shutdown(connection)
    await anext(closer)
    per_alias[alias] = (connection, closer)
    return connection


async def close_async_connections() -> None:
    """Close the connections opened on the running event loop."""
    per_alias = _async_connections.pop(asyncio.get_running_loop(), {})
    for _, closer in per_alias.values():
        await closer.aclose()  # type: ignore[attr-defined]


@receiver(setting_changed)
def _forget_connections(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CACHES", "SESSION_CACHE_ALIAS"}:
        _connections.clear()
        _async_connections.clear()


class _Outage:
    """Whether this process's last Redis call failed: log an outage once."""

    def __init__(self) -> None:
        self.ongoing = False
        self._lock = threading.Lock()

    def failed(self, exc: Exception) -> None:
        with self._lock:
            if self.ongoing:
                return
            self.ongoing = True
        logger.error(
            "Redis is unavailable, answering 503 for sessions: %s: %s",
            type(exc).__name__,
            exc,
        )

    def recovered(self) -> None:
        if not self.ongoing:  # the common case, without taking the lock
            return
        with self._lock:
            if not self.ongoing:
                return
            self.ongoing = False
        logger.warning("Redis is available again.")


outage = _Outage()


@contextmanager
def unavailable_on_error() -> Iterator[None]:
    """
    Raise SessionStoreUnavailable for a Redis outage inside the block.

    Any other Redis error (a wrong type, a script error, a bad argument) is
    a bug or a bad value, not an outage: it goes up as it is.
    """
    try:
        yield
    except redis.RedisError as exc:
        if not is_outage(exc):
            raise
        outage.failed(exc)
        raise SessionStoreUnavailable(
            f"The session store did not answer: {exc.__class__.__name__}: {exc}. "
            "It is likely that Redis is down, unreachable, loading, read-only "
            "or out of memory."
        ) from exc
    outage.recovered()
