"""The Docker engine and docker-compose, for the tests that build and run images."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest


def docker(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=check, timeout=timeout
    )


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it in CI, which installs everything it needs."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def require_engine() -> None:
    if not shutil.which("docker") or docker("info", check=False).returncode != 0:
        unavailable("no Docker engine: run ../shared/docker/stand-in-images first")


def require_docker_compose() -> None:
    if not shutil.which("docker-compose"):
        unavailable("docker-compose is not installed: apt-get install docker-compose")
