"""The engine's Sentinel clients keep every sentinel when many requests ask at once."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis.asyncio.retry
import redis.retry

from redis_hash_sessions import connection
from redis_hash_sessions.sentinel import AsyncSentinel, Sentinel, addresses
from tests.topologies import SERVICE, SentinelSet, Topology

LOOKUPS = 20
# Shorter than the freeze: each lookup gives up on the frozen sentinel.
TIMEOUT = {"socket_timeout": 0.3, "socket_connect_timeout": 0.3}


@pytest.fixture
def sentinel_set(redis_topology: Topology) -> SentinelSet:
    if not isinstance(redis_topology, SentinelSet):
        pytest.skip("needs Sentinel")
    return redis_topology


def primary(sentinel_set: SentinelSet) -> tuple[str, int]:
    return "127.0.0.1", sentinel_set.current_primary().port


def test_parallel_lookups_past_a_hung_sentinel_keep_every_sentinel(sentinel_set):
    manager = Sentinel(sentinel_set.addresses(), sentinel_kwargs=TIMEOUT)
    sentinel_set.sentinels[0].freeze()
    try:
        with ThreadPoolExecutor(LOOKUPS) as pool:
            found = set(pool.map(manager.discover_master, [SERVICE] * LOOKUPS))
    finally:
        sentinel_set.sentinels[0].resume()
    assert found == {primary(sentinel_set)}
    assert sorted(addresses(manager)) == sorted(sentinel_set.addresses())
    for client in manager.sentinels:
        client.close()


@pytest.mark.asyncio
async def test_concurrent_async_lookups_past_a_hung_sentinel_keep_every_sentinel(
    sentinel_set,
):
    manager = AsyncSentinel(sentinel_set.addresses(), sentinel_kwargs=TIMEOUT)
    sentinel_set.sentinels[0].freeze()
    try:
        lookups = [manager.discover_master(SERVICE) for _ in range(LOOKUPS)]
        found = set(await asyncio.gather(*lookups))
    finally:
        sentinel_set.sentinels[0].resume()
    assert found == {primary(sentinel_set)}
    assert sorted(addresses(manager)) == sorted(sentinel_set.addresses())
    await manager.aclose()


def test_the_sync_client_asks_each_sentinel_once_with_short_timeouts(sentinel_set):
    pool = connection.get_connection().client.connection_pool
    for client in pool.sentinel_manager.sentinels:
        made = client.connection_pool.make_connection()
        assert type(made.retry) is redis.retry.Retry
        assert made.retry.get_retries() == 0
        assert made.socket_timeout == 0.5


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis")
async def test_the_async_client_asks_each_sentinel_once_with_short_timeouts(
    sentinel_set,
):
    pool = (await connection.get_async_connection()).client.connection_pool
    for client in pool.sentinel_manager.sentinels:
        made = client.connection_pool.make_connection()
        assert type(made.retry) is redis.asyncio.retry.Retry
        assert made.retry.get_retries() == 0
        assert made.socket_timeout == 0.5


def test_a_server_that_is_not_a_sentinel_is_passed_over(sentinel_set, redis_client):
    primary_port = sentinel_set.current_primary().port
    manager = Sentinel(
        [("127.0.0.1", primary_port), *sentinel_set.addresses()],
        sentinel_kwargs=TIMEOUT,
    )
    assert manager.discover_master(SERVICE) == primary(sentinel_set)
    for client in manager.sentinels:
        client.close()
