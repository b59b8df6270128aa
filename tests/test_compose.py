"""
docker-compose.yml brought up for real, and what an operator then does with it:
restarts, an image upgrade, `down -v`, rotating the secret key.

This machine's Docker engine has no bridge network, so the stack runs on the
host network: an override gives each service a free loopback port, and the
merged file, rendered by `docker-compose config`, loses its `ports`. One
stack serves every test in the module. Needs a Docker engine and
docker-compose (.ci/run has both); outside CI, without them, it skips.
README.md's Deploy section describes each step.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import override_settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from sessionsite.redis_sessions import keys
from tests.docker_engine import docker, require_docker_compose, require_engine
from tests.http_client import Browser
from tests.redis_process import free_port
from tests.site_process import ROOT

# The first test's setup builds the image: minutes when nothing is cached.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

COMPOSE_FILE = ROOT / "docker-compose.yml"
SENTINEL_FILE = ROOT / "docker-compose.sentinel.yml"
DEMO = ("demo", "a-demo-password-for-the-compose-test")
JSON = {"Accept": "application/json"}
# The production cookie name: debug is off in the container.
COOKIE = "__Host-sessionid"
SERVICES = ("db", "redis", "web")
REQUIRED = ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD")
# A service's `ports` as `docker-compose config` renders it: the key, then its
# list, indented under the service.
PORTS = re.compile(r"^    ports:\n(?:    [ -].*\n)*", re.MULTILINE)


def docker_compose(
    *args: str, unset: Iterable[str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run docker-compose with the variables that .env sets unset: they win over it."""
    environment = {
        name: value for name, value in os.environ.items() if name not in set(unset)
    }
    return subprocess.run(
        ["docker-compose", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


class Stack:
    """docker-compose.yml on the host network, under a project name of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.project = f"sessionsite-test-{uuid.uuid4().hex[:8]}"
        self.web_port = free_port()
        self.redis_port = free_port()
        self.db_port = free_port()
        # The operator's .env.
        self.settings = {
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_SECRET_KEY_FALLBACKS": "",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_BEHIND_TLS_PROXY": "1",
            "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
            "REDIS_PASSWORD": secrets.token_urlsafe(32),
            "GUNICORN_WORKERS": "1",
            "DEMO_USERNAME": DEMO[0],
            "DEMO_PASSWORD": DEMO[1],
        }
        self.image_labels: dict[str, str] = {}
        # A tag of its own, so that a concurrent run never swaps the image
        # under this one; every image it ran is removed at the end.
        self.tag = f"sessionsite:{self.project}"
        self.images: set[str] = set()
        self.rendered = directory / "docker-compose.yml"
        self.render()

    def override(self) -> dict[str, Any]:
        """Return the host-network override: loopback addresses, free ports."""
        redis_url = f"redis://:${{REDIS_PASSWORD}}@127.0.0.1:{self.redis_port}/0"
        database_url = (
            "postgres://sessionsite:${POSTGRES_PASSWORD}"
            f"@127.0.0.1:{self.db_port}/sessionsite"
        )
        return {
            "services": {
                "web": {
                    "network_mode": "host",
                    "image": self.tag,
                    "build": {"network": "host", "labels": self.image_labels},
                    "environment": {
                        "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
                        "REDIS_URL": redis_url,
                        "DATABASE_URL": database_url,
                    },
                },
                "redis": {
                    "network_mode": "host",
                    # docker-compose.yml's own command, with an address added.
                    "entrypoint": [
                        "sh",
                        "-c",
                        f'exec "$$@" --bind 127.0.0.1 --port {self.redis_port}',
                        "sh",
                    ],
                    "healthcheck": {
                        "test": [
                            "CMD-SHELL",
                            'REDISCLI_AUTH="$$REDIS_PASSWORD" '
                            f"redis-cli -p {self.redis_port} ping | grep -q PONG",
                        ]
                    },
                },
                "db": {
                    "network_mode": "host",
                    # The server's port, and pg_isready's in docker-compose.yml's
                    # healthcheck.
                    "environment": {"PGPORT": str(self.db_port)},
                    "command": ["postgres", "-c", "listen_addresses=127.0.0.1"],
                },
            }
        }

    def render(self) -> None:
        """Write .env and the override; render both with docker-compose.yml."""
        env_file = write_env_file(self.directory / ".env", self.settings)
        override = self.directory / "host-network.json"
        override.write_text(json.dumps(self.override()))
        result = docker_compose(
            "--file", str(COMPOSE_FILE), "--file", str(override),
            "--env-file", str(env_file), "config",
            unset=self.settings,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        # docker-compose 1.29 refuses port bindings with network_mode: host,
        # and cannot remove a key in an override.
        self.rendered.write_text(PORTS.sub("", result.stdout))

    def configure(self, **values: str) -> None:
        """Change the operator's .env."""
        self.settings.update(values)
        self.render()

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = docker_compose(
            "--project-name", self.project, "--file", str(self.rendered), *args,
            unset=self.settings, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, f"docker-compose {args}:\n{result.stderr}"
        return result

    def up(self, *args: str) -> None:
        self.compose("up", "--detach", *args)
        self.wait_until_ready()
        self.images.add(self.web_image())

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if self.visitor().get("/readyz").status == HTTPStatus.OK:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        logs = self.compose("logs", "--tail", "30").stdout
        raise AssertionError(f"/readyz never answered 200:\n{logs}")

    def health(self) -> dict[str, str]:
        """Return each service's Docker health status."""
        containers = self.compose("ps", "--quiet").stdout.split()
        states = docker(
            "inspect", "--format",
            '{{index .Config.Labels "com.docker.compose.service"}} '
            "{{.State.Health.Status}}",
            *containers,
        ).stdout  # fmt: skip
        return dict(line.split() for line in states.splitlines())

    def web_image(self) -> str:
        container = self.compose("ps", "--quiet", "web").stdout.strip()
        return docker("inspect", "--format", "{{.Image}}", container).stdout.strip()

    def visitor(self) -> Browser:
        """Return a new visitor, reaching the site as through a TLS proxy."""
        return Browser(
            self.web_port,
            headers={
                "X-Forwarded-Proto": "https",
                "X-Forwarded-For": "203.0.113.7",
                # What a browser sends with a form posted over HTTPS.
                "Origin": f"https://127.0.0.1:{self.web_port}",
            },
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_engine()
    require_docker_compose()
    running = Stack(tmp_path_factory.mktemp("compose"))
    try:
        running.up("--build")
        yield running
    finally:
        running.compose("down", "--volumes", "--remove-orphans")
        docker("rmi", "--force", running.tag, *running.images, check=False)


def visit(visitor: Browser) -> Any:
    return visitor.get("/visits/", headers=JSON).json()


def signed_in(stack: Stack) -> Browser:
    """Return a visitor who has logged in and visited once."""
    visitor = stack.visitor()
    assert visitor.log_in(*DEMO).status == HTTPStatus.FOUND
    assert visit(visitor) == {"visits": 1, "username": DEMO[0]}
    return visitor


def check_compose_file(
    env_file: Path, override: Path | None = None, option: str = "--quiet"
) -> subprocess.CompletedProcess[str]:
    """Load docker-compose.yml as every docker-compose command first does."""
    require_docker_compose()
    files = [COMPOSE_FILE, *([override] if override else [])]
    return docker_compose(
        *(arg for path in files for arg in ("--file", str(path))),
        "--env-file", str(env_file), "config", *([option] if option else []),
        unset=REQUIRED,
    )  # fmt: skip


def test_the_compose_file_is_valid_with_its_required_variables(tmp_path):
    env_file = write_env_file(tmp_path / ".env", dict.fromkeys(REQUIRED, "x"))
    result = check_compose_file(env_file)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", REQUIRED)
@pytest.mark.parametrize("override", [None, SENTINEL_FILE], ids=["", "sentinel"])
def test_compose_refuses_to_run_without(missing, override, tmp_path):
    values = {name: "x" for name in REQUIRED if name != missing}
    result = check_compose_file(write_env_file(tmp_path / ".env", values), override)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_the_sentinel_variant_points_the_site_at_three_sentinels(tmp_path):
    env_file = write_env_file(tmp_path / ".env", dict.fromkeys(REQUIRED, "x"))
    services = check_compose_file(env_file, SENTINEL_FILE, "--services")
    assert services.returncode == 0, services.stderr
    assert sorted(services.stdout.split()) == [
        "db", "redis", "redis-replica-1", "redis-replica-2",
        "sentinel-1", "sentinel-2", "sentinel-3", "web",
    ]  # fmt: skip
    rendered = check_compose_file(env_file, SENTINEL_FILE, "").stdout
    assert "REDIS_SENTINELS: sentinel-1:26379,sentinel-2:26379,sentinel-3:26379\n" in (
        rendered
    )
    assert "REDIS_URL: redis://:x@sessions/0\n" in rendered
    assert rendered.count("--replicaof redis 6379") == 2


def test_all_three_services_become_healthy(stack):
    healthy = dict.fromkeys(SERVICES, "healthy")
    deadline = time.monotonic() + 60
    while (health := stack.health()) != healthy and time.monotonic() < deadline:
        time.sleep(1)
    assert health == healthy


def test_readyz_reports_redis_and_the_database_ok(stack):
    assert stack.visitor().get("/readyz").json() == {
        "status": "ok",
        "redis": "ok",
        "database": "ok",
    }


def test_redis_refuses_a_client_without_the_password(stack):
    # No retries: redis-py retries an AuthenticationError, with backoff.
    no_retry = Retry(NoBackoff(), 0)
    with (
        redis.Redis(port=stack.redis_port, socket_timeout=5, retry=no_retry) as client,
        pytest.raises(redis.AuthenticationError),
    ):
        client.ping()


def test_a_request_without_the_proxys_https_header_is_redirected_to_https(stack):
    response = Browser(stack.web_port).get("/login/")
    assert response.status == HTTPStatus.MOVED_PERMANENTLY
    assert response.headers["Location"].startswith("https://")


def test_a_user_logs_in_counts_visits_and_logs_out(stack):
    visitor = stack.visitor()
    assert visitor.log_in(*DEMO).status == HTTPStatus.FOUND
    assert [visit(visitor)["visits"] for _ in range(3)] == [1, 2, 3]
    assert visitor.post("/logout/").status == HTTPStatus.FOUND
    response = visitor.get("/dashboard/")
    assert response.status == HTTPStatus.FOUND
    assert response.headers["Location"].startswith("/login/")


@pytest.mark.parametrize(
    "commands",
    [
        pytest.param([["restart", "web"]], id="restart-web"),
        pytest.param([["restart", "redis"]], id="restart-redis"),
        # SIGKILL: no snapshot on the way down, only the append-only file.
        pytest.param([["kill", "redis"], ["start", "redis"]], id="kill-redis"),
        pytest.param([["down"], ["up", "--detach"]], id="down-up"),
    ],
)
def test_everyone_stays_signed_in_through(stack, commands):
    visitor = signed_in(stack)
    for command in commands:
        stack.compose(*command)
    stack.wait_until_ready()
    assert visit(visitor) == {"visits": 2, "username": DEMO[0]}


def test_an_image_upgrade_keeps_everyone_signed_in(stack):
    visitor = signed_in(stack)
    before = stack.web_image()
    stack.image_labels["org.opencontainers.image.version"] = "upgraded"
    stack.render()
    stack.up("--build")
    assert stack.web_image() != before
    assert visit(visitor) == {"visits": 2, "username": DEMO[0]}


def test_down_with_volumes_ends_every_session(stack):
    visitor = signed_in(stack)
    stack.compose("down", "--volumes")
    stack.up()
    response = visitor.get("/dashboard/")
    assert response.status == HTTPStatus.FOUND
    assert response.headers["Location"].startswith("/login/")


@dataclass
class Rotation:
    """Two users signed in before the key changed."""

    new_key: str
    old_cookie: str
    returned: Browser  # came back after the restart
    first_visit_after: Any
    stayed_away: Browser


@pytest.fixture(scope="module")
def rotation(stack: Stack) -> Rotation:
    """Follow the runbook: a new key, the old one as fallback, `up -d`."""
    returned, stayed_away = signed_in(stack), signed_in(stack)
    old_cookie = returned.cookies[COOKIE]
    new_key = secrets.token_urlsafe(50)
    stack.configure(
        DJANGO_SECRET_KEY=new_key,
        DJANGO_SECRET_KEY_FALLBACKS=stack.settings["DJANGO_SECRET_KEY"],
    )
    stack.up()
    return Rotation(new_key, old_cookie, returned, visit(returned), stayed_away)


@pytest.fixture(scope="module")
def fallback_removed(stack: Stack, rotation: Rotation) -> Rotation:
    """The runbook's last step: the old key leaves the fallbacks, `up -d`."""
    stack.configure(DJANGO_SECRET_KEY_FALLBACKS="")
    stack.up()
    return rotation


def test_after_a_key_rotation_signed_in_users_stay_signed_in(rotation):
    assert rotation.first_visit_after == {"visits": 2, "username": DEMO[0]}


def test_after_a_key_rotation_cookies_are_re_signed_with_the_new_key(rotation):
    new_cookie = rotation.returned.cookies[COOKIE]
    with override_settings(SECRET_KEY=rotation.new_key, SECRET_KEY_FALLBACKS=[]):
        assert keys.verify(new_cookie) == new_cookie
        assert keys.verify(rotation.old_cookie) is None


def test_without_the_fallback_a_re_signed_cookie_still_signs_in(fallback_removed):
    assert visit(fallback_removed.returned) == {"visits": 3, "username": DEMO[0]}


def test_without_the_fallback_a_cookie_never_re_signed_gets_the_login_page(
    fallback_removed,
):
    visitor = fallback_removed.stayed_away
    response = visitor.get("/dashboard/")
    assert response.status == HTTPStatus.FOUND
    assert response.headers["Location"].startswith("/login/")
    assert visitor.get(response.headers["Location"]).status == HTTPStatus.OK
