"""The benchmark's programs still run, with tiny sizes, so they cannot rot unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.redis_process import RedisProcess, server_binary
from tests.site_process import ROOT

ENGINE = "ours"
# The Redis stores the side-by-side benchmarks measure, as their tables name them.
REDIS_STORES = ["| ours", "| django cache (django-redis)", "| django-redis-sessions"]


def run(module: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def first_cells(output: str) -> list[str]:
    """Return the first cell of each table row in output."""
    return [line.split(" | ")[0] for line in output.splitlines() if line[:2] == "| "]


def test_the_micro_benchmark_prints_its_table():
    output = run("bench.micro", BENCH_MICRO_N="5")
    rows = [line for line in output.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| load",
        "| load, then save one changed key",
        "| counter increment (loaded session)",
        "| counter increment before any read (it loads the session too)",
        "| create",
        "| load, then cycle the key",
        "| delete",
    ]


def test_the_benchmarks_pages_name_static_files_without_collectstatic():
    # The 503 page, which the benchmark's servers answer when Redis times
    # out under load, links the site's stylesheet.
    code = (
        "import django; django.setup(); "
        "from django.templatetags.static import static; "
        "print(static('css/site.css'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        # With DEBUG the manifest storage names files as they are anyway.
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_DEBUG": "0",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/static/css/site.css"


def test_the_scaling_benchmark_prints_both_tables(tmp_path):
    output = run(
        "bench.scaling",
        BENCH_SCALING_SIZES="50,100",
        BENCH_SCALING_PER_USER="1,3",
        BENCH_SCALING_LOADS="10",
        BENCH_SCALING_REPEATS="2",
        BENCH_SCALING_RESULTS=str(tmp_path / "results.md"),
    )
    rows = [line for line in output.splitlines() if line[2:3].isdigit()]
    assert [row.split(" | ")[0] for row in rows] == ["| 50", "| 100", "| 1", "| 3"]
    written = (tmp_path / "results.md").read_text().splitlines()
    assert all(row in written for row in rows)


def test_the_profile_prints_each_engine_and_each_step(tmp_path):
    output = run(
        "bench.profile",
        BENCH_PROFILE_ROUNDS="1",
        BENCH_PROFILE_REQUESTS="3",
        BENCH_PROFILE_CALLS="5",
        BENCH_PROFILE_RESULTS=str(tmp_path / "results.md"),
    )
    assert first_cells(output) == [
        "| engine",
        *REDIS_STORES,
        "| step",
        "| check the cookie's signature (HMAC-SHA256)",
        "| name the session's Redis key (SHA-256)",
        "| make a SessionStore (checks the signature)",
        "| decode the loaded hash (Django's 3 auth keys, a count)",
        "| encode one value (a count)",
        "| a load: make a SessionStore, name the key, HGETALL, decode",
        "| the HGETALL alone (redis-py)",
    ]
    assert (tmp_path / "results.md").read_text().strip() == output.strip()


@pytest.mark.gunicorn
def test_the_redis_time_benchmark_prints_each_engine_and_target(tmp_path):
    output = run(
        "bench.redis_time",
        BENCH_REDIS_SERVERS=server_binary(),
        BENCH_REDIS_REQUESTS="3",
        BENCH_ROUNDS="1",
        BENCH_REDIS_TIME_RESULTS=str(tmp_path / "results.md"),
    )
    assert first_cells(output) == [
        "| engine",
        *REDIS_STORES,
        "| target",
        "| Redis command time per read-and-change request <= 2 x Django cache backend",
        "| Redis command time per read-and-change request a minute after the last "
        "write <= 2 x Django cache backend",
        "| Redis command time per read-only request <= 1.5 x Django cache backend",
        "| Redis CPU per read-and-change request <= 1 x Django cache backend",
        "| Redis CPU per read-only request <= 1.5 x Django cache backend",
    ]
    assert (tmp_path / "results.md").read_text().strip() == output.strip()


@pytest.mark.gunicorn
def test_the_measurement_counts_our_round_trips(tmp_path):
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    database = tmp_path / "db.sqlite3"
    env = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_ENGINE": ENGINE,
        "REDIS_URL": redis.url,
        "DATABASE_URL": f"sqlite:///{database}",
    }
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=ROOT, env={**os.environ, **env}, check=True,
        )  # fmt: skip
        subprocess.run(
            [
                sys.executable, "manage.py", "shell", "--no-imports", "-c",
                "from django.contrib.auth.models import User; "
                "User.objects.create(username='bench')",
            ],
            cwd=ROOT, env={**os.environ, **env}, check=True,
        )  # fmt: skip
        result = json.loads(run("bench.measure", **env).splitlines()[-1])
    finally:
        redis.kill()
    kinds = ("login", "login_from_anonymous", "read_and_change", "read_only", "logout")
    trips = {kind: result[kind]["round_trips"] for kind in kinds}
    assert trips == {
        "login": 1,
        "login_from_anonymous": 3,
        "read_and_change": 1,
        "read_only": 1,
        "logout": 1,
    }
    assert result["memory_per_session_alone_128"] > 0
