"""
Redis Cluster through django-redis, which has no client for it.

``ClusterConnectionFactory`` (set by ``redis_hash_sessions.caches.in_cluster()`` as
the entry's ``CONNECTION_FACTORY``) makes django-redis's client a redis-py
``RedisCluster``: every command goes to the primary of its key's hash slot,
never to a replica, and ``MOVED``/``ASK`` redirections are followed. The
entry's ``OPTIONS["CLUSTER_NODES"]`` lists startup nodes besides LOCATION's.

A node that is down or hung fails the command at once (no retries), so that
a request answers 503 within its timeouts; the slot map is read again on
the next command, which finds the replica that a failover promoted.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

from django_redis.pool import ConnectionFactory
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry


def no_retries() -> Retry:
    """Return the retry policy of the engine's cluster clients: none."""
    return Retry(NoBackoff(), 0)


class ClusterConnectionFactory(ConnectionFactory):  # type: ignore[misc]
    """Build a RedisCluster, once per LOCATION, instead of a Redis."""

    # Process-wide, as django-redis keeps its pools: Django makes a cache
    # client per thread, and each would otherwise map the cluster anew.
    _clusters: ClassVar[dict[str, RedisCluster]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def connect(self, url: str) -> RedisCluster:
        # Per URL and options: a cluster has one database, so entries that
        # differ only in their options (a pool's size) differ in nothing else.
        key = f"{url} {sorted(self.options.items())!r}"
        with self._lock:  # one per process: threads ask at once at start-up
            if key not in self._clusters:
                self._clusters[key] = self._cluster(url)
            return self._clusters[key]

    def _cluster(self, url: str) -> RedisCluster:
        params = self.make_connection_params(url)
        names = ("username", "password", "socket_timeout", "socket_connect_timeout")
        options = {name: params[name] for name in names if name in params}
        nodes = [
            ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in self.options["CLUSTER_NODES"]
        ]
        return RedisCluster(
            url=url,
            startup_nodes=nodes,
            # Each node's pool: redis-py's plain one, with the entry's
            # max_connections (past it, a command fails at once). Not a
            # blocking pool: redis-py 8.1's cluster client disconnects a
            # node's idle connections while other threads take them from a
            # blocking pool's queue (tests/test_cluster_failover.py).
            **self.pool_cls_kwargs,
            **options,
            retry=no_retries(),
            # A MOVED reply moves its slot in the map, never more: redis-py
            # would remap the whole cluster at every fifth (and its asyncio
            # client would close every connection in use to do so).
            reinitialize_steps=0,
        )

    def disconnect(self, connection: Any) -> None:
        connection.close()


async def _disconnect_free_connections(self: AsyncClusterNode) -> None:
    """
    Disconnect a node's idle connections, out of other tasks' reach meanwhile.

    redis-py 8.1's own disconnects a snapshot of the free list while other
    tasks go on taking connections from it: a request then met its
    connection closed under it mid-handshake, a TypeError from asyncio's
    transport (a 500) where the node's failure was a ConnectionError (a
    503). Seen under load when a primary died (tests/test_cluster_failover.py).
    """
    free = list(self._free)
    self._free.clear()
    try:
        await asyncio.gather(
            *(connection.disconnect() for connection in free), return_exceptions=True
        )
    finally:
        self._free.extend(free)


AsyncClusterNode.disconnect_free_connections = _disconnect_free_connections  # type: ignore[method-assign]
