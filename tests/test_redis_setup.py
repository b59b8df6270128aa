"""
A Redis set up so that the engine cannot work with it: a clear 503, never a 500.

Too old (a real Redis 6.2, and a server without HELLO as Redis before 6.0
is), a command renamed away, protected mode. An ACL's refusals, on every
topology: tests/redis_hash_sessions/test_acl.py.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest

from redis_hash_sessions import connection
from tests.conftest import PASSWORD, caches_for
from tests.redis_process import OldRedisUnavailable, RedisProcess, old_server_binary

# The first run builds Redis 6.2 (about half a minute).
pytestmark = [pytest.mark.django_db, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def old_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    try:
        binary = old_server_binary()
    except OldRedisUnavailable as exc:
        if os.environ.get("CI"):  # where it must run
            raise
        pytest.skip(f"Redis 6.2 could not be built here: {exc}")
    server = RedisProcess(tmp_path_factory.mktemp("old-redis"), binary=binary)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _each_refusal_logged_afresh(monkeypatch) -> None:
    for refusal in (connection.too_old, connection.refused, connection.denied):
        monkeypatch.setattr(refusal, "_logged", set())


@pytest.fixture
def on_old_redis(settings, old_redis: RedisProcess) -> RedisProcess:
    version = old_redis.client().info("server")["redis_version"]
    assert tuple(map(int, version.split(".")[:2])) < (7, 0)
    settings.CACHES = caches_for(old_redis.url)
    return old_redis


@pytest.fixture
def signed_in_on_old_redis(client, user, on_old_redis):
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    return client


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "redis_hash_sessions" and record.levelno >= logging.ERROR
    ]


def test_readyz_calls_a_redis_older_than_7_unsupported(client, on_old_redis):
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {
        "status": "unavailable",
        "redis": "unsupported",
        "database": "ok",
    }


def test_a_visit_counted_on_a_redis_older_than_7_answers_503(signed_in_on_old_redis):
    response = signed_in_on_old_redis.get("/visits/")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "5"


def test_a_redis_older_than_7_is_logged_once(signed_in_on_old_redis, caplog):
    caplog.clear()
    for _ in range(3):
        signed_in_on_old_redis.get("/visits/")
    assert errors(caplog) == [
        "Redis is older than 7.0, which the session engine needs (or Valkey). "
        "Answering 503: wrong number of arguments for 'expire' command"
    ]


def test_sign_in_pages_and_logout_still_work_on_a_redis_older_than_7(
    signed_in_on_old_redis,
):
    client = signed_in_on_old_redis
    assert client.get("/dashboard/").status_code == HTTPStatus.OK
    assert client.post("/logout/").status_code == HTTPStatus.FOUND
    assert client.get("/dashboard/")["Location"].startswith("/login/")


@pytest.fixture
def without_hello(settings, tmp_path: Path) -> Iterator[RedisProcess]:
    """A server without HELLO, as Redis before 6.0 (the test's client: RESP2)."""
    server = RedisProcess(
        tmp_path / "redis", extra_args=["--rename-command", "HELLO", ""], protocol=2
    )
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("protocol", [2, 3])
def test_readyz_calls_a_redis_without_hello_unsupported(
    client, settings, without_hello, protocol
):
    settings.CACHES = caches_for(without_hello.url, protocol=protocol)
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["redis"] == "unsupported"


def test_sign_in_on_a_redis_without_hello_answers_503_over_resp3(
    client, user, settings, without_hello, caplog
):
    # RESP3, redis-py's default, opens every connection with HELLO.
    settings.CACHES = caches_for(without_hello.url)
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert errors(caplog) == [
        "Redis is older than 7.0, which the session engine needs (or Valkey). "
        "Answering 503: unknown command 'HELLO'"
    ]


def test_a_command_renamed_away_answers_503_and_is_logged_without_arguments(
    client, user, settings, tmp_path, caplog
):
    server = RedisProcess(
        tmp_path / "redis", extra_args=["--rename-command", "EVALSHA", ""]
    )
    server.start()
    settings.CACHES = caches_for(server.url)
    try:
        response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    finally:
        server.stop()
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    # Redis repeats the arguments, which may hold session data: left out.
    [line] = errors(caplog)
    assert line.endswith("Answering 503: unknown command 'EVALSHA'")


def non_loopback_address() -> str | None:
    """Return an IPv4 address of this host's that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            # A UDP socket's connect sends nothing: it only picks a route.
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


@pytest.fixture
def protected(tmp_path: Path) -> Iterator[str]:
    """Return the URL, on an address not loopback, of a server in protected mode."""
    if (address := non_loopback_address()) is None:
        pytest.skip("this host has no address but loopback")
    server = RedisProcess(
        tmp_path / "redis",
        extra_args=["--bind", "127.0.0.1", address, "--protected-mode", "yes"],
    )
    server.start()
    yield f"redis://{address}:{server.port}/0"
    server.stop()


def test_a_redis_in_protected_mode_answers_503_at_sign_in(
    client, user, settings, protected, caplog
):
    settings.CACHES = caches_for(protected)
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    [line] = errors(caplog)
    assert line.startswith("Redis is in protected mode and refuses this host")


def test_readyz_calls_a_redis_in_protected_mode_refused(client, settings, protected):
    settings.CACHES = caches_for(protected)
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["redis"] == "refused"


@pytest.mark.parametrize(
    "reply",
    [
        b"OK",
        [b"server", b"redis"],
        [b"server", b"redis", b"version"],
        {b"version": 7},
    ],
)
def test_a_hello_reply_without_a_version_is_taken_for_too_old(reply):
    assert connection._version(reply) < connection.MINIMUM_VERSION
