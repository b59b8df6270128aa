"""
django-redis cache entries for Redis Sentinel and Redis Cluster.

Each function takes an entry for one Redis (its LOCATION, timeouts and pool
size) and returns the entry that reaches the same data through sentinels or
a cluster, with the engine's connection factory: see the README's "Redis
Sentinel" and "Redis Cluster".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.sentinel import SentinelManagedSSLConnection


def behind_sentinels(
    entry: dict[str, Any], sentinels: list[tuple[str, int]], password: str | None
) -> dict[str, Any]:
    """
    Return a django-redis cache entry that finds its primary through sentinels.

    The entry's LOCATION host is then the name the sentinels know the
    primary by. Every read and write goes to the primary, never to a
    replica. redis-py's Sentinel pool does not block: a process past its
    max_connections answers 503 at once instead of waiting for one.
    """
    options = dict(entry["OPTIONS"])
    options["CONNECTION_FACTORY"] = (
        "redis_hash_sessions.sentinel.SentinelConnectionFactory"
    )
    options["CONNECTION_POOL_CLASS"] = "redis.sentinel.SentinelConnectionPool"
    options["CONNECTION_POOL_KWARGS"] = {
        "max_connections": options["CONNECTION_POOL_KWARGS"]["max_connections"]
    }
    if entry["LOCATION"].startswith("rediss://"):
        # redis-py's rediss:// alone would connect with TLS, but straight to
        # LOCATION's host, without asking the sentinels.
        options["CONNECTION_POOL_KWARGS"]["connection_class"] = (
            SentinelManagedSSLConnection
        )
    options["SENTINELS"] = sentinels
    options["SENTINEL_KWARGS"] = {
        "socket_connect_timeout": options["SOCKET_CONNECT_TIMEOUT"],
        "socket_timeout": options["SOCKET_TIMEOUT"],
        "password": password,
    }
    return {**entry, "OPTIONS": options}


def in_cluster(entry: dict[str, Any], nodes: list[tuple[str, int]]) -> dict[str, Any]:
    """
    Return a django-redis cache entry that talks to a Redis Cluster.

    nodes are the cluster's startup nodes (any of them answering is enough
    to find the rest). The entry's LOCATION keeps its scheme, user and
    password, which every node then uses; its host is replaced by the first
    node's. Each process keeps up to max_connections to each node, and
    answers 503 at once past them (the cluster client's pool does not block).
    """
    options = dict(entry["OPTIONS"])
    options.pop("CONNECTION_POOL_CLASS", None)
    options["CONNECTION_POOL_KWARGS"] = {
        "max_connections": options["CONNECTION_POOL_KWARGS"]["max_connections"]
    }
    options["CONNECTION_FACTORY"] = (
        "redis_hash_sessions.cluster.ClusterConnectionFactory"
    )
    options["CLUSTER_NODES"] = nodes
    location = urlsplit(entry["LOCATION"] or "redis://")
    credentials, _, _ = location.netloc.rpartition("@")
    host, port = nodes[0]
    netloc = f"{credentials}@" if credentials else ""
    netloc += f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        **entry,
        "LOCATION": urlunsplit((location.scheme, netloc, "/0", "", "")),
        "OPTIONS": options,
    }
