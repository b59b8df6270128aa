"""
Redis's scripting contract: a script touches only the keys it is given in KEYS.

Redis requires it, and Redis Cluster refuses anything else. Checked on the
server itself (on a cluster, the primary of the one user's sessions):
MONITOR shows every command a script runs, and COMMAND GETKEYS says which of
its arguments are keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.contrib.auth import SESSION_KEY

from redis_hash_sessions import connection, engine, users
from redis_hash_sessions.connection import get_connection
from redis_hash_sessions.engine import SessionStore
from tests.conftest import user_index
from tests.topologies import ClusterSet, Topology

_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


class Monitored:
    """The commands the server ran: each EVALSHA with the commands inside it."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.monitor = client.monitor()
        self.monitor.__enter__()
        self.marks = 0

    def commands_of(self, operation: Callable[[], object]) -> list[list[str]]:
        """Run operation; return the argument lists of what the server ran."""
        operation()
        self.marks += 1
        mark = f"end-of-operation-{self.marks}"
        self.client.echo(mark)
        commands = []
        while True:
            line = self.monitor.connection.read_response()
            args = _QUOTED.findall(line.decode() if isinstance(line, bytes) else line)
            if args == ["ECHO", mark]:
                return commands
            commands.append([*args, "lua" if "lua]" in str(line) else "client"])

    def close(self) -> None:
        self.monitor.__exit__()


@contextmanager
def monitored(client: redis.Redis) -> Iterator[Monitored]:
    watcher = Monitored(client)
    try:
        yield watcher
    finally:
        watcher.close()


def keys_of(client: redis.Redis, args: list[str]) -> list[str]:
    try:
        found = client.command_getkeys(*args)
    except redis.ResponseError:  # TIME and the like have no keys
        return []
    return [str(key) for key in found]


def undeclared(client: redis.Redis, commands: list[list[str]]) -> list[str]:
    """Return what scripts touched without being given it in KEYS."""
    declared: set[str] = set()
    found = []
    for *args, source in commands:
        if source == "client" and args[0].upper() == "EVALSHA":
            declared = set(args[3 : 3 + int(args[2])])
        elif source == "lua":
            found += [k for k in keys_of(client, args) if k not in declared]
    return found


def signed_in(user_id: str, **data: object) -> SessionStore:
    session = SessionStore()
    session.update({SESSION_KEY: user_id, **data})
    session.save()
    return session


def operations() -> list[object]:
    def create() -> None:
        signed_in("1", visits=1)

    def update() -> None:
        session = signed_in("1")
        loaded = SessionStore(session.session_key)
        loaded["theme"] = "dark"
        loaded.set_expiry(600)
        loaded.save()

    def rotate() -> None:
        session = SessionStore(signed_in("1").session_key)
        session.cycle_key()

    def due(session_key: str | None) -> SessionStore:
        """Return a store of the session, its index entry due to move."""
        session = SessionStore(session_key)
        get_connection().client.hset(session._redis_key(), "m:indexed", 0)
        return session

    def incr() -> None:
        session = due(signed_in("1", visits=1).session_key)
        session.keys()
        session.incr("visits")

    def incr_first() -> None:
        session = due(signed_in("1", visits=1).session_key)
        session.incr("visits")
        session.save()

    def load_and_delete() -> None:
        SessionStore(signed_in("1").session_key).load_and_delete()

    def end_all() -> None:
        signed_in("1"), signed_in("1")
        users.end_sessions("1")

    def list_sessions() -> None:
        signed_in("1", ip="203.0.113.7")
        users.sessions_of("1", fields=["ip"])

    every = [
        create, update, rotate, incr, incr_first, load_and_delete, end_all,
        list_sessions,
    ]  # fmt: skip
    return [pytest.param(operation, id=operation.__name__) for operation in every]


@pytest.fixture
def server(redis_topology: Topology, redis_client: redis.Redis) -> redis.Redis:
    """Return a client of the server that holds user 1's sessions."""
    if isinstance(redis_topology, ClusterSet):
        return redis_topology.node_for_key(user_index("1")).client()
    return redis_client


@pytest.mark.parametrize("operation", operations())
def test_every_key_a_script_touches_is_declared(server, operation):
    with monitored(server) as watcher:
        commands = watcher.commands_of(operation)
    assert any(source == "lua" for *_, source in commands)
    assert undeclared(server, commands) == []


def test_the_engine_and_the_scripts_give_an_index_entry_the_same_slack():
    common = (Path(connection.__file__).parent / "lua" / "common.lua").read_text()
    match = re.search(r"^local INDEX_SLACK = (\d+)$", common, re.MULTILINE)
    assert match is not None
    assert int(match[1]) == engine.INDEX_SLACK
