"""docker-compose.yml: the variables it requires before it does anything."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.docker_engine import require_docker_compose
from tests.site_process import ROOT

pytestmark = pytest.mark.docker

COMPOSE_FILE = ROOT / "docker-compose.yml"
REQUIRED = ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD")


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


def check_compose_file(env_file: Path) -> subprocess.CompletedProcess[str]:
    """Load docker-compose.yml as every docker-compose command first does."""
    require_docker_compose()
    return docker_compose(
        "--file", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "--quiet",
        unset=REQUIRED,
    )  # fmt: skip


def test_the_compose_file_is_valid_with_its_required_variables(tmp_path):
    env_file = write_env_file(tmp_path / ".env", dict.fromkeys(REQUIRED, "x"))
    result = check_compose_file(env_file)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", REQUIRED)
def test_compose_refuses_to_run_without(missing, tmp_path):
    values = {name: "x" for name in REQUIRED if name != missing}
    result = check_compose_file(write_env_file(tmp_path / ".env", values))
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr
