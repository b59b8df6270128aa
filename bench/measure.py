"""
Measure one engine in-process: exact round trips and bytes sent to Redis per
request kind, and Redis memory per session; with BENCH_MEASURE=redis-time,
Redis's own time per request instead. Prints one JSON object.

Run by bench.run and bench.redis_time with BENCH_ENGINE, REDIS_URL and
DATABASE_URL set.
"""

from __future__ import annotations

import json
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402

SESSIONS_FOR_MEMORY = 200
# Requests per kind for Redis's own time (INFO commandstats and cpu).
REDIS_REQUESTS = int(os.environ.get("BENCH_REDIS_REQUESTS", "1000"))


class Meter:
    """Count the round trips and bytes every redis-py client sends."""

    def __init__(self) -> None:
        self.commands = 0
        self.bytes = 0
        self.names: set[str] = set()
        execute = redis.Redis.execute_command
        # For the benchmark's own commands, which must not count.
        self.unmetered = execute
        send = redis.connection.AbstractConnection.send_packed_command
        pipeline = redis.client.Pipeline.execute

        def counting_execute(client: Any, *args: Any, **options: Any) -> Any:
            self.commands += 1
            self.names.add(str(args[0]).lower())
            return execute(client, *args, **options)

        def counting_send(
            connection: Any, command: Any, *args: Any, **kwargs: Any
        ) -> Any:
            chunks = [command] if isinstance(command, (bytes, str)) else command
            self.bytes += sum(len(chunk) for chunk in chunks)
            return send(connection, command, *args, **kwargs)

        def counting_pipeline(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            self.commands += 1
            inside = False  # EXEC's time holds the commands it runs
            for command in pipe.command_stack:
                name = str(command[0][0]).lower()
                inside = (inside or name == "multi") and name != "exec"
                if not inside or name == "multi":
                    self.names.add(name)
            return pipeline(pipe, *args, **kwargs)

        redis.Redis.execute_command = counting_execute  # type: ignore[method-assign]
        redis.client.Pipeline.execute = counting_pipeline  # type: ignore[method-assign]
        redis.connection.AbstractConnection.send_packed_command = counting_send  # type: ignore[method-assign]

    def measure(self, request: Any) -> dict[str, int]:
        self.commands = self.bytes = 0
        request()
        return {"round_trips": self.commands, "bytes": self.bytes}


def memory_per_session(
    store: redis.Redis, *, users: int = 1, per_user: int = SESSIONS_FOR_MEMORY
) -> tuple[int, int]:
    """
    Return what users x per_user logged-in sessions take in Redis, per session.

    Two figures: every key (our per-user index too), and the session keys
    alone (the same data that the other engines store).
    """
    store.flushdb()
    for user in range(users):
        for _ in range(per_user):
            visitor = Client()
            visitor.post(f"/login/?as=bench-{user}" if users > 1 else "/login/")
            visitor.get("/change/")
    usage = {key: store.memory_usage(key) or 0 for key in store.scan_iter(count=1000)}
    sessions_only = sum(size for key, size in usage.items() if b":user:" not in key)
    count = users * per_user
    return sum(usage.values()) // count, sessions_only // count


def cpu_seconds(store: redis.Redis) -> float:
    cpu = store.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def redis_time(
    store: redis.Redis, meter: Meter, kinds: dict[str, Any]
) -> dict[str, float]:
    """
    Return Redis's time per request of each kind: command execution µs, and
    the server process's CPU µs (which adds each round trip's I/O). One
    kind is a read-and-change a minute after the last write, when our
    engine's count has a save renew the TTL.

    Both are read around all of a kind's requests at once (login and logout
    as a pair, since one needs the other). Command time counts only the
    commands the engine sent: a script's or a transaction's own time already
    holds the commands it runs, which commandstats also lists apart. The
    stats are reset once per kind, not per request: after a reset, the first
    call of each command inside a script or a transaction sets up its
    latency histogram within the caller's time, which a server never pays
    again.
    """
    n = REDIS_REQUESTS
    result = {}

    def measure(name: str, request: Any) -> None:
        store.config_resetstat()
        start = cpu_seconds(store)
        meter.names.clear()
        for _ in range(n):
            request()
        sent = set(meter.names)
        result[f"cpu_usec_{name}"] = (cpu_seconds(store) - start) * 1e6 / n
        stats = store.info("commandstats")
        usec = sum(stats[f"cmdstat_{command}"]["usec"] for command in sent)
        result[f"usec_{name}"] = usec / n

    def after_a_pause() -> None:
        # As if the last write were 61 s ago: every session's TTL run down
        # so (a user's index is left alone: its entries do not age, so the
        # save leaves out the entry's re-scoring that a real pause adds).
        for key in meter.unmetered(store, "KEYS", "*"):
            ttl = meter.unmetered(store, "TTL", key)
            if ttl > 61 and meter.unmetered(store, "TYPE", key) != b"zset":
                meter.unmetered(store, "EXPIRE", key, ttl - 61)
        kinds["read_and_change"]()

    measure("read_and_change", kinds["read_and_change"])
    # Its CPU holds the benchmark's own commands too: not reported.
    measure("read_and_change_after_a_pause", after_a_pause)
    measure("read_only", kinds["read_only"])
    kinds["logout"]()
    measure("login_and_logout", lambda: (kinds["login"](), kinds["logout"]()))
    kinds["login"]()
    return result


def main() -> None:
    meter = Meter()
    client = Client()
    kinds = {
        "login": lambda: client.post("/login/"),
        "read_and_change": lambda: client.get("/change/"),
        "read_only": lambda: client.get("/read/"),
        "logout": lambda: client.post("/logout/"),
    }
    for request in kinds.values():  # warm up: connections, scripts loaded
        request()
    store = redis.Redis.from_url(os.environ["REDIS_URL"])
    if os.environ.get("BENCH_MEASURE") == "redis-time":  # bench.redis_time
        kinds["login"]()
        print(json.dumps({"redis_time": redis_time(store, meter, kinds)}))
        return
    result: dict[str, Any] = {
        name: meter.measure(request) for name, request in kinds.items()
    }
    # login() rotates the key of an anonymous session that holds data,
    # which costs more than a login from no session.
    warm_up, visitor = Client(), Client()
    for anonymous in (warm_up, visitor):
        anonymous.get("/anonymous/")
    warm_up.post("/login/")  # loads the script that leaves the anonymous key
    result["login_from_anonymous"] = meter.measure(lambda: visitor.post("/login/"))

    for limit in ("64", "128"):
        # 64 is Redis's default; 128 is what the README recommends, so that
        # a 64-character value (Django's _auth_user_hash, as JSON) keeps a
        # session's hash in the compact listpack encoding.
        store.config_set("hash-max-listpack-value", limit)
        total, sessions_only = memory_per_session(store)
        result[f"memory_per_session_{limit}"] = total
        result[f"memory_per_session_alone_{limit}"] = sessions_only
    # As sites have them: many users, one to a few sessions each.
    for per_user in (1, 5):
        total, _ = memory_per_session(store, users=40, per_user=per_user)
        result[f"memory_per_session_{per_user}_per_user"] = total
    result["engine"] = settings.BENCH_ENGINE
    print(json.dumps(result))


if __name__ == "__main__":
    main()
