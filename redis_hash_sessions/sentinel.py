"""
redis-py's Sentinel clients, safe when many requests look for the primary at once.

redis-py (8.1) moves the sentinel that answered to the front of its list
with ``sentinels[0], sentinels[i] = sentinel, sentinels[0]``, where ``i``
is where that sentinel was before the network call. When several threads
or tasks look for the primary at once (every request, during a failover),
another caller may have reordered the list meanwhile, and the swap then
writes one sentinel twice and drops another: the process ends up asking
fewer sentinels, in the end one, and the dropped client's connections are
left to the garbage collector. These subclasses find the sentinel by
identity at the moment they move it, under a lock.

They also ask each sentinel once: redis-py's clients retry a timeout three
times with a backoff of seconds, so one hung sentinel would hold every new
connection for seconds before the next sentinel was asked.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.retry
import redis.sentinel
from django_redis.pool import SentinelConnectionFactory as DjangoRedisFactory
from redis.backoff import NoBackoff

_reordering = threading.Lock()


def _to_front(sentinels: list[Any], sentinel: Any) -> None:
    """Move sentinel to the front of sentinels, keeping every other one."""
    with _reordering:
        index = next((i for i, s in enumerate(sentinels) if s is sentinel), 0)
        sentinels[0], sentinels[index] = sentinels[index], sentinels[0]


def _primary(manager: Any, masters: Any, service_name: str) -> tuple[str, int] | None:
    state = masters.get(service_name)
    if not state or not manager.check_master_state(state, service_name):
        return None
    ip = manager._force_master_ip
    return (state["ip"] if ip is None else ip), state["port"]


def _not_found(
    service_name: str, errors: list[str]
) -> redis.sentinel.MasterNotFoundError:
    details = f" : {', '.join(errors)}" if errors else ""
    return redis.sentinel.MasterNotFoundError(
        f"No master found for {service_name!r}{details}"
    )


def _asked_once(
    sentinel_kwargs: dict[str, Any] | None,
    connection_kwargs: dict[str, Any],
    retry: Any,
) -> dict[str, Any]:
    """Return the sentinels' client options (redis-py's defaults) without retries."""
    if sentinel_kwargs is None:
        sentinel_kwargs = {
            k: v for k, v in connection_kwargs.items() if k.startswith("socket_")
        }
    return {**sentinel_kwargs, "retry": retry}


class Sentinel(redis.sentinel.Sentinel):
    def __init__(
        self,
        sentinels: list[tuple[str, int]],
        min_other_sentinels: int = 0,
        sentinel_kwargs: dict[str, Any] | None = None,
        **connection_kwargs: Any,
    ) -> None:
        once = redis.retry.Retry(NoBackoff(), 0)
        super().__init__(  # type: ignore[no-untyped-call]
            sentinels,
            min_other_sentinels,
            _asked_once(sentinel_kwargs, connection_kwargs, once),
            **connection_kwargs,
        )

    def discover_master(self, service_name: str) -> tuple[str, int]:
        """Return the primary's address from the first sentinel that knows it."""
        errors = []
        for sentinel in list(self.sentinels):
            try:
                masters = sentinel.sentinel_masters()
            except redis.RedisError as exc:  # down, hung, or not a sentinel
                errors.append(f"{sentinel} - {exc!r}")
                continue
            if address := _primary(self, masters, service_name):
                _to_front(self.sentinels, sentinel)
                return address
        raise _not_found(service_name, errors)


class AsyncSentinel(redis.asyncio.sentinel.Sentinel):
    def __init__(
        self,
        sentinels: list[tuple[str, int]],
        min_other_sentinels: int = 0,
        sentinel_kwargs: dict[str, Any] | None = None,
        **connection_kwargs: Any,
    ) -> None:
        once = redis.asyncio.retry.Retry(NoBackoff(), 0)
        super().__init__(  # type: ignore[no-untyped-call]
            sentinels,
            min_other_sentinels,
            _asked_once(sentinel_kwargs, connection_kwargs, once),
            **connection_kwargs,
        )

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        """Return the primary's address from the first sentinel that knows it."""
        errors = []
        for sentinel in list(self.sentinels):
            try:
                masters = await sentinel.sentinel_masters()
            except redis.RedisError as exc:  # down, hung, or not a sentinel
                errors.append(f"{sentinel} - {exc!r}")
                continue
            if address := _primary(self, masters, service_name):
                _to_front(self.sentinels, sentinel)
                return address
        raise _not_found(service_name, errors)


class SentinelConnectionFactory(DjangoRedisFactory):  # type: ignore[misc]
    """django-redis's Sentinel connection factory, asking through Sentinel above."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        manager: redis.sentinel.Sentinel = self._sentinel  # type: ignore[has-type]
        self._sentinel = Sentinel(
            addresses(manager),
            min_other_sentinels=manager.min_other_sentinels,
            sentinel_kwargs=manager.sentinel_kwargs,
            **manager.connection_kwargs,
        )


def addresses(manager: Any) -> list[tuple[str, int]]:
    """Return the (host, port) of each sentinel that a Sentinel asks."""
    return [
        (
            client.connection_pool.connection_kwargs["host"],
            client.connection_pool.connection_kwargs["port"],
        )
        for client in manager.sentinels
    ]
