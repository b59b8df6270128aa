"""The site under a real gunicorn, on a loopback port, for process-level tests.

Each server runs as WSGI (sync or threaded workers) or as ASGI (uvicorn's
worker), chosen by SITE_INTERFACE as in the Docker image; INTERFACES
parametrizes the tests that must hold under both.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .redis_process import free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password-for-tests"
INTERFACES = ("wsgi", "asgi")


def site_environment(redis_url: str, database: Path) -> dict[str, str]:
    """Return the environment that the site's processes run with."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "tests-only-secret-key",
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{database}",
        "DEMO_USERNAME": DEMO_USERNAME,
        "DEMO_PASSWORD": DEMO_PASSWORD,
    }


def prepare_database(environment: dict[str, str]) -> None:
    """Migrate the database and create the demo user."""
    for command in (["migrate", "--no-input", "-v0"], ["ensure_demo_user"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=environment,
            check=True,
            capture_output=True,
        )


class Gunicorn:
    """
    gunicorn serving the site with the given workers (and threads, for WSGI).

    The application comes from gunicorn.conf.py, as in the image. Every
    ResourceWarning is written to the log, and stop() fails on one.
    """

    def __init__(
        self,
        environment: dict[str, str],
        log: Path,
        *,
        workers: int,
        threads: int,
        interface: str = "wsgi",
    ) -> None:
        self.environment = {
            **environment,
            "SITE_INTERFACE": interface,
            "PYTHONWARNINGS": "always::ResourceWarning",
        }
        self.interface = interface
        self.log = log
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers),
            "--threads", str(self.threads),
            "--graceful-timeout", "5",
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=self.environment, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            try:
                connection.request("GET", "/login/")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
            finally:
                connection.close()
            if self.process.poll() is not None:
                break
        raise RuntimeError(f"gunicorn did not start; see {self.log}")

    def stop(self) -> None:
        if self.process is not None:
            self.terminate()
            assert "ResourceWarning" not in self.log.read_text()

    def terminate(self) -> None:
        """Stop with SIGTERM, as docker stop does, and wait for the exit."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@contextmanager
def serving(
    redis_url: str,
    directory: Path,
    *,
    workers: int,
    threads: int,
    interface: str,
    **environment: str,
) -> Iterator[Gunicorn]:
    """Serve the site from a new database in directory until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    site_env = {**site_environment(redis_url, directory / "db.sqlite3"), **environment}
    prepare_database(site_env)
    server = Gunicorn(
        site_env,
        directory / "gunicorn.log",
        workers=workers,
        threads=threads,
        interface=interface,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
