"""
A Redis set up so that the engine cannot work with it: a clear 503, never a 500.

Too old (real Redis 5.0 and 6.2, built from source), a command renamed
away, protected mode. An ACL's refusals, on every topology:
tests/redis_hash_sessions/test_acl.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from http import HTTPStatus
from io import StringIO
from pathlib import Path
from typing import Any, cast

import pytest
from django.core.management import CommandError, call_command

from redis_hash_sessions import connection
from tests.conftest import PASSWORD, caches_for, engine_errors
from tests.redis_process import OldRedisUnavailable, RedisProcess, old_server_binary

# The first run builds Redis 5.0 and 6.2 (about twenty seconds each).
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("each_refusal_logged_afresh"),
]


def started(version: str, directory: Path) -> RedisProcess:
    """Start a Redis of an OLD_REDIS version (skip if it cannot be built here)."""
    try:
        binary = old_server_binary(version)
    except OldRedisUnavailable as exc:
        if os.environ.get("CI"):  # where it must run
            raise
        pytest.skip(f"Redis {version} could not be built here: {exc}")
    # RESP2 for the test's own client: Redis 5 has no RESP3.
    server = RedisProcess(directory, binary=binary, protocol=2)
    server.start()
    version_run = server.client().info("server")["redis_version"]
    assert version_run.startswith(f"{version}.")
    return server


@pytest.fixture(scope="module")
def redis_5_0(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """Redis 5.0: before HELLO, which RESP3 clients open every connection with."""
    server = started("5.0", tmp_path_factory.mktemp("redis-5.0"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_6_2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """Redis 6.2, the last release before 7.0."""
    server = started("6.2", tmp_path_factory.mktemp("redis-6.2"))
    yield server
    server.stop()


@pytest.fixture(params=["redis_5_0", "redis_6_2"])
def old_redis(request: pytest.FixtureRequest) -> RedisProcess:
    return cast(RedisProcess, request.getfixturevalue(request.param))


@pytest.fixture
def signed_in_on_redis_6_2(client, user, settings, redis_6_2):
    settings.CACHES = caches_for(redis_6_2.url)
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    return client


def over(server: RedisProcess, protocol: int) -> dict[str, Any]:
    """Return CACHES for server over a protocol (2 or 3), in a database of its own."""
    # django-redis keeps one pool per URL, whatever its protocol.
    url = f"redis://127.0.0.1:{server.port}/{protocol}"
    return caches_for(url, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 3])
def test_readyz_calls_a_redis_older_than_7_unsupported(
    client, settings, old_redis, protocol
):
    settings.CACHES = over(old_redis, protocol)
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {
        "status": "unavailable",
        "redis": "unsupported",
        "database": "ok",
    }


def test_readyz_logs_the_version_of_a_redis_older_than_7(
    client, settings, redis_6_2, caplog
):
    settings.CACHES = caches_for(redis_6_2.url)
    client.get("/readyz")
    client.get("/readyz")
    assert engine_errors(caplog) == [
        "Redis is older than 7.0, which the session engine needs (or Valkey). "
        "Answering 503: HELLO gives version 6.2.14"
    ]


def test_a_visit_counted_on_redis_6_2_answers_503(signed_in_on_redis_6_2):
    response = signed_in_on_redis_6_2.get("/visits/")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "5"


def test_a_redis_older_than_7_is_logged_once_per_reply(signed_in_on_redis_6_2, caplog):
    caplog.clear()
    for _ in range(3):
        signed_in_on_redis_6_2.get("/visits/")
    assert engine_errors(caplog) == [
        "Redis is older than 7.0, which the session engine needs (or Valkey). "
        "Answering 503: wrong number of arguments for 'expire' command"
    ]


def test_sign_in_pages_and_logout_still_work_on_redis_6_2(
    signed_in_on_redis_6_2,
):
    client = signed_in_on_redis_6_2
    assert client.get("/dashboard/").status_code == HTTPStatus.OK
    assert client.post("/logout/").status_code == HTTPStatus.FOUND
    assert client.get("/dashboard/")["Location"].startswith("/login/")


def test_sign_in_on_a_redis_without_hello_answers_503(
    client, user, settings, redis_5_0, caplog
):
    # RESP3, redis-py's default, opens every connection with HELLO.
    settings.CACHES = caches_for(redis_5_0.url)
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert engine_errors(caplog) == [
        "Redis is older than 7.0, which the session engine needs (or Valkey). "
        "Answering 503: unknown command `HELLO`"
    ]


@pytest.fixture
def renamed_away(settings, tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """Have the site use a server with the command given renamed away."""
    servers: list[RedisProcess] = []

    def rename(command: str) -> None:
        server = RedisProcess(
            tmp_path / command,
            extra_args=["--rename-command", command, ""],
            # The test's own client: HELLO may be the command renamed.
            protocol=2,
        )
        server.start()
        servers.append(server)
        settings.CACHES = caches_for(server.url)

    yield rename
    for server in servers:
        server.stop()


# HELLO opens each connection; EVALSHA runs every script, SCRIPT loads
# them; TIME and HSET run inside them.
@pytest.mark.parametrize("command", ["HELLO", "EVALSHA", "TIME", "HSET"])
def test_a_command_renamed_away_answers_503_at_sign_in(
    client, user, renamed_away, command
):
    renamed_away(command)
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE


@pytest.mark.parametrize("command", ["HELLO", "EVALSHA", "SCRIPT", "TIME", "HSET"])
def test_readyz_calls_a_redis_with_a_command_renamed_away_refused(
    client, renamed_away, command
):
    renamed_away(command)
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["redis"] == "refused"


def test_counting_sessions_on_a_redis_that_refuses_a_command_is_a_command_error(
    client, user, renamed_away
):
    renamed_away("HEXISTS")
    client.post("/login/", {"username": "ada", "password": PASSWORD})
    with pytest.raises(CommandError, match="Redis refuses the session engine"):
        call_command("sessions", "count", stdout=StringIO())


def test_a_refusal_in_a_pipeline_is_logged_without_its_key_names(
    client, user, renamed_away, caplog
):
    renamed_away("HEXISTS")
    client.post("/login/", {"username": "ada", "password": PASSWORD})
    with pytest.raises(CommandError):
        call_command("sessions", "count", stdout=StringIO())
    [line] = engine_errors(caplog)
    assert line.endswith("Answering 503: unknown command 'HEXISTS'")


def test_a_command_renamed_away_is_logged_without_the_arguments(
    client, user, renamed_away, caplog
):
    renamed_away("EVALSHA")
    client.post("/login/", {"username": "ada", "password": PASSWORD})
    # Redis repeats the arguments, which may hold session data: left out.
    [line] = engine_errors(caplog)
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
    [line] = engine_errors(caplog)
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
