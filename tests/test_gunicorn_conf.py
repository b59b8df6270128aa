"""gunicorn.conf.py under a real gunicorn, WSGI and ASGI: what its log holds."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from http import HTTPStatus

import pytest

from tests.http_client import Browser
from tests.redis_process import RedisProcess
from tests.site_process import (
    INTERFACES,
    Gunicorn,
    serving,
)

pytestmark = pytest.mark.gunicorn


@pytest.fixture(scope="module", params=INTERFACES)
def gunicorn(
    request: pytest.FixtureRequest,
    redis_server: RedisProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gunicorn]:
    directory = tmp_path_factory.mktemp("gunicorn-conf")
    with serving(
        redis_server.url, directory, workers=1, threads=2, interface=request.param
    ) as server:
        yield server


def log_after(gunicorn: Gunicorn, method: str, path: str) -> str:
    """Send one request, then return the log once its access line is written."""
    start = gunicorn.log.stat().st_size
    Browser(gunicorn.port).request(method, path)
    # gunicorn writes the access line just after the answer: wait for it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(gunicorn.log) as log:
            log.seek(start)
            text = log.read()
        if f'"{method} ' in text:
            return text
        time.sleep(0.01)
    raise AssertionError(f"no access line for {method} {path} in {gunicorn.log}")


def test_the_access_log_leaves_out_query_strings(gunicorn):
    text = log_after(gunicorn, "GET", "/login/?username=admin&password=secret")
    assert '"GET /login/ HTTP/1.1" 200' in text
    assert "secret" not in text


def test_a_get_with_credentials_echoes_nothing(gunicorn):
    response = Browser(gunicorn.port).get("/login/?username=admin&password=secret")
    assert response.status == HTTPStatus.OK
    assert "secret" not in response.text
    assert "admin" not in response.text


@pytest.mark.parametrize("path", ["/login/", "/healthz"])
def test_head_makes_no_warning(gunicorn, path):
    text = log_after(gunicorn, "HEAD", path)
    # uvicorn's access line has no byte count.
    sent = " 0" if gunicorn.interface == "wsgi" else ""
    assert f'"HEAD {path} HTTP/1.1" 200{sent}' in text
    assert "WARNING" not in text


def test_an_asgi_worker_closes_its_redis_connections_when_it_stops(
    redis_server, tmp_path
):
    with serving(
        redis_server.url, tmp_path, workers=1, threads=1, interface="asgi"
    ) as server:
        assert Browser(server.port).get("/visits/").status == HTTPStatus.OK
    assert "Closed 1 session store client(s) of this worker." in server.log.read_text()


def test_a_client_that_holds_its_connection_does_not_keep_the_close_from_running(
    redis_server, tmp_path
):
    with serving(
        redis_server.url, tmp_path, workers=1, threads=1, interface="asgi"
    ) as server:
        assert Browser(server.port).get("/visits/").status == HTTPStatus.OK
        # A request whose body never comes: uvicorn would wait for it for ever.
        held = socket.create_connection(("127.0.0.1", server.port))
        held.sendall(b"POST /logout/ HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n")
        try:
            server.terminate()
        finally:
            held.close()
    log = server.log.read_text()
    # uvicorn gave up waiting (before gunicorn's graceful timeout, which the
    # test server sets to 5 s, would have killed the worker), then closed.
    assert "timeout graceful shutdown exceeded" in log
    assert "Closed 1 session store client(s) of this worker." in log
    # Django's ASGI handler, cancelled while reading the body, leaves the
    # body's temporary file to the garbage collector; nothing else leaks.
    lines = log.lower().splitlines()
    leaks = [line for line in lines if "resourcewarning: unclosed" in line]
    assert all("spooledtemporaryfile" in line for line in leaks)
