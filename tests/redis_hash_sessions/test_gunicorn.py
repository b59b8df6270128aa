"""Concurrent requests on one session through real gunicorn (WSGI, ASGI), 4 workers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings

from redis_hash_sessions.engine import SessionStore
from tests.http_client import Browser
from tests.site_process import (
    DEMO_PASSWORD,
    DEMO_USERNAME,
    INTERFACES,
    Gunicorn,
    serving,
)
from tests.topologies import Topology

pytestmark = pytest.mark.gunicorn

REQUESTS = 200
COOKIE = settings.SESSION_COOKIE_NAME


@pytest.fixture(scope="module", params=INTERFACES)
def gunicorn(
    request: pytest.FixtureRequest,
    redis_topology: Topology,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gunicorn]:
    directory = tmp_path_factory.mktemp("gunicorn")
    with serving(
        redis_topology.url,
        directory,
        workers=4,
        threads=4,
        interface=request.param,
        **redis_topology.environment(),
    ) as server:
        yield server


@pytest.fixture
def browser(gunicorn: Gunicorn) -> Browser:
    browser = Browser(gunicorn.port)
    assert browser.log_in(DEMO_USERNAME, DEMO_PASSWORD).status == HTTPStatus.FOUND
    return browser


def in_parallel(paths: list[str], browser: Browser) -> list[int]:
    with ThreadPoolExecutor(max_workers=32) as pool:
        return [response.status for response in pool.map(browser.get, paths)]


def test_health_checks_answer_ok(gunicorn):
    browser = Browser(gunicorn.port)
    assert browser.get("/healthz").json() == {"status": "ok"}
    ready = browser.get("/readyz").json()
    assert ready == {"status": "ok", "redis": "ok", "database": "ok"}


def test_a_visitor_signs_in_counts_visits_and_signs_out(browser):
    dashboard = browser.get("/dashboard/")
    assert dashboard.status == HTTPStatus.OK
    assert f"Welcome {DEMO_USERNAME}!" in dashboard.text
    visits = browser.get("/visits/", headers={"Accept": "application/json"}).json()
    assert visits == {"visits": 2, "username": DEMO_USERNAME}
    assert browser.post("/logout/").status == HTTPStatus.FOUND
    after = browser.get("/dashboard/")
    assert after.status == HTTPStatus.FOUND
    assert after.headers["Location"] == "/login/?next=/dashboard/"


def test_200_concurrent_visits_count_200(browser):
    statuses = in_parallel(["/visits/"] * REQUESTS, browser)
    assert statuses == [HTTPStatus.OK] * REQUESTS
    visits = browser.get("/visits/", headers={"Accept": "application/json"}).json()
    assert visits == {"visits": REQUESTS + 1, "username": DEMO_USERNAME}


def test_200_concurrent_requests_keep_each_ones_key(browser):
    statuses = in_parallel([f"/test/set/key{i}/" for i in range(REQUESTS)], browser)
    assert statuses == [HTTPStatus.OK] * REQUESTS
    session = browser.get("/test/read/").json()
    assert {f"key{i}" for i in range(REQUESTS)} <= set(session)
    assert session["_auth_user_id"]


def test_100_logouts_during_an_in_flight_save_all_stay_logged_out(
    gunicorn, tmp_path: Path
):
    for race in range(100):
        browser = Browser(gunicorn.port)
        browser.get("/test/set/started/")
        cookie = browser.cookies[COOKIE]
        loaded, release = tmp_path / f"loaded{race}", tmp_path / f"release{race}"
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(
                browser.get, f"/test/paused-write/?loaded={loaded}&release={release}"
            )
            deadline = time.monotonic() + 10
            while not loaded.exists() and time.monotonic() < deadline:
                time.sleep(0.001)
            assert browser.post("/logout/").status == HTTPStatus.FOUND
            release.touch()
            assert in_flight.result().status == HTTPStatus.BAD_REQUEST
        assert not SessionStore().exists(cookie)


def test_x_forwarded_for_never_picks_the_address_the_lockout_counts(gunicorn, settings):
    # Not behind a declared proxy: whatever a client claims, its failures
    # count against the address it connects from, under WSGI and ASGI alike.
    browser = Browser(gunicorn.port)
    statuses = [
        browser.post(
            "/login/",
            {"username": "someone-else", "password": "wrong"},
            headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
        ).status
        for attempt in range(settings.LOGIN_FAILURE_LIMIT + 1)
    ]
    assert statuses[-1] == HTTPStatus.TOO_MANY_REQUESTS
