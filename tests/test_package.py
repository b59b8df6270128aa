"""
The engine as a user gets it: its wheel, built from this repository, in a
new virtualenv outside it, and a new ``django-admin startproject`` project
configured with the settings block of the README's "Use it in another
project" and nothing more, on the oldest and the newest Django that the
distribution claims.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.django_suite import django_tests_dir
from tests.redis_process import RedisProcess
from tests.site_process import ROOT

pytestmark = [pytest.mark.package, pytest.mark.timeout(600)]

# The oldest and the newest Django of the distribution's classifiers.
DJANGO_VERSIONS = ["5.2.19", "6.1.3"]

CONTRACT = """
import sys, unittest

import django
from django.test import SimpleTestCase
from django.test.utils import setup_test_environment

django.setup()
setup_test_environment()

from sessions_tests.tests import SessionTestsMixin  # noqa: E402

from redis_hash_sessions.engine import SessionStore  # noqa: E402


class Contract(SessionTestsMixin, SimpleTestCase):
    backend = SessionStore


suite = unittest.defaultTestLoader.loadTestsFromTestCase(Contract)
result = unittest.TextTestRunner(stream=sys.stdout, verbosity=0).run(suite)
print(f"ran {result.testsRun}, skipped {len(result.skipped)}")
sys.exit(0 if result.wasSuccessful() and not result.skipped else 1)
"""

# A sign-in, a visit and a sign-out through Django's admin, with the Redis
# commands each request sends (a pipeline counts once, its commands joined).
ROUND_TRIPS = """
import json

import django
import redis
import redis.client
from django.test.utils import setup_test_environment

django.setup()
setup_test_environment()  # as Django's test runner: the test client's host

from django.contrib.auth.models import User  # noqa: E402
from django.test import Client  # noqa: E402

sent = []
execute, pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute


def counting(self, *args, **options):
    sent.append(str(args[0]).upper())
    return execute(self, *args, **options)


def counting_pipeline(self, *args, **options):
    sent.append("+".join(str(c[0][0]).upper() for c in self.command_stack))
    return pipeline(self, *args, **options)


redis.Redis.execute_command = counting
redis.client.Pipeline.execute = counting_pipeline
User.objects.create_superuser("ada", password="a long enough passphrase")
client = Client()
steps = {}
for name, request in [
    ("login", lambda: client.post(
        "/admin/login/", {"username": "ada", "password": "a long enough passphrase"}
    )),
    ("visit", lambda: client.get("/admin/")),
    ("logout", lambda: client.post("/admin/logout/")),
    ("after", lambda: client.get("/admin/")),
]:
    sent.clear()
    status = request().status_code
    steps[name] = [status, list(sent)]
print(json.dumps(steps))
"""


def readme_settings() -> str:
    """Return the settings block of the README's "Use it in another project"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Use it in another project\n", 1)[1].split("\n### ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


@dataclass(frozen=True)
class Project:
    directory: Path
    python: Path
    environment: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            cwd=self.directory,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and the sdist as `make dist` does; return their folder."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def redis_for_projects(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=DJANGO_VERSIONS)
def project(
    request: pytest.FixtureRequest,
    dist: Path,
    redis_for_projects: RedisProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Project:
    """A new project on a Django version, with the wheel, set up as the README says."""
    home = tmp_path_factory.mktemp(f"django-{request.param}")
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (wheel,) = dist.glob("*.whl")
    subprocess.run(
        [
            str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
            str(wheel), f"Django=={request.param}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [str(venv / "bin" / "django-admin"), "startproject", "mysite", str(home)],
        check=True,
    )
    settings = home / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + readme_settings())
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "REDIS_URL": redis_for_projects.url,
    }
    project = Project(home, venv / "bin" / "python", environment)
    assert project.run("manage.py", "migrate", "--no-input", "-v0").returncode == 0
    return project


def test_the_wheel_holds_the_engine_and_nothing_of_the_site(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    package = [n for n in names if not n.split("/")[0].endswith(".dist-info")]
    assert {n.split("/")[0] for n in package} == {"redis_hash_sessions"}
    assert "redis_hash_sessions/lua/save.lua" in names
    assert "redis_hash_sessions/templates/redis_hash_sessions/unavailable.html" in names
    assert "redis_hash_sessions/py.typed" in names


def test_twine_checks_the_distributions_metadata(dist: Path) -> None:
    files = sorted(str(f) for f in dist.iterdir())
    assert len(files) == 2  # the wheel and the sdist
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_readme_settings_pass_djangos_checks(project: Project) -> None:
    checked = project.run("manage.py", "check", "--fail-level", "WARNING")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def test_djangos_session_contract_passes(project: Project) -> None:
    version = project.run("-c", "import django; print(django.__version__)")
    tests = django_tests_dir(version.stdout.strip())
    (project.directory / "contract_settings.py").write_text(
        "from mysite.settings import *  # noqa: F403\n\n"
        'INSTALLED_APPS = [*INSTALLED_APPS, "sessions_tests"]  # noqa: F405\n'
    )
    environment = {
        **project.environment,
        "DJANGO_SETTINGS_MODULE": "contract_settings",
        "PYTHONPATH": str(tests),
    }
    ran = subprocess.run(
        [str(project.python), "-c", CONTRACT],
        cwd=project.directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    count = int(re.search(r"ran (\d+), skipped 0", ran.stdout).group(1))
    assert count >= 60


def test_a_sign_in_visit_and_sign_out_through_the_admin(project: Project) -> None:
    ran = project.run("-c", ROUND_TRIPS)
    assert ran.returncode == 0, ran.stderr
    steps = json.loads(ran.stdout.splitlines()[-1])
    assert steps == {
        "login": [302, ["EVALSHA"]],
        "visit": [200, ["HGETALL"]],
        "logout": [200, ["HGETALL", "DEL"]],
        "after": [302, []],
    }
