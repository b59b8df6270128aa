from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest

from redis_hash_sessions import keys
from redis_hash_sessions.engine import SessionStore
from sessionsite import health
from tests.conftest import caches_for, stored_key
from tests.redis_process import RedisProcess

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok(client, round_trips):
    response = client.get("/healthz")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok"}
    assert round_trips == []


def test_readyz_answers_ok_when_redis_and_the_database_answer(client):
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok", "redis": "ok", "database": "ok"}


@pytest.mark.faults
def test_readyz_names_redis_when_it_is_down_and_healthz_stays_ok(
    client, settings, tmp_path: Path
):
    server = RedisProcess(tmp_path / "redis")
    server.start()
    settings.CACHES = caches_for(server.url)
    server.stop()
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {
        "status": "unavailable",
        "redis": "unavailable",
        "database": "ok",
    }
    assert client.get("/healthz").status_code == HTTPStatus.OK


def everything_in(redis_client) -> dict[bytes, bytes]:
    """Return every key Redis holds, with its value and TTL serialized."""
    return {key: redis_client.dump(key) for key in redis_client.scan_iter()}


def test_readyz_leaves_redis_as_it_was(client, redis_client):
    # Even with data at the one key of the engine's that it names for good.
    index = keys.names().index(health.PROBE_USER)
    redis_client.set(index, "not an index")
    session = stored_key()
    before = everything_in(redis_client)
    assert client.get("/readyz").status_code == HTTPStatus.OK
    assert everything_in(redis_client) == before
    assert SessionStore(session).load() == {"visits": 1}


def test_readyz_asks_redis_in_one_round_trip(client, round_trips):
    client.get("/readyz")
    assert round_trips == ["MULTI+SCRIPT+EVALSHA+EXEC+HELLO"]
