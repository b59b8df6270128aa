from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import override_settings

from redis_hash_sessions import connection

from .redis_process import RedisProcess
from .topologies import Single, Topology
from .topologies import caches_for as caches_for  # for the tests that import it here

PASSWORD = "correct horse battery staple"


def stored_key(**data: object) -> str:
    """Save a new session holding data (visits=1 by default); return its key."""
    from redis_hash_sessions.engine import SessionStore

    session = SessionStore()
    session.update(data or {"visits": 1})
    session.save()
    assert session.session_key is not None
    return session.session_key


# The one round trip of a count that loads the session: a transaction of
# plain commands (SessionStore.load_and_incr()).
COUNT = "MULTI+HINCRBY+EXPIRE+HGETALL+TTL+TIME+EXEC"


@pytest.fixture
def each_refusal_logged_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Have each refusal of a Redis set up wrong logged again, in this test."""
    for refusal in vars(connection).values():
        if isinstance(refusal, connection._Refusal):
            monkeypatch.setattr(refusal, "_logged", set())


def engine_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return the ERROR lines the engine logged (caplog's, so far)."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "redis_hash_sessions" and record.levelno >= logging.ERROR
    ]


def redis_now(redis_client: Any) -> int:
    """Return Redis's clock, in whole seconds: the clock TTLs run on."""
    return int(redis_client.time()[0])


def index_note(entry: float, seen: int) -> str:
    """Return a session's m:indexed note: its index entry's score, and when seen."""
    return f"{int(entry)}:{seen}"


def noted_entry(note: bytes) -> int:
    """Return the index entry's score that a session's m:indexed note gives."""
    return int(note.split(b":")[0])


def session_redis_key(session_key: str) -> str:
    """Return the Redis key of a session, as the engine names it."""
    from redis_hash_sessions import keys

    return keys.names().session(keys.key_hash(session_key))


def user_index(user_id: object) -> str:
    """Return the Redis key of a user's index of sessions."""
    from redis_hash_sessions import keys

    return keys.names().index(str(user_id))


def primaries(topology: Topology) -> list[redis.Redis]:
    """Return a plain client of each primary: the one, or a cluster's three."""
    servers = getattr(topology, "primaries", None)
    if servers is None:
        return [cast(redis.Redis, topology.client())]
    return [server.client() for server in servers]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """Start the tests' own Redis-compatible server, once per session."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_topology(redis_server: RedisProcess) -> Topology:
    """Return the Redis that sessions live in: one server, but in the engine's tests."""
    return Single(redis_server)


@pytest.fixture(scope="session", autouse=True)
def _sessions_in_test_redis(redis_topology: Topology) -> Iterator[None]:
    with override_settings(CACHES=redis_topology.caches()):
        yield


@pytest.fixture(autouse=True)
def _flush_redis(redis_topology: Topology) -> None:
    redis_topology.client().flushall()


@pytest_asyncio.fixture
async def close_async_redis() -> AsyncIterator[None]:
    """Close the async connections that the test's event loop opened."""
    yield
    await connection.close_async_connections()


@pytest_asyncio.fixture
async def close_async_db() -> AsyncIterator[None]:
    """Close the database connection of asgiref's thread for sync code."""
    yield
    # thread_sensitive: the same thread that ran the views' ORM calls.
    await sync_to_async(connections.close_all)()


@pytest.fixture
def redis_client(redis_topology: Topology) -> redis.Redis:
    """A plain client of the tests' primary, to look at what the engine wrote."""
    return redis_topology.client()


@pytest.fixture
def round_trips(
    monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> list[str]:
    """
    Record the name of every command the engine's clients send from now on.

    What the test itself sends through redis_client is left out.
    A pipeline is one round trip, recorded as its commands joined by "+".
    The scripts are loaded first, as they are after a process's first use,
    so that EVALSHA is not followed by a NOSCRIPT fallback. Opening a
    connection is not counted: neither its handshake nor, behind Sentinel,
    its question to a sentinel for the primary's address.
    """
    for lua in connection.SCRIPTS:
        redis_client.script_load(lua)
    sent: list[str] = []
    sync_execute = redis.Redis.execute_command
    async_execute = redis.asyncio.Redis.execute_command

    sync_pipeline = redis.client.Pipeline.execute
    async_pipeline = redis.asyncio.client.Pipeline.execute

    def record(command: str) -> None:
        # A connection's questions about where things are: not the engine's.
        if not command.startswith(("SENTINEL ", "CLUSTER ")) and command != "COMMAND":
            sent.append(command)

    def counting(self: redis.Redis, *args: Any, **options: Any) -> Any:
        if self is not redis_client:
            record(str(args[0]).upper())
        return sync_execute(self, *args, **options)

    async def acounting(self: redis.asyncio.Redis, *args: Any, **options: Any) -> Any:
        record(str(args[0]).upper())
        return await async_execute(self, *args, **options)

    def queued(pipe: Any) -> str:
        return "+".join(str(c[0][0]).upper() for c in pipe.command_stack)

    def counting_pipeline(self: redis.client.Pipeline, *args: Any, **kw: Any) -> Any:
        record(queued(self))
        return sync_pipeline(self, *args, **kw)

    async def acounting_pipeline(
        self: redis.asyncio.client.Pipeline, *args: Any, **kw: Any
    ) -> Any:
        record(queued(self))
        return await async_pipeline(self, *args, **kw)

    # On Redis Cluster: each command sent to a node, and each batch that
    # the engine sends to one node.
    def counting_in_cluster(self: Any, node: Any, *args: Any, **options: Any) -> Any:
        if self is not redis_client:
            record(str(args[0]).upper())
        return cluster_execute(self, node, *args, **options)

    def counting_cluster_pipeline(self: Any, stack: list[Any], *args: Any) -> Any:
        if self._pipe.nodes_manager is not getattr(redis_client, "nodes_manager", 0):
            record("+".join(str(c.args[0]).upper() for c in stack))
        return cluster_pipeline(self, stack, *args)

    async def acounting_on_node(self: Any, *args: Any, **options: Any) -> Any:
        record(str(args[0]).upper())
        return await node_execute(self, *args, **options)

    async def acounting_node_pipeline(self: Any, commands: list[Any]) -> Any:
        record("+".join(str(c.args[0]).upper() for c in commands))
        return await node_pipeline(self, commands)

    cluster_execute = redis.cluster.RedisCluster._execute_command
    cluster_pipeline = redis.cluster.PipelineStrategy.send_cluster_commands
    node_execute = redis.asyncio.cluster.ClusterNode.execute_command
    node_pipeline = redis.asyncio.cluster.ClusterNode.execute_pipeline
    monkeypatch.setattr(redis.Redis, "execute_command", counting)
    monkeypatch.setattr(redis.asyncio.Redis, "execute_command", acounting)
    monkeypatch.setattr(redis.client.Pipeline, "execute", counting_pipeline)
    monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", acounting_pipeline)
    monkeypatch.setattr(
        redis.cluster.RedisCluster, "_execute_command", counting_in_cluster
    )
    monkeypatch.setattr(
        redis.cluster.PipelineStrategy,
        "send_cluster_commands",
        counting_cluster_pipeline,
    )
    monkeypatch.setattr(
        redis.asyncio.cluster.ClusterNode, "execute_command", acounting_on_node
    )
    monkeypatch.setattr(
        redis.asyncio.cluster.ClusterNode, "execute_pipeline", acounting_node_pipeline
    )
    return sent


@pytest.fixture
def user(db: None) -> Any:
    return get_user_model().objects.create_user(username="ada", password=PASSWORD)


@pytest.fixture
def barrier(tmp_path: Path) -> tuple[Path, Path]:
    """Paths for tests.views.paused_write: (loaded, release)."""
    return tmp_path / "loaded", tmp_path / "release"
