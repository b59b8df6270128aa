from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest

from tests.conftest import caches_for
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
