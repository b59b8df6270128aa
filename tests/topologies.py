"""
The Redis topologies that the engine's tests run against, each its own processes.

``Single`` is one server. ``SentinelSet`` is a primary with two replicas
watched by three sentinels that fail over a second after the primary stops
answering. Each says how the site reaches it: a CACHES setting for tests in
this process, an environment for the site's own processes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import redis

from sessionsite.settings import behind_sentinels

from . import settings
from .redis_process import RedisProcess

SERVICE = "sessions"
DOWN_AFTER_MS = 1000


def caches_for(url: str, *, max_connections: int | None = None) -> dict[str, Any]:
    """Return the test settings' CACHES pointed at another Redis URL."""
    default = settings.CACHES["default"]
    options = dict(default["OPTIONS"])
    if max_connections is not None:
        options["CONNECTION_POOL_KWARGS"] = {
            **options["CONNECTION_POOL_KWARGS"],
            "max_connections": max_connections,
        }
    return {"default": {**default, "LOCATION": url, "OPTIONS": options}}


class Topology(Protocol):
    name: str
    replicas: list[RedisProcess]

    @property
    def url(self) -> str:
        """Return the REDIS_URL that points the site here."""

    def caches(self, *, db: int = 0, max_connections: int | None = None) -> Any:
        """Return the site's CACHES setting pointed at this topology."""

    def environment(self) -> dict[str, str]:
        """Return what the site's processes need besides REDIS_URL."""

    def client(self) -> redis.Redis:
        """Return a plain client of the current primary."""


class Single:
    name = "single"

    def __init__(self, server: RedisProcess) -> None:
        self.server = server
        self.replicas: list[RedisProcess] = []

    def caches(self, *, db: int = 0, max_connections: int | None = None) -> Any:
        url = self.server.url.removesuffix("/0") + f"/{db}"
        return caches_for(url, max_connections=max_connections)

    @property
    def url(self) -> str:
        return self.server.url

    def environment(self) -> dict[str, str]:
        return {}

    def client(self) -> redis.Redis:
        return self.server.client()


class SentinelSet:
    """A primary, two replicas and three sentinels on loopback."""

    name = "sentinel"

    def __init__(
        self, directory: Path, *, binary: str | None = None, appendonly: bool = False
    ) -> None:
        """appendonly: the data servers keep an AOF, fsynced every second."""
        self.directory = directory
        persistence = {"appendonly": appendonly, "appendfsync": "everysec"}
        self.primary = RedisProcess(directory / "primary", binary=binary, **persistence)
        self.replicas = [
            RedisProcess(
                directory / f"replica{i}",
                binary=binary,
                extra_args=["--replicaof", "127.0.0.1", str(self.primary.port)],
                **persistence,
            )
            for i in (1, 2)
        ]
        self.sentinels = [
            RedisProcess(
                directory / f"sentinel{i}",
                binary=binary,
                config=directory / f"sentinel{i}.conf",
                extra_args=["--sentinel"],
            )
            for i in (1, 2, 3)
        ]

    @property
    def servers(self) -> list[RedisProcess]:
        return [self.primary, *self.replicas]

    def start(self) -> None:
        for server in self.servers:
            server.start()
        self.wait_for_replicas(self.primary)
        for sentinel in self.sentinels:
            assert sentinel.config is not None
            sentinel.config.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 2\n"
            )
            sentinel.start()
        self._wait(
            lambda: all(
                int(master["num-slaves"]) == 2
                and int(master["num-other-sentinels"]) == 2
                for master in (
                    s.client().sentinel_master(SERVICE) for s in self.sentinels
                )
            ),
            "the sentinels to see the replicas and each other",
        )

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers]:
            process.stop()

    def current_primary(self) -> RedisProcess:
        """Return the server that the sentinels name as primary now."""
        _, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(SERVICE)
        return next(s for s in self.servers if s.port == int(port))

    def wait_for_replicas(self, primary: RedisProcess) -> None:
        """Wait until every other server replicates primary, in sync."""

        def in_sync() -> bool:
            for server in self.servers:
                if server is primary or server.process is None:
                    continue
                info = server.client().info("replication")
                if (
                    info.get("master_port") != primary.port
                    or info.get("master_link_status") != "up"
                ):
                    return False
            return True

        self._wait(in_sync, "the replicas to sync")

    @staticmethod
    def _wait(condition: Any, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Gave up waiting for {what}.")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://{SERVICE}/0"

    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]

    def caches(self, *, db: int = 0, max_connections: int | None = None) -> Any:
        url = f"redis://{SERVICE}/{db}"
        caches = caches_for(url, max_connections=max_connections)
        return {"default": behind_sentinels(caches["default"], self.addresses(), None)}

    def environment(self) -> dict[str, str]:
        return {"REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in self.addresses())}

    def client(self) -> redis.Redis:
        return self.current_primary().client()
