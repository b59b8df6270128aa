"""Build the Redis clients and scripts that the session engine uses.

This is the only module that creates connections. The sync client is
django-redis's own client for ``SESSION_CACHE_ALIAS`` (its primary, so that
sessions are always read where they were written); the async client is built
from the same ``CACHES`` entry, one per event loop, because a
``redis.asyncio`` connection belongs to the loop that opened it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_redis import get_redis_connection
from redis.commands.core import AsyncScript, Script

from .exceptions import SessionStoreUnavailable

LUA_DIR = Path(__file__).resolve().parent / "lua"

logger = logging.getLogger("sessionsite.redis_sessions")


def _lua(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text()


# The scripts that change sessions start with the per-user index helpers.
SAVE_LUA = _lua("index") + _lua("save")
INCR_LUA = _lua("index") + _lua("incr")
DELETE_LUA = _lua("index") + _lua("delete")
SESSIONS_OF_LUA = _lua("sessions_of")
END_SESSIONS_LUA = _lua("index") + _lua("end_sessions")
SCRIPTS = (SAVE_LUA, INCR_LUA, DELETE_LUA, SESSIONS_OF_LUA, END_SESSIONS_LUA)


@dataclass(frozen=True)
class Connection:
    """A sync client and the engine's scripts registered on it."""

    client: redis.Redis
    save: Script
    incr: Script
    delete: Script
    sessions_of: Script
    end_sessions: Script


@dataclass(frozen=True)
class AsyncConnection:
    """An async client and the engine's scripts registered on it."""

    client: redis.asyncio.Redis
    save: AsyncScript
    incr: AsyncScript
    delete: AsyncScript


_connections: dict[str, Connection] = {}
_async_connections: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, AsyncConnection]
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
        delete=client.register_script(DELETE_LUA),
        sessions_of=client.register_script(SESSIONS_OF_LUA),
        end_sessions=client.register_script(END_SESSIONS_LUA),
    )
    _connections[alias] = connection
    return connection


def async_client_kwargs(alias: str) -> tuple[str, dict[str, Any]]:
    """Return the URL and connection pool arguments of a django-redis CACHES entry."""
    config = settings.CACHES[alias]
    location = config["LOCATION"]
    if isinstance(location, str):
        location = location.split(",")
    options = config.get("OPTIONS", {})
    kwargs: dict[str, Any] = {
        "socket_timeout": options.get("SOCKET_TIMEOUT"),
        "socket_connect_timeout": options.get("SOCKET_CONNECT_TIMEOUT"),
    }
    for option, kwarg in (("USERNAME", "username"), ("PASSWORD", "password")):
        if options.get(option):
            kwargs[kwarg] = options[option]
    pool_kwargs = options.get("CONNECTION_POOL_KWARGS", {})
    for kwarg in ("max_connections", "timeout"):
        if kwarg in pool_kwargs:
            kwargs[kwarg] = pool_kwargs[kwarg]
    return location[0].strip(), kwargs


def _async_pool_class(
    config: dict[str, Any],
) -> type[redis.asyncio.ConnectionPool]:
    """Return the asyncio twin of the sync client's connection pool class."""
    sync_class = config.get("OPTIONS", {}).get("CONNECTION_POOL_CLASS", "")
    if sync_class.endswith("BlockingConnectionPool"):
        return redis.asyncio.BlockingConnectionPool
    return redis.asyncio.ConnectionPool


def get_async_connection() -> AsyncConnection:
    """Return the async connection for SESSION_CACHE_ALIAS on the running loop."""
    alias = settings.SESSION_CACHE_ALIAS
    per_alias = _async_connections.setdefault(asyncio.get_running_loop(), {})
    try:
        return per_alias[alias]
    except KeyError:
        pass
    url, kwargs = async_client_kwargs(alias)
    pool_class = _async_pool_class(settings.CACHES[alias])
    # from_pool: the client owns the pool, so closing it closes the connections.
    client = redis.asyncio.Redis.from_pool(pool_class.from_url(url, **kwargs))
    connection = AsyncConnection(
        client=client,
        save=client.register_script(SAVE_LUA),
        incr=client.register_script(INCR_LUA),
        delete=client.register_script(DELETE_LUA),
    )
    per_alias[alias] = connection
    return connection


async def close_async_connections() -> None:
    """Close the connections opened on the running event loop."""
    per_alias = _async_connections.pop(asyncio.get_running_loop(), {})
    for connection in per_alias.values():
        await connection.client.aclose()


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
    """Raise SessionStoreUnavailable for any Redis error inside the block."""
    try:
        yield
    except redis.RedisError as exc:
        outage.failed(exc)
        raise SessionStoreUnavailable(
            f"The session store did not answer: {exc.__class__.__name__}: {exc}. "
            "It is likely that Redis is down, unreachable, loading, read-only "
            "or out of memory."
        ) from exc
    outage.recovered()
