"""What users and operators see while Redis is down, through Django's handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import PASSWORD, caches_for
from tests.redis_process import RedisProcess

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

COOKIE = settings.SESSION_COOKIE_NAME


@pytest.fixture
def doomed(tmp_path: Path, settings) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "doomed", appendonly=True)
    server.start()
    settings.CACHES = caches_for(server.url)
    yield server
    server.kill()


@pytest.fixture
def signed_in(client, user, doomed):
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    return client


def test_a_page_answers_503_with_retry_after(signed_in, doomed):
    doomed.stop()
    response = signed_in.get("/dashboard/")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "5"


def test_the_503_leaves_the_session_cookie_alone(signed_in, doomed):
    doomed.stop()
    response = signed_in.get("/dashboard/")
    assert COOKIE not in response.cookies


def test_the_503_page_says_the_user_is_still_signed_in(signed_in, doomed):
    doomed.stop()
    html = signed_in.get("/dashboard/").content.decode()
    assert "reach the session store right now; you are still signed in" in html


def test_the_503_page_is_the_sites_own_layout(signed_in, doomed):
    # templates/redis_hash_sessions/ overrides the engine's plain page.
    doomed.stop()
    html = signed_in.get("/dashboard/").content.decode()
    assert '<section class="card narrow">' in html


def test_a_login_during_an_outage_says_sign_in_is_unavailable(client, user, doomed):
    doomed.stop()
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    html = response.content.decode()
    assert "Sign-in is unavailable right now" in html
    assert "Invalid username or password" not in html


def test_a_json_client_gets_a_json_503(signed_in, doomed):
    doomed.stop()
    response = signed_in.get("/visits/", headers={"accept": "application/json"})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json() == {"error": "session_store_unavailable"}


def test_the_user_is_still_signed_in_when_redis_returns(signed_in, doomed):
    doomed.stop()
    assert signed_in.get("/dashboard/").status_code == HTTPStatus.SERVICE_UNAVAILABLE
    doomed.start()
    response = signed_in.get("/dashboard/")
    assert response.status_code == HTTPStatus.OK
    assert "Welcome ada!" in response.content.decode()


def test_a_hung_redis_answers_503(signed_in, doomed):
    doomed.freeze()
    assert signed_in.get("/dashboard/").status_code == HTTPStatus.SERVICE_UNAVAILABLE


def test_an_outage_is_logged_once_and_its_end_once(signed_in, doomed, caplog):
    doomed.stop()
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            signed_in.get("/dashboard/")
        doomed.start()
        for _ in range(3):
            signed_in.get("/dashboard/")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("Redis is unavailable, answering 503")
    assert messages[1] == "Redis is available again."
