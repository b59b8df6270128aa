"""Concurrent requests on one session, in real threads through Django's handler."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from redis_hash_sessions import users
from redis_hash_sessions.engine import SessionStore

COOKIE = settings.SESSION_COOKIE_NAME
JSON = {"Accept": "application/json"}
THREADS = 200


@pytest.fixture(autouse=True)
def _a_connection_per_thread(settings, redis_topology) -> None:
    # A process that runs 200 threads sizes its pool for them; with fewer
    # connections, how long a thread waits for one depends on scheduling.
    # django-redis keeps one pool per URL for the life of the process, so
    # the bigger pool needs a URL of its own: database 1 of the same server.
    settings.CACHES = redis_topology.caches(db=1, max_connections=THREADS)


def in_parallel(count: int, request: Callable[[int], int]) -> list[int]:
    """Run request(i) for i in range(count) in as many threads, started together."""
    start = threading.Barrier(count)
    statuses = [0] * count

    def run(i: int) -> None:
        start.wait()
        statuses[i] = request(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def client_for(cookie: str) -> Client:
    client = Client()
    client.cookies[COOKIE] = cookie
    return client


def paused_write(cookie: str, loaded: Path, release: Path, statuses: list[int]) -> None:
    query = {"loaded": loaded, "release": release}
    statuses.append(client_for(cookie).get("/test/paused-write/", query).status_code)


def test_200_concurrent_increments_count_200(client):
    client.get("/test/set/started/")
    cookie = client.cookies[COOKIE].value

    statuses = in_parallel(
        THREADS, lambda i: client_for(cookie).get("/visits/").status_code
    )

    assert statuses == [HTTPStatus.OK] * 200
    assert SessionStore(cookie)["visits"] == 200


def test_200_concurrent_requests_keep_each_ones_key(client):
    client.get("/test/set/started/")
    cookie = client.cookies[COOKIE].value

    statuses = in_parallel(
        THREADS, lambda i: client_for(cookie).get(f"/test/set/key{i}/").status_code
    )

    assert statuses == [HTTPStatus.OK] * 200
    assert set(SessionStore(cookie).keys()) == {"started"} | {
        f"key{i}" for i in range(200)
    }


@pytest.mark.django_db(transaction=True)
def test_100_logouts_during_an_in_flight_save_all_stay_logged_out(tmp_path: Path):
    for race in range(100):
        visitor = Client()
        visitor.get("/test/set/started/")
        cookie = visitor.cookies[COOKIE].value
        loaded, release = tmp_path / f"loaded{race}", tmp_path / f"release{race}"
        in_flight: list[int] = []
        writer = threading.Thread(
            target=paused_write, args=(cookie, loaded, release, in_flight)
        )
        writer.start()
        while not loaded.exists():
            writer.join(0.001)
        assert visitor.post("/logout/").status_code == HTTPStatus.FOUND
        release.touch()
        writer.join()

        assert in_flight == [HTTPStatus.BAD_REQUEST]
        assert not SessionStore().exists(cookie)


class TestParallelRequestsAfterASecretKeyRotation:
    """
    Django's get_user() rotates a session whose auth hash only a fallback key
    verifies; a browser's parallel requests all do it at once.
    """

    BURST = ("/dashboard/", "/visits/", "/visits/", "/", "/visits/", "/dashboard/")

    @pytest.fixture
    def old_cookie(self, user, settings) -> str:
        from tests.conftest import PASSWORD

        client = Client()
        client.post("/login/", {"username": "ada", "password": PASSWORD})
        settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
        settings.SECRET_KEY = "the-secret-key-after-rotation"
        return client.cookies[COOKIE].value

    def burst(self, cookie: str) -> list[tuple[int, str | None]]:
        """Send BURST at once with one cookie; return (status, Set-Cookie value)."""
        answers: list[tuple[int, str | None]] = [(0, None)] * len(self.BURST)

        def request(i: int) -> int:
            try:
                response = client_for(cookie).get(self.BURST[i])
            finally:
                connections.close_all()  # this thread's, which Python would flag
            morsel = response.cookies.get(COOKIE)
            value = None if morsel is None else morsel.value
            answers[i] = (response.status_code, value)
            return response.status_code

        in_parallel(len(self.BURST), request)
        return answers

    @pytest.mark.django_db(transaction=True)
    def test_no_response_deletes_the_cookie_or_hands_out_an_anonymous_one(
        self, old_cookie
    ):
        for status, cookie in self.burst(old_cookie):
            assert status in (HTTPStatus.OK, HTTPStatus.FOUND, HTTPStatus.BAD_REQUEST)
            if cookie is not None:
                assert cookie != ""
                assert SessionStore(cookie).get("_auth_user_id") is not None

    @pytest.mark.django_db(transaction=True)
    def test_the_user_keeps_one_session(self, old_cookie, user):
        self.burst(old_cookie)
        assert len(users.sessions_of(user.pk)) == 1

    @pytest.mark.django_db(transaction=True)
    def test_whichever_cookie_the_browser_keeps_is_signed_in(self, old_cookie):
        cookies = [c for _, c in self.burst(old_cookie) if c is not None]
        assert cookies
        for cookie in cookies:
            response = client_for(cookie).get("/visits/", headers=JSON)
            assert response.json()["username"] == "ada"
