"""
The production image, built and run: a smoke test over real HTTP.

Needs a Docker engine (.ci/run starts one, with the stand-in base images from
../shared/docker/stand-in-images). Outside CI, without an engine, it skips.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings

from tests.docker_engine import docker, require_engine
from tests.http_client import Browser
from tests.redis_process import RedisProcess, free_port
from tests.site_process import INTERFACES, ROOT

pytestmark = pytest.mark.docker

TAG = "sessionsite:smoke-test"
DEMO = ("demo", "a-demo-password-for-the-smoke-test")
JSON = {"Accept": "application/json"}
COOKIE = settings.SESSION_COOKIE_NAME


@pytest.fixture(scope="module")
def image() -> str:
    require_engine()
    docker("build", "--network", "host", "--tag", TAG, str(ROOT))
    return TAG


@dataclass
class Container:
    id: str
    port: int

    def logs(self) -> str:
        result = docker("logs", self.id, check=False)
        return result.stdout + result.stderr


@pytest.fixture(params=INTERFACES)
def container(
    request: pytest.FixtureRequest, image: str, tmp_path: Path
) -> Iterator[Container]:
    redis = RedisProcess(tmp_path / "redis", appendonly=True)
    redis.start()
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # the container's user is not root
    port = free_port()
    environment = {
        "DJANGO_SECRET_KEY": "smoke-test-secret-key-that-is-long-and-random-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "REDIS_URL": redis.url,
        "DATABASE_URL": "sqlite:////data/db.sqlite3",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "SITE_INTERFACE": request.param,
        "DEMO_USERNAME": DEMO[0],
        "DEMO_PASSWORD": DEMO[1],
    }
    env_args = [
        arg for name, value in environment.items() for arg in ("-e", f"{name}={value}")
    ]
    container_id = docker(
        "run", "--detach", "--network", "host", "--volume", f"{data}:/data",
        *env_args, image,
    ).stdout.strip()  # fmt: skip
    running = Container(container_id, port)
    try:
        wait_until_serving(running)
        yield running
    finally:
        docker("rm", "--force", container_id, check=False)
        redis.kill()


def wait_until_serving(container: Container) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if Browser(container.port, timeout=2).get("/healthz").status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the container never served /healthz:\n{container.logs()}")


def test_healthz_and_readyz_answer_200(container):
    browser = Browser(container.port)
    assert browser.get("/healthz").json() == {"status": "ok"}
    assert browser.get("/readyz").json() == {
        "status": "ok",
        "redis": "ok",
        "database": "ok",
    }


def test_the_demo_user_logs_in_counts_visits_and_logs_out(container):
    browser = Browser(container.port)
    assert browser.log_in(*DEMO).status == HTTPStatus.FOUND
    counts = [browser.get("/visits/", headers=JSON).json()["visits"] for _ in range(3)]
    assert counts == [1, 2, 3]
    assert "Welcome demo!" in browser.get("/dashboard/").text
    assert browser.post("/logout/").status == HTTPStatus.FOUND
    assert browser.get("/dashboard/").status == HTTPStatus.FOUND


def test_static_files_are_served_compressed_with_hashed_names(container):
    browser = Browser(container.port)
    html = browser.get("/login/").text
    href = html.split('rel="stylesheet" href="', 1)[1].split('"', 1)[0]
    assert href.startswith("/static/css/site.")
    assert href != "/static/css/site.css"
    response = browser.get(href, headers={"Accept-Encoding": "gzip"})
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Encoding"] == "gzip"


def test_the_container_does_not_run_as_root(container):
    assert docker("exec", container.id, "id", "-u").stdout.strip() != "0"


def test_the_image_holds_no_tests_compiler_or_secret(image):
    listing = docker(
        "run", "--rm", "--entrypoint", "sh", image, "-c",
        "ls /app; command -v gcc cc || true; env",
    ).stdout  # fmt: skip
    assert "tests" not in listing.split()
    assert "gcc" not in listing
    assert "SECRET_KEY" not in listing


def test_docker_stop_lets_a_request_in_flight_finish_and_exits_0(container):
    browser = Browser(container.port)
    browser.get("/login/")
    body = urlencode({"username": DEMO[0], "password": DEMO[1]}).encode()
    head = (
        "POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: csrftoken={browser.cookies['csrftoken']}\r\n"
        f"X-CSRFToken: {browser.cookies['csrftoken']}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", container.port), timeout=30) as sock:
        sock.sendall(head + body[:5])
        stopping = threading.Thread(
            target=docker, args=("stop", "--time", "30", container.id)
        )
        stopping.start()
        deadline = time.monotonic() + 20
        while "Handling signal: term" not in container.logs():
            assert time.monotonic() < deadline, container.logs()
            time.sleep(0.05)
        sock.sendall(body[5:])
        reply = sock.recv(4096).decode()
    stopping.join()
    assert reply.startswith("HTTP/1.1 302"), reply
    assert (
        docker(
            "inspect", "--format", "{{.State.ExitCode}}", container.id
        ).stdout.strip()
        == "0"
    )
