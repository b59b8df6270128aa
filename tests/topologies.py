"""
The Redis topologies that the engine's tests run against, each its own processes.

``Single`` is one server. ``SentinelSet`` is a primary with two replicas
watched by three sentinels that fail over a second after the primary stops
answering. ``ClusterSet`` is a Redis Cluster of three primaries, each with a
replica that takes over its slots about two seconds after it stops
answering. Each says how the site reaches it: a CACHES setting for tests in
this process, an environment for the site's own processes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from redis_hash_sessions.caches import behind_sentinels, in_cluster

from . import settings
from .redis_process import RedisProcess, free_port

# See SentinelSet.wait_for_replicas().
NUDGE_AFTER = 20
SERVICE = "sessions"
DOWN_AFTER_MS = 1000

# A cluster node stops answering for this long before the others count it
# failed and its replica takes over (Redis's own tests use 1 to 3 seconds).
NODE_TIMEOUT_MS = 1000
HASH_SLOTS = 16384
# Each primary's slots when the cluster forms, as redis-cli --cluster create
# splits them.
SLOT_RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]
# Every node also listens for the cluster bus on its port + 10000.
BUS_PORT_OFFSET = 10000


def caches_for(
    url: str, *, max_connections: int | None = None, protocol: int | None = None
) -> dict[str, Any]:
    """Return the test settings' CACHES pointed at another Redis URL."""
    default = settings.CACHES["default"]
    options = dict(default["OPTIONS"])
    pool = {"max_connections": max_connections, "protocol": protocol}
    options["CONNECTION_POOL_KWARGS"] = {
        **options["CONNECTION_POOL_KWARGS"],
        **{name: value for name, value in pool.items() if value is not None},
    }
    return {"default": {**default, "LOCATION": url, "OPTIONS": options}}


class Topology(Protocol):
    name: str

    @property
    def replicas(self) -> list[RedisProcess]:
        """
        Return the servers that replicate a primary now.

        On a cluster, every shard's: a key is on one of them only, and a
        write can wait for one replica at most.
        """

    @property
    def servers(self) -> list[RedisProcess]:
        """Return every data server: primaries and replicas, not sentinels."""

    @property
    def url(self) -> str:
        """Return the REDIS_URL that points the site here."""

    def caches(self, *, db: int = 0, max_connections: int | None = None) -> Any:
        """Return the site's CACHES setting pointed at this topology."""

    def environment(self) -> dict[str, str]:
        """Return what the site's processes need besides REDIS_URL."""

    def client(self) -> redis.Redis | RedisCluster:
        """Return a plain client of the current primary (or of the cluster)."""


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll condition until it holds; a Redis error counts as not yet."""
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


class Single:
    name = "single"

    def __init__(self, server: RedisProcess) -> None:
        self.server = server
        self.replicas: list[RedisProcess] = []

    @property
    def servers(self) -> list[RedisProcess]:
        return [self.server]

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
        self.primary = RedisProcess(
            directory / "primary",
            binary=binary,
            appendonly=appendonly,
            appendfsync="everysec",
        )
        self.replicas = [
            RedisProcess(
                directory / f"replica{i}",
                binary=binary,
                extra_args=["--replicaof", "127.0.0.1", str(self.primary.port)],
                appendonly=appendonly,
                appendfsync="everysec",
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

        def watching() -> bool:
            for sentinel in self.sentinels:
                master = sentinel.client().sentinel_master(SERVICE)
                assert isinstance(master, dict)
                if (
                    int(master["num-slaves"]) != 2
                    or int(master["num-other-sentinels"]) != 2
                ):
                    return False
            return True

        self._wait(watching, "the sentinels to see the replicas and each other")

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers]:
            process.stop()

    def current_primary(self) -> RedisProcess:
        """Return the server that the sentinels name as primary now."""
        address = self.sentinels[0].client().sentinel_get_master_addr_by_name(SERVICE)
        assert isinstance(address, tuple)
        _, port = address
        return next(s for s in self.servers if s.port == int(port))

    def wait_for_replicas(self, primary: RedisProcess) -> None:
        """
        Wait until every other server replicates primary, in sync.

        A server that still names another primary after NUDGE_AFTER seconds
        (a restarted old primary that the sentinels have not converted yet:
        they notice it by their INFO every 10 s, then wait 8 s, and under a
        full test run that once took more than 90 s) is pointed at primary,
        as the sentinels would point it.
        """
        started = time.monotonic()

        def state(server: RedisProcess) -> dict[str, object]:
            return server.client().info("replication")

        def in_sync() -> bool:
            nudge = time.monotonic() - started > NUDGE_AFTER
            synced = True
            for server in self.servers:
                if server is primary or server.process is None:
                    continue
                info = state(server)
                if info.get("master_port") != primary.port and nudge:
                    server.client().replicaof("127.0.0.1", primary.port)
                synced = synced and (
                    info.get("master_port") == primary.port
                    and info.get("master_link_status") == "up"
                )
            return synced

        try:
            self._wait(in_sync, "the replicas to sync", timeout=90)
        except RuntimeError as exc:
            seen = {}
            for server in self.servers:
                try:
                    seen[server.port] = state(server)
                except redis.RedisError as error:
                    seen[server.port] = {"error": repr(error)}
            raise RuntimeError(f"{exc} Primary {primary.port}; {seen}") from exc

    @staticmethod
    def _wait(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        wait_until(condition, what, timeout)

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


def cluster_port(taken: set[int]) -> int:
    """Return a free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port(below=65536 - BUS_PORT_OFFSET)
        if port in taken or port + BUS_PORT_OFFSET in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + BUS_PORT_OFFSET))
            except OSError:
                continue
        taken.update((port, port + BUS_PORT_OFFSET))
        return port


def cluster_args(data_dir: Path) -> list[str]:
    """Return the arguments that make a server a node of a test cluster."""
    return [
        "--cluster-enabled", "yes",
        "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
        "--cluster-config-file", str(data_dir / "nodes.conf"),
        # Replicas stay where ClusterSet.start() puts them, so that each
        # primary keeps its own and tests can tell which.
        "--cluster-allow-replica-migration", "no",
        # A replica's first sync (and a rejoining node's) starts at once, not
        # after the default 5 s wait for more replicas to share it.
        "--repl-diskless-sync-delay", "0",
        # The other primaries keep serving their slots while one fails over,
        # as the README tells operators to configure it.
        "--cluster-require-full-coverage", "no",
    ]  # fmt: skip


@dataclass(frozen=True)
class NodeView:
    """One line of CLUSTER NODES: a node as one node of the cluster sees it."""

    id: str
    port: int
    flags: frozenset[str]
    primary_id: str | None
    slots: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, line: str) -> NodeView:
        fields = line.split()
        node_id, address, flags, primary_id = fields[:4]
        # ip:port@bus-port[,hostname]; a node still in handshake has no port.
        port = int(address.split(",")[0].split("@")[0].rpartition(":")[2] or 0)
        ranges = []
        for field in fields[8:]:
            if field.startswith("["):  # a slot being imported or migrated
                continue
            first, _, last = field.partition("-")
            ranges.append((int(first), int(last or first)))
        return cls(
            id=node_id,
            port=port,
            flags=frozenset(flags.split(",")),
            primary_id=None if primary_id == "-" else primary_id,
            slots=tuple(ranges),
        )

    @property
    def is_primary(self) -> bool:
        return "master" in self.flags

    @property
    def healthy(self) -> bool:
        """Return False if the node is failed, suspected or not yet met."""
        return not self.flags & {"fail", "fail?", "handshake", "noaddr"}

    def serves(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.slots)


class ClusterSet:
    """
    A Redis Cluster on loopback: three primaries, each with one replica.

    Formed from Python as redis-cli --cluster create would: slots, then
    MEET, then REPLICATE. Roles change: after a failover, ask primaries,
    replicas, node_for_key() and replica_of() rather than remembering.
    """

    name = "cluster"

    def __init__(
        self, directory: Path, *, binary: str | None = None, appendonly: bool = False
    ) -> None:
        """appendonly: the servers keep an AOF, fsynced every second."""
        self.directory = directory
        taken: set[int] = set()
        self.servers = [
            RedisProcess(
                directory / f"node{i}",
                binary=binary,
                port=cluster_port(taken),
                appendonly=appendonly,
                appendfsync="everysec",
                extra_args=cluster_args(directory / f"node{i}"),
            )
            for i in range(1, 7)
        ]
        self._by_port = {server.port: server for server in self.servers}
        self._client: RedisCluster | None = None
        # Seconds that start() took to form the cluster, once it has.
        self.formed_in: float | None = None

    def start(self) -> None:
        started = time.monotonic()
        try:
            self._form()
        except BaseException:
            self.stop()
            raise
        self.formed_in = time.monotonic() - started

    def _form(self) -> None:
        for server in self.servers:
            server.start()
        primaries, replicas = self.servers[:3], self.servers[3:]
        # Distinct epochs from the start, as redis-cli gives them, spare the
        # nodes a round of resolving equal ones.
        for epoch, server in enumerate(self.servers, start=1):
            self._command(server, "SET-CONFIG-EPOCH", epoch)
        for server, (first, last) in zip(primaries, SLOT_RANGES, strict=True):
            self._command(server, "ADDSLOTSRANGE", first, last)
        for server in self.servers[1:]:
            self._command(self.servers[0], "MEET", "127.0.0.1", server.port)
        wait_until(
            lambda: all(
                len(view) == len(self.servers) and all(n.healthy for n in view)
                for view in map(self._view, self.servers)
            ),
            "every cluster node to know the other five",
        )
        for replica, primary in zip(replicas, primaries, strict=True):
            self._command(replica, "REPLICATE", self._node_id(primary))
        self._wait_until_settled("the cluster to form")

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        for server in self.servers:
            server.stop()

    @property
    def primaries(self) -> list[RedisProcess]:
        """Return the servers that serve slots now, the lowest slots' first."""
        view = self._view(self._live()[0])
        serving = sorted(
            (node for node in view if node.is_primary and node.slots),
            key=lambda node: node.slots[0],
        )
        return [self._by_port[node.port] for node in serving]

    @property
    def replicas(self) -> list[RedisProcess]:
        """Return the running servers that replicate a primary now."""
        view = self._view(self._live()[0])
        return [
            self._by_port[node.port]
            for node in view
            if not node.is_primary
            and node.healthy
            and self._by_port[node.port].process is not None
        ]

    def node_for_key(self, key: str) -> RedisProcess:
        """Return the primary that serves key's slot now."""
        return self._owner(key_slot(key.encode()))

    def replica_of(self, primary: RedisProcess) -> RedisProcess:
        """Return the running server that replicates primary now."""
        primary_id = self._node_id(primary)
        for node in self._view(self._live()[0]):
            server = self._by_port[node.port]
            if node.primary_id == primary_id and server.process is not None:
                return server
        raise LookupError(f"No replica of the primary on port {primary.port}.")

    def wait_for_failover(self, killed: RedisProcess, timeout: float = 30) -> float:
        """
        Wait until a replica serves the slots of killed; return the seconds.

        Call it right after the kill: the seconds are from the call. Done
        when every live node says cluster_state:ok and agrees on a slot map
        in which only live primaries serve slots, every one of them.
        """
        assert killed.process is None, "Kill or stop the server first."
        started = time.monotonic()
        self._wait_until_settled(f"a replica to take over from {killed.port}", timeout)
        return time.monotonic() - started

    def restart(self, server: RedisProcess) -> None:
        """
        Start a stopped node again and wait until the cluster is whole.

        A primary whose slots a replica took over rejoins as that replica's
        replica, and is in sync when this returns.
        """
        server.start()
        self._wait_until_settled(f"the node on {server.port} to rejoin")

    def migrate_slot(
        self, slot: int, target: RedisProcess, *, batch: int = 10, pause: float = 0.0
    ) -> None:
        """
        Move slot and its keys to the primary target, as an operator would.

        pause: seconds to sleep before each batch of keys (and before
        finishing), while the slot is half moved: the source still serves
        the keys it holds and answers ASK for the others.
        """
        source = self._owner(slot)
        if source is target:
            return
        assert target in self.primaries, f"The node on {target.port} is no primary."
        source_id, target_id = self._node_id(source), self._node_id(target)
        self._command(target, "SETSLOT", slot, "IMPORTING", source_id)
        self._command(source, "SETSLOT", slot, "MIGRATING", target_id)
        while True:
            if pause:
                time.sleep(pause)
            keys = self._command(source, "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            source.client().migrate("127.0.0.1", target.port, keys, 0, 5000)
        # The target first: told first, the source would send clients with
        # MOVED to a target that, still importing, sends them back.
        others = [p for p in self.primaries if p is not source and p is not target]
        for server in [target, source, *others]:
            self._command(server, "SETSLOT", slot, "NODE", target_id)
        self._wait_until_settled(
            f"every node to see slot {slot} on {target.port}",
            also=lambda: all(
                self._owner(slot, seen_by=server) is target for server in self._live()
            ),
        )

    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", server.port) for server in self.servers]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.servers[0].port}/0"

    def caches(self, *, db: int = 0, max_connections: int | None = None) -> Any:
        # db is ignored: a cluster has database 0 only (Redis 7 has no other;
        # Valkey 9 has, but the site does not use them), so tests that pick
        # another database to be apart share database 0 here.
        caches = caches_for(self.url, max_connections=max_connections)
        return {"default": in_cluster(caches["default"], self.addresses())}

    def environment(self) -> dict[str, str]:
        return {
            "REDIS_CLUSTER_NODES": ",".join(f"{h}:{p}" for h, p in self.addresses())
        }

    def client(self) -> RedisCluster:
        """Return the test's own cluster client (one, closed with the cluster)."""
        if self._client is None:
            self._client = RedisCluster(
                startup_nodes=[
                    ClusterNode(h, p)  # type: ignore[no-untyped-call]
                    for h, p in self.addresses()
                ],
                socket_timeout=5,
            )
        return self._client

    def _live(self) -> list[RedisProcess]:
        return [server for server in self.servers if server.process is not None]

    @staticmethod
    def _command(server: RedisProcess, subcommand: str, *args: object) -> Any:
        # "CLUSTER", "NODES" rather than "CLUSTER NODES" (or .cluster("NODES")):
        # redis-py parses the latter's replies into dicts that drop fields.
        return server.client().execute_command(  # type: ignore[no-untyped-call]
            "CLUSTER", subcommand, *args
        )

    def _view(self, server: RedisProcess) -> list[NodeView]:
        """Return the cluster as server sees it."""
        text = self._command(server, "NODES").decode()
        return [NodeView.parse(line) for line in text.splitlines()]

    def _node_id(self, server: RedisProcess) -> str:
        for node in self._view(self._live()[0]):
            if node.port == server.port:
                return node.id
        raise LookupError(f"No cluster node on port {server.port}.")

    def _owner(self, slot: int, *, seen_by: RedisProcess | None = None) -> RedisProcess:
        for node in self._view(seen_by or self._live()[0]):
            if node.serves(slot):
                return self._by_port[node.port]
        raise LookupError(f"No node serves slot {slot}.")

    def _settled(self) -> bool:
        """
        Return True if every live node sees the same whole, healthy cluster.

        Each says cluster_state:ok and knows every node; all agree on which
        node serves each slot, always a live primary that none suspects;
        none suspects any live node; and every live replica is in sync.
        """
        live = self._live()
        live_ports = {server.port for server in live}
        slot_maps = set()
        for server in live:
            if b"cluster_state:ok" not in self._command(server, "INFO").split():
                return False
            view = self._view(server)
            if len(view) != len(self.servers) or any(
                not node.healthy for node in view if node.port in live_ports
            ):
                return False
            serving = [node for node in view if node.slots]
            if any(node.port not in live_ports for node in serving):
                return False
            slot_map = sorted((*r, node.port) for node in serving for r in node.slots)
            if sum(last - first + 1 for first, last, _ in slot_map) != HASH_SLOTS:
                return False
            slot_maps.add(tuple(slot_map))
        if len(slot_maps) != 1:
            return False
        for server in live:
            info = server.client().info("replication")
            if info["role"] != "master" and info.get("master_link_status") != "up":
                return False
        return True

    def _wait_until_settled(
        self,
        what: str,
        timeout: float = 30,
        also: Callable[[], bool] = lambda: True,
    ) -> None:
        wait_until(lambda: self._settled() and also(), what, timeout)
        if self._client is not None:
            # Otherwise the client finds the change by its first MOVED or
            # refused connection, in a test's request.
            self._client.nodes_manager.initialize()
