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

from redis_hash_sessions import keys
from redis_hash_sessions.caches import in_cluster
from sessionsite.settings import CACHES, env_addresses
from tests.docker_engine import docker, require_docker_compose, require_engine
from tests.http_client import Browser
from tests.redis_process import free_port
from tests.site_process import ROOT

# The first test's setup builds the image: minutes when nothing is cached.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

COMPOSE_FILE = ROOT / "docker-compose.yml"
SENTINEL_FILE = ROOT / "docker-compose.sentinel.yml"
CLUSTER_FILE = ROOT / "docker-compose.cluster.yml"
# The cluster variant's nodes: the base file's redis is the first.
CLUSTER_NODES = ("redis", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6")
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
@pytest.mark.parametrize(
    "override", [None, SENTINEL_FILE, CLUSTER_FILE], ids=["", "sentinel", "cluster"]
)
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


# What `docker-compose config` prints: a service, its lines up to the next
# one; a double-quoted scalar (a script), with its escapes and its escaped
# line breaks (PyYAML's at 80 columns).
SERVICE = re.compile(r"^  ([\w.-]+):\n((?:    .*\n)*)", re.MULTILINE)
QUOTED = re.compile(r'(?<=: |- )"((?:[^"\\]|\\.)*)"', re.DOTALL)
ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", " ": " ", "/": "/"}


def unquoted(text: str) -> str:
    """Return text with each double-quoted scalar decoded (its quotes removed)."""

    def decode(scalar: re.Match[str]) -> str:
        return re.sub(
            r"\\(\n *|.)",
            lambda escape: "" if escape[1][0] == "\n" else ESCAPES[escape[1]],
            scalar[1],
        )

    return QUOTED.sub(decode, text)


def cluster_services(tmp_path: Path, **settings: str) -> dict[str, str]:
    """Render docker-compose.cluster.yml over docker-compose.yml, by service."""
    values = dict.fromkeys(REQUIRED, "x") | settings
    env_file = write_env_file(tmp_path / ".env", values)
    result = check_compose_file(env_file, CLUSTER_FILE, "")
    assert result.returncode == 0, result.stderr
    services = re.search(r"^services:\n(.*?)^\S", result.stdout, re.S | re.M)
    assert services, result.stdout
    return {name: unquoted(lines) for name, lines in SERVICE.findall(services[1])}


def test_the_cluster_variant_points_the_site_at_six_nodes(tmp_path):
    env_file = write_env_file(tmp_path / ".env", dict.fromkeys(REQUIRED, "x"))
    services = check_compose_file(env_file, CLUSTER_FILE, "--services")
    assert services.returncode == 0, services.stderr
    assert sorted(services.stdout.split()) == sorted(
        ["db", "redis-cluster-create", "web", *CLUSTER_NODES]
    )
    web = cluster_services(tmp_path)["web"]
    nodes = ",".join(f"{node}:6379" for node in CLUSTER_NODES)
    assert f"      REDIS_CLUSTER_NODES: {nodes}\n" in web
    # Only the scheme and the password: the hosts are the nodes.
    assert "      REDIS_URL: redis://:x@/0\n" in web
    assert "      REDIS_WAIT_REPLICAS: '1'\n" in web
    # The site starts once the cluster is formed.
    assert (
        "      redis-cluster-create:\n"
        "        condition: service_completed_successfully\n"
    ) in web


def test_the_site_reads_the_cluster_variants_nodes_and_url(tmp_path, monkeypatch):
    web = cluster_services(tmp_path)["web"]
    environment = dict(re.findall(r"^      (REDIS_\w+): (.*)$", web, re.MULTILINE))
    monkeypatch.setenv("REDIS_CLUSTER_NODES", environment["REDIS_CLUSTER_NODES"])
    nodes = env_addresses("REDIS_CLUSTER_NODES")
    assert nodes == [(node, 6379) for node in CLUSTER_NODES]
    entry = {**CACHES["default"], "LOCATION": environment["REDIS_URL"]}
    assert in_cluster(entry, nodes)["LOCATION"] == "redis://:x@redis:6379/0"


CLUSTER_FLAGS = (
    "--dir /data --appendonly yes --appendfsync everysec",
    '--requirepass "$$REDIS_PASSWORD" --masterauth "$$REDIS_PASSWORD"',
    "--cluster-enabled yes --cluster-config-file nodes.conf",
    "--cluster-require-full-coverage no",
    "--cluster-node-timeout 5000",
    "--cluster-preferred-endpoint-type hostname",
)


@pytest.mark.parametrize("node", CLUSTER_NODES)
def test_every_cluster_node_runs_with_the_cluster_flags(node, tmp_path):
    service = cluster_services(tmp_path)[node]
    for flag in CLUSTER_FLAGS:
        assert flag in service
    # The name it announces, appended to the shared flags: its service's.
    assert f"    command:\n    - --cluster-announce-hostname\n    - {node}\n" in service
    assert '  "$$@"\n' in service
    assert "      REDIS_PASSWORD: x\n" in service
    assert 'REDISCLI_AUTH="$$REDIS_PASSWORD" redis-cli ping' in service
    # nodes.conf on a volume of its own, not the single Redis's.
    number = CLUSTER_NODES.index(node) + 1
    assert f"    volumes:\n    - redis-cluster-{number}-data:/data:rw\n" in service


def test_the_cluster_node_timeout_comes_from_the_env_file(tmp_path):
    services = cluster_services(tmp_path, REDIS_CLUSTER_NODE_TIMEOUT_MS="2000")
    for node in CLUSTER_NODES:
        assert "--cluster-node-timeout 2000 " in services[node]


def test_the_cluster_is_formed_once_all_six_nodes_are_healthy(tmp_path):
    create = cluster_services(tmp_path)["redis-cluster-create"]
    for node in CLUSTER_NODES:
        assert f"      {node}:\n        condition: service_healthy\n" in create
    # A one-shot service: never started again once it has exited.
    assert "    restart: no\n" in create


def shell_script(service: str, after: str, before: str) -> str:
    """Return the script between two lines of a rendered service, as sh runs it."""
    script = re.search(
        f"^{re.escape(after)}(.*?)^{re.escape(before)}", service, re.S | re.M
    )
    assert script, service
    # docker-compose passes $$ on as $.
    return script[1].replace("$$", "$")


def stub(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)


# nodes.conf as Redis 7.0 writes it (redis, redis-3) and as 7.2 and later do
# (redis-2), with the addresses the containers had before `down` and `up`.
STALE_NODES_CONF = """\
0000000000000000000000000000000000000001 172.18.0.7:6379@16379,redis myself,master - 0 0 1 connected 0-5460
0000000000000000000000000000000000000002 172.18.0.5:6379@16379,redis-2,tls-port=0,shard-id=ab master - 0 1 2 connected 5461-10922
0000000000000000000000000000000000000003 172.18.0.2:6379@16379,redis-3 slave 0000000000000000000000000000000000000001 0 1 1 connected
vars currentEpoch 6 lastVoteEpoch 0
"""  # noqa: E501


def test_a_cluster_node_finds_the_others_at_their_new_addresses(tmp_path):
    service = cluster_services(tmp_path)["redis-2"]
    script = shell_script(service, "    - -c\n    - ", "    - sh\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "nodes.conf").write_text(STALE_NODES_CONF)
    bin_directory = tmp_path / "bin"
    # Docker's DNS: redis-3 is not running yet.
    stub(bin_directory, "getent", (
        'case "$2" in\n'
        "  redis) echo '10.0.0.11       redis' ;;\n"
        "  redis-2) echo '10.0.0.12       redis-2' ;;\n"
        "  *) exit 2 ;;\n"
        "esac\n"
    ))  # fmt: skip
    stub(bin_directory, "redis-server", f'printf "%s\\n" "$@" > {tmp_path}/args\n')
    result = subprocess.run(
        ["sh", "-c", script.replace("/data", str(data)), "sh",
         "--cluster-announce-hostname", "redis-2"],
        env={"PATH": f"{bin_directory}:{os.environ['PATH']}", "REDIS_PASSWORD": "pw"},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (data / "nodes.conf").read_text() == STALE_NODES_CONF.replace(
        " 172.18.0.7:", " 10.0.0.11:"
    ).replace(" 172.18.0.5:", " 10.0.0.12:")
    args = (tmp_path / "args").read_text().splitlines()
    assert args[args.index("--requirepass") + 1] == "pw"
    assert args[args.index("--masterauth") + 1] == "pw"
    assert args[-2:] == ["--cluster-announce-hostname", "redis-2"]


# What `cluster info` says, and whether redis-cluster-create then creates.
NEW = "cluster_state:fail\r\ncluster_slots_assigned:0\r\n"
FORMED = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"
# After a restart, before the nodes have found each other again.
RESTARTING = "cluster_state:fail\r\ncluster_slots_assigned:16384\r\n"
# An error is no sign of a cluster: create, which then says what is wrong.
ERROR = "NOAUTH Authentication required.\n"


@pytest.mark.parametrize(
    ("info", "creates"),
    [(NEW, 1), (FORMED, 0), (RESTARTING, 0), (ERROR, 1)],
    ids=["new", "formed", "restarting", "error"],
)
def test_the_cluster_is_created_only_when_no_node_has_slots(info, creates, tmp_path):
    service = cluster_services(tmp_path)["redis-cluster-create"]
    script = shell_script(service, "    command:\n    - ", "    depends_on:\n")
    bin_directory = tmp_path / "bin"
    # Each call logged; `cluster info` answers `info` until a create.
    stub(bin_directory, "redis-cli", (
        'echo "$*" >> calls\n'
        'case "$*" in\n'
        '  *"--cluster create"*) : > created ;;\n'
        '  *"cluster info"*) test -e created && printf "cluster_state:ok\\r\\n" '
        '|| printf "%s" "$INFO" ;;\n'
        "esac\n"
    ))  # fmt: skip
    stub(bin_directory, "sleep", "")
    result = subprocess.run(
        ["sh", "-c", script],
        env={"PATH": f"{bin_directory}:{os.environ['PATH']}", "REDIS_PASSWORD": "pw",
             "INFO": info},
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    create = [call for call in calls if "--cluster create" in call]
    assert len(create) == creates
    if create:
        addresses = " ".join(f"{node}:6379" for node in CLUSTER_NODES)
        assert (
            create[0]
            == f"--cluster create {addresses} --cluster-replicas 1 --cluster-yes"
        )


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
