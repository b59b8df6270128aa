"""A Redis that is down or hung is an error, never "no session"."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from redis_hash_sessions import connection
from redis_hash_sessions.engine import SessionStore
from redis_hash_sessions.exceptions import SessionStoreUnavailable
from tests.conftest import caches_for, session_redis_key, stored_key
from tests.redis_process import RedisProcess, free_port

pytestmark = pytest.mark.faults


@pytest.fixture
def doomed(tmp_path: Path, settings) -> Iterator[RedisProcess]:
    """A server of the test's own, which the test may stop or freeze."""
    server = RedisProcess(tmp_path / "doomed")
    server.start()
    settings.CACHES = caches_for(server.url)
    yield server
    server.kill()


OPERATIONS: dict[str, Callable[[str], object]] = {
    "load": lambda key: SessionStore(key).load(),
    "save": lambda key: SessionStore(key).save(),
    "create": lambda key: SessionStore().create(),
    "exists": lambda key: SessionStore().exists(key),
    "delete": lambda key: SessionStore(key).delete(),
    "incr": lambda key: SessionStore(key).incr("visits"),
    "load_and_incr": lambda key: SessionStore(key).load_and_incr("visits"),
    "load_and_delete": lambda key: SessionStore(key).load_and_delete(),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_stopped_redis_raises_the_engines_own_error(doomed, operation):
    key = stored_key()
    doomed.stop()
    with pytest.raises(SessionStoreUnavailable) as raised:
        OPERATIONS[operation](key)
    assert isinstance(raised.value.__cause__, redis.ConnectionError)


@pytest.mark.parametrize(
    "use",
    [lambda session: session.get("visits"), lambda session: session.incr("visits")],
    ids=["read", "count"],
)
def test_a_stopped_redis_never_reads_as_an_empty_session(doomed, use):
    key = stored_key()
    doomed.stop()
    session = SessionStore(key)
    with pytest.raises(SessionStoreUnavailable):
        use(session)
    assert session.session_key == key
    assert not hasattr(session, "_session_cache")


def test_a_redis_out_of_memory_raises_the_engines_own_error(doomed):
    key = stored_key()
    doomed.client().config_set("maxmemory-policy", "noeviction")
    doomed.client().config_set("maxmemory", 1)
    session = SessionStore(key)
    session["more"] = "data"
    with pytest.raises(SessionStoreUnavailable) as raised:
        session.save()
    assert isinstance(raised.value.__cause__, redis.exceptions.OutOfMemoryError)


def test_a_read_only_redis_raises_the_engines_own_error(doomed):
    key = stored_key()
    # A replica of a server that is not there: it answers reads, refuses writes.
    doomed.client().replicaof("127.0.0.1", free_port())
    session = SessionStore(key)
    session["more"] = "data"
    with pytest.raises(SessionStoreUnavailable) as raised:
        session.save()
    assert isinstance(raised.value.__cause__, redis.ReadOnlyError)


def test_a_hung_redis_raises_once_the_socket_timeout_passes(doomed):
    key = stored_key()
    doomed.freeze()
    with pytest.raises(SessionStoreUnavailable) as raised:
        SessionStore(key).load()
    assert isinstance(raised.value.__cause__, redis.TimeoutError)


def pool_of(redis_key: str) -> redis.ConnectionPool:
    """Return the sync client's pool of connections to the server of redis_key."""
    client = connection.get_connection().client
    if isinstance(client, RedisCluster):
        return client.get_redis_connection(
            client.get_node_from_key(redis_key)
        ).connection_pool
    return client.connection_pool


def test_the_sync_client_has_short_timeouts_and_no_retries():
    made = pool_of("any").make_connection()
    assert made.socket_timeout == 0.5
    assert made.socket_connect_timeout == 0.5
    assert made.retry.get_retries() == 0


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis")
async def test_the_async_client_has_short_timeouts_and_no_retries():
    client = (await connection.get_async_connection()).client
    if isinstance(client, AsyncRedisCluster):
        node = client.get_node_from_key("any")
        made = node.connection_class(**node.connection_kwargs)
    else:
        made = client.connection_pool.make_connection()
    assert made.socket_timeout == 0.5
    assert made.socket_connect_timeout == 0.5
    assert made.retry.get_retries() == 0


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis")
async def test_async_load_from_a_stopped_redis_raises_the_engines_own_error(doomed):
    key = stored_key()
    doomed.stop()
    with pytest.raises(SessionStoreUnavailable) as raised:
        await SessionStore(key).aload()
    assert isinstance(raised.value.__cause__, redis.ConnectionError)


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis")
async def test_async_load_from_a_hung_redis_raises_after_the_timeout(doomed):
    key = stored_key()
    doomed.freeze()
    with pytest.raises(SessionStoreUnavailable) as raised:
        await SessionStore(key).aload()
    assert isinstance(raised.value.__cause__, redis.TimeoutError)


def fail_for_want_of_a_connection(key: str) -> None:
    pool = pool_of(session_redis_key(key))
    held = pool.get_connection()
    try:
        with pytest.raises(SessionStoreUnavailable):
            SessionStore(key).load()
    finally:
        pool.release(held)


@pytest.fixture
def small_pool(settings, redis_topology, monkeypatch) -> str:
    """A pool of one connection, and a session stored through it."""
    settings.CACHES = redis_topology.caches(db=2, max_connections=1)
    monkeypatch.setattr(connection, "pool_exhausted", connection._PoolExhaustion())
    return stored_key()


def test_a_full_pool_answers_503_and_is_not_logged_as_redis_down(small_pool, caplog):
    caplog.clear()  # an earlier test's outage ends with the stored key's success
    fail_for_want_of_a_connection(small_pool)
    assert SessionStore(small_pool).load() == {"visits": 1}
    [line] = [record.getMessage() for record in caplog.records]
    assert line.startswith(
        "1 request(s) answered 503 for want of a free Redis connection"
    )


def test_a_burst_of_refusals_is_one_line_with_its_size(small_pool, caplog):
    caplog.clear()
    for _ in range(3):
        fail_for_want_of_a_connection(small_pool)
    assert caplog.records == []  # nothing yet: Redis has not answered since
    assert SessionStore(small_pool).load() == {"visits": 1}
    [line] = [record.getMessage() for record in caplog.records]
    assert line.startswith("3 request(s) answered 503")


def test_refusals_are_logged_at_most_once_a_minute(small_pool, caplog):
    caplog.clear()
    for _ in range(2):
        fail_for_want_of_a_connection(small_pool)
        assert SessionStore(small_pool).load() == {"visits": 1}
    assert len(caplog.records) == 1


def test_refusals_just_before_an_outage_are_the_outages(small_pool, caplog):
    caplog.clear()
    fail_for_want_of_a_connection(small_pool)
    with pytest.raises(SessionStoreUnavailable), connection.unavailable_on_error():
        raise redis.ConnectionError("Error 111 connecting: Connection refused.")
    assert SessionStore(small_pool).load() == {"visits": 1}
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [
        "Redis is unavailable, answering 503 for sessions",
        "Redis is available again.",
    ]
