"""A Redis older than 7.0, which the engine cannot run on: a clear answer, no 500."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from http import HTTPStatus

import pytest

from redis_hash_sessions import connection
from tests.conftest import PASSWORD, caches_for
from tests.redis_process import RedisProcess, old_server_binary

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def old_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    if (binary := old_server_binary()) is None:
        pytest.skip(
            "Redis 6.2 could not be built here (it needs make and a C compiler)."
        )
    server = RedisProcess(tmp_path_factory.mktemp("redis-6.2"), binary=binary)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def on_old_redis(settings, old_redis: RedisProcess, monkeypatch) -> RedisProcess:
    assert old_redis.client().info("server")["redis_version"].startswith("6.2.")
    settings.CACHES = caches_for(old_redis.url)
    monkeypatch.setattr(connection.too_old, "logged", False)
    return old_redis


@pytest.fixture
def signed_in(client, user, on_old_redis):
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    return client


def test_readyz_calls_a_redis_older_than_7_unsupported(client, on_old_redis):
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {
        "status": "unavailable",
        "redis": "unsupported",
        "database": "ok",
    }


def test_a_visit_counted_on_a_redis_older_than_7_answers_503(signed_in):
    response = signed_in.get("/visits/")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "5"


def test_a_redis_older_than_7_is_logged_once_with_the_version_it_needs(
    signed_in, caplog
):
    caplog.clear()
    for _ in range(3):
        signed_in.get("/visits/")
    [line] = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR
    ]
    assert line.startswith("Redis is older than 7.0, which the session engine needs")


def test_sign_in_pages_and_logout_still_work_on_a_redis_older_than_7(signed_in):
    assert signed_in.get("/dashboard/").status_code == HTTPStatus.OK
    assert signed_in.post("/logout/").status_code == HTTPStatus.FOUND
    assert signed_in.get("/dashboard/")["Location"].startswith("/login/")
