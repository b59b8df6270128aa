"""System checks for the settings that the Redis session engine reads."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string
from redis.connection import FALSE_STRINGS
from redis.crc import key_slot
from redis.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

from . import keys
from .keys import CLUSTER_FACTORY, key_prefix

ENGINE = "redis_hash_sessions.engine"
MIDDLEWARE = "redis_hash_sessions.middleware.SessionMiddleware"
DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
REDIS_BACKEND = "django_redis.cache.RedisCache"
JSON_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"
REDIS_CLIENT = "redis.client.Redis"
DJANGO_REDIS_CLIENT = "django_redis.client.DefaultClient"
SENTINEL_FACTORY = "redis_hash_sessions.sentinel.SentinelConnectionFactory"
SENTINEL_POOL = "redis.sentinel.SentinelConnectionPool"
WAIT_FOR = ("logins", "writes")
MAX_TIMEOUT = 2.0
MIN_WAIT_TIMEOUT = 0.001


@register(Tags.caches, Tags.compatibility)
def check_settings(**kwargs: Any) -> list[CheckMessage]:
    """Check the cache entry, middleware and key prefix that sessions use."""
    if settings.SESSION_ENGINE != ENGINE:
        return []
    return [
        *_check_cache(),
        *_check_middleware(),
        *_check_prefix(),
        *_check_serializer(),
        *_check_wait(),
    ]


def _check_cache() -> list[CheckMessage]:
    alias = settings.SESSION_CACHE_ALIAS
    config = settings.CACHES.get(alias)
    if config is None:
        return [
            Error(
                f"SESSION_CACHE_ALIAS is {alias!r}, which is not in CACHES.",
                hint=f"Add a django-redis entry CACHES[{alias!r}] or point "
                "SESSION_CACHE_ALIAS at one.",
                id="redis_hash_sessions.E001",
            )
        ]
    if config.get("BACKEND") != REDIS_BACKEND:
        return [
            Error(
                f"CACHES[{alias!r}] does not use django-redis.",
                hint=f"Set CACHES[{alias!r}]['BACKEND'] to {REDIS_BACKEND!r}.",
                id="redis_hash_sessions.E002",
            )
        ]
    if not config.get("LOCATION"):
        return [
            Error(
                f"CACHES[{alias!r}] has no LOCATION.",
                hint="Set it to the Redis URL, e.g. redis://127.0.0.1:6379/0 "
                "(in this project: set REDIS_URL).",
                id="redis_hash_sessions.E003",
            )
        ]
    options: dict[str, Any] = config.get("OPTIONS", {})
    messages: list[CheckMessage] = []
    for option, allowed in (
        ("REDIS_CLIENT_CLASS", (REDIS_CLIENT,)),
        # django-redis's SentinelClient reads from replicas, which may not
        # have a session written a moment ago; a Sentinel connection factory
        # alone keeps every call on the primary, and django-redis's own can
        # lose sentinels during a failover (see sentinel.py).
        ("CLIENT_CLASS", (DJANGO_REDIS_CLIENT,)),
        ("CONNECTION_FACTORY", (None, SENTINEL_FACTORY, CLUSTER_FACTORY)),
    ):
        if options.get(option, allowed[0]) not in allowed:
            messages.append(
                Error(
                    f"CACHES[{alias!r}]['OPTIONS'][{option!r}] is "
                    f"{options[option]!r}, which the session engine cannot use: "
                    "its async client is built from a plain redis-py, "
                    "Sentinel or Cluster client, and it reads only from "
                    "primaries.",
                    hint=f"Remove {option} (behind Sentinel, set only "
                    f"CONNECTION_FACTORY to {SENTINEL_FACTORY!r}), or give "
                    "sessions a cache entry of their own (SESSION_CACHE_ALIAS).",
                    id="redis_hash_sessions.E007",
                )
            )
    if _behind_sentinels(options):
        messages += _check_sentinel(alias, config, options)
    if (
        options.get("CONNECTION_FACTORY") == CLUSTER_FACTORY
        or "CLUSTER_NODES" in options
    ):
        messages += _check_cluster(alias, config, options)
    if not config.get("KEY_PREFIX"):
        messages.append(
            Warning(
                f"CACHES[{alias!r}] has no KEY_PREFIX: another site on the same "
                "Redis database without one would share its sessions and users.",
                hint=f"Set CACHES[{alias!r}]['KEY_PREFIX'] to a name of this site.",
                id="redis_hash_sessions.W002",
            )
        )
    for option in ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT"):
        messages += _timeout_warning(
            options.get(option),
            f"CACHES[{alias!r}]['OPTIONS'][{option!r}]",
            "a hung Redis would hang every request that uses a session",
        )
    return messages


def _is_sentinel_pool(pool_class: object) -> bool:
    try:
        return issubclass(import_string(str(pool_class)), SentinelConnectionPool)
    except ImportError:
        return False


def _behind_sentinels(options: dict[str, Any]) -> bool:
    """Return whether the entry means to find its primary through sentinels."""
    return (
        options.get("CONNECTION_FACTORY") == SENTINEL_FACTORY
        or "SENTINELS" in options
        or _is_sentinel_pool(options.get("CONNECTION_POOL_CLASS", ""))
    )


def _check_cluster(
    alias: str, config: dict[str, Any], options: dict[str, Any]
) -> list[CheckMessage]:
    nodes = options.get("CLUSTER_NODES")
    problem, hint = None, ""
    if options.get("CONNECTION_FACTORY") != CLUSTER_FACTORY:
        problem = "its CONNECTION_FACTORY is not the engine's Cluster factory."
        hint = f"Set OPTIONS['CONNECTION_FACTORY'] to {CLUSTER_FACTORY!r}."
    elif (
        not isinstance(nodes, (list, tuple))
        or not nodes
        or not all(_is_address(node) for node in nodes)
    ):
        problem = f"OPTIONS['CLUSTER_NODES'] is {nodes!r}."
        hint = (
            "List some of the cluster's nodes as (host, port) pairs (in this "
            "project: set REDIS_CLUSTER_NODES=10.0.0.1:6379,10.0.0.2:6379)."
        )
    elif "CONNECTION_POOL_CLASS" in options:
        problem = (
            "it sets a CONNECTION_POOL_CLASS: the engine's cluster client uses "
            "redis-py's own pool on each node."
        )
        hint = "Remove OPTIONS['CONNECTION_POOL_CLASS']; keep CONNECTION_POOL_KWARGS."
    elif not _cluster_location(config["LOCATION"]):
        problem = (
            "its LOCATION is not one redis:// or rediss:// URL of database 0 "
            "(a cluster has no other)."
        )
        hint = "Set LOCATION to redis://[:password@]host:port/0."
    elif not _slots_shared():
        problem = (
            "its key names put a session and its user's index in different "
            "hash slots: a prefix or KEY_FUNCTION with braces ({}) in it "
            "overrides the engine's hash tags."
        )
        hint = "Remove the braces from KEY_PREFIX and SESSION_REDIS_KEY_PREFIX."
    if problem is None:
        return []
    return [
        Error(
            f"CACHES[{alias!r}] means to use Redis Cluster, but {problem}",
            hint=hint,
            id="redis_hash_sessions.E010",
        )
    ]


def _cluster_location(location: object) -> bool:
    if not isinstance(location, str):
        return False
    url = urlparse(location)
    databases = {url.path.strip("/") or "0", *parse_qs(url.query).get("db", ["0"])}
    return url.scheme in ("redis", "rediss") and databases == {"0"}


def _slots_shared() -> bool:
    """Return whether a user's sessions share their index's slot, and only theirs."""
    names = keys.names()
    digest = "A" * 43

    def slot(name: str) -> int:
        return key_slot(name.encode())

    mine = keys.user_tag("1") + digest
    one_slot = {
        slot(name)
        for name in (
            names.index("1"),
            names.session(mine),
            names.moved(mine),
            names.ended(mine),
        )
    }
    return len(one_slot) == 1 and slot(names.session("aaa" + digest)) != slot(
        names.session("zzz" + digest)
    )


def _sentinel_error(alias: str, problem: str, hint: str) -> Error:
    return Error(
        f"CACHES[{alias!r}] means to find Redis through sentinels, but {problem}",
        hint=hint,
        id="redis_hash_sessions.E008",
    )


def _check_sentinel(
    alias: str, config: dict[str, Any], options: dict[str, Any]
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if options.get("CONNECTION_FACTORY") != SENTINEL_FACTORY:
        messages.append(
            _sentinel_error(
                alias,
                "its CONNECTION_FACTORY is not the engine's Sentinel factory: "
                "it would connect to LOCATION's host itself.",
                f"Set OPTIONS['CONNECTION_FACTORY'] to {SENTINEL_FACTORY!r}.",
            )
        )
    sentinels = options.get("SENTINELS")
    if (
        not isinstance(sentinels, (list, tuple))
        or not sentinels
        or not all(_is_address(address) for address in sentinels)
    ):
        messages.append(
            _sentinel_error(
                alias,
                f"OPTIONS['SENTINELS'] is {sentinels!r}.",
                "List the sentinels as (host, port) pairs, such as "
                "[('10.0.0.1', 26379), ('10.0.0.2', 26379)] (in this "
                "project: set REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379).",
            )
        )
    pool_class = options.get("CONNECTION_POOL_CLASS", SENTINEL_POOL)
    if not _is_sentinel_pool(pool_class):
        messages.append(
            _sentinel_error(
                alias,
                f"OPTIONS['CONNECTION_POOL_CLASS'] is {pool_class!r}, which "
                "cannot ask the sentinels for the primary.",
                f"Set it to {SENTINEL_POOL!r}, or remove it.",
            )
        )
    location = config.get("LOCATION")
    if problem := _sentinel_location_problem(location):
        messages.append(
            _sentinel_error(
                alias,
                f"its LOCATION is {location!r}: {problem}",
                "Give one redis:// or rediss:// URL whose host is the name the "
                "sentinels watch the primary under, in lower case, such as "
                "redis://:password@mymaster/0, without is_master.",
            )
        )
    pool_kwargs = options.get("CONNECTION_POOL_KWARGS", {})
    connection_class = pool_kwargs.get("connection_class")
    if (
        isinstance(location, str)
        and location.startswith("rediss://")
        and not (
            isinstance(connection_class, type)
            and issubclass(connection_class, SentinelManagedSSLConnection)
        )
    ):
        messages.append(
            _sentinel_error(
                alias,
                "its rediss:// LOCATION would make redis-py connect with TLS "
                "without asking the sentinels.",
                "Set OPTIONS['CONNECTION_POOL_KWARGS']['connection_class'] to "
                "redis.sentinel.SentinelManagedSSLConnection "
                "(redis_hash_sessions.caches.behind_sentinels() does).",
            )
        )
    # redis-py gives the sentinels the connection's socket options only when
    # SENTINEL_KWARGS is absent; present, it replaces them.
    sentinel_kwargs = options.get("SENTINEL_KWARGS")
    for option in ("socket_connect_timeout", "socket_timeout"):
        if sentinel_kwargs is None:
            value = options.get(option.upper())
        else:
            value = sentinel_kwargs.get(option)
        messages += _timeout_warning(
            value,
            f"CACHES[{alias!r}]['OPTIONS']['SENTINEL_KWARGS'][{option!r}]",
            "a hung sentinel would hang every new Redis connection",
        )
    return messages


def _timeout_warning(value: object, name: str, risk: str) -> list[CheckMessage]:
    if isinstance(value, (int, float)) and 0 < value <= MAX_TIMEOUT:
        return []
    return [
        Warning(
            f"{name} is {value!r}: {risk}.",
            hint=f"Set it to a number of seconds above 0 and at most "
            f"{MAX_TIMEOUT:g}, such as 0.5.",
            id="redis_hash_sessions.W001",
        )
    ]


def _sentinel_location_problem(location: object) -> str | None:
    """Say why location cannot name one primary behind sentinels, if it cannot."""
    if not isinstance(location, str):
        return "sessions must be read and written on one primary."
    url = urlparse(location)
    if url.scheme not in {"redis", "rediss"} or not url.netloc.rpartition("@")[2]:
        return "the sentinels need the primary's name as the URL's host."
    host = url.netloc.rpartition("@")[2].partition(":")[0]
    if host != host.lower():
        # URLs' host names are read in lower case; sentinels' names are not.
        return "the sentinels would be asked for its host in lower case."
    for value in parse_qs(url.query).get("is_master", []):
        if value.upper() in FALSE_STRINGS:
            return "is_master would send every session to a replica."
    return None


def _is_address(address: object) -> bool:
    return (
        isinstance(address, (list, tuple))
        and len(address) == 2
        and isinstance(address[0], str)
        and bool(address[0])
        and isinstance(address[1], int)
        and 0 < address[1] < 65536
    )


def _check_wait() -> list[CheckMessage]:
    replicas = getattr(settings, "SESSION_REDIS_WAIT_REPLICAS", 0)
    wait_for = getattr(settings, "SESSION_REDIS_WAIT_FOR", "logins")
    timeout = getattr(settings, "SESSION_REDIS_WAIT_TIMEOUT", 0.2)
    messages: list[CheckMessage] = []
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        messages.append(
            Error(
                f"SESSION_REDIS_WAIT_REPLICAS is {replicas!r}.",
                hint="Set it to how many replicas must confirm a write: a "
                "whole number, 0 (the default) for none.",
                id="redis_hash_sessions.E009",
            )
        )
    if wait_for not in WAIT_FOR:
        messages.append(
            Error(
                f"SESSION_REDIS_WAIT_FOR is {wait_for!r}.",
                hint='Set it to "logins" (writes that sign a user in or out) '
                'or "writes" (every write).',
                id="redis_hash_sessions.E009",
            )
        )
    if (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not MIN_WAIT_TIMEOUT <= timeout < math.inf
    ):
        messages.append(
            Error(
                f"SESSION_REDIS_WAIT_TIMEOUT is {timeout!r}.",
                hint="Set it to the seconds a write may wait for replicas, "
                "at least 0.001 (WAIT counts milliseconds, and 0 waits for "
                "ever), such as 0.2.",
                id="redis_hash_sessions.E009",
            )
        )
        return messages
    socket_timeout = (
        settings.CACHES.get(settings.SESSION_CACHE_ALIAS, {})
        .get("OPTIONS", {})
        .get("SOCKET_TIMEOUT")
    )
    if (
        replicas
        and isinstance(socket_timeout, (int, float))
        and timeout >= socket_timeout
    ):
        messages.append(
            Warning(
                f"SESSION_REDIS_WAIT_TIMEOUT ({timeout:g} s) is not shorter than "
                f"the socket timeout ({socket_timeout:g} s): a write waiting for "
                "replicas would time out as if Redis were down.",
                hint="Make SESSION_REDIS_WAIT_TIMEOUT shorter than "
                "OPTIONS['SOCKET_TIMEOUT'], such as 0.2 against 0.5.",
                id="redis_hash_sessions.W003",
            )
        )
    return messages


def _check_middleware() -> list[CheckMessage]:
    if MIDDLEWARE in settings.MIDDLEWARE:
        return []
    return [
        Error(
            "The Redis session engine needs its own session middleware.",
            hint=f"In MIDDLEWARE, replace {DJANGO_MIDDLEWARE!r} with {MIDDLEWARE!r}.",
            id="redis_hash_sessions.E004",
        )
    ]


def _check_prefix() -> list[CheckMessage]:
    prefix = key_prefix()
    if isinstance(prefix, str) and prefix:
        return []
    return [
        Error(
            f"SESSION_REDIS_KEY_PREFIX is {prefix!r}.",
            hint="Set it to a non-empty string, such as 'session'.",
            id="redis_hash_sessions.E005",
        )
    ]


def _check_serializer() -> list[CheckMessage]:
    if settings.SESSION_SERIALIZER == JSON_SERIALIZER:
        return []
    return [
        Error(
            f"SESSION_SERIALIZER is {settings.SESSION_SERIALIZER!r}; the Redis "
            "session engine stores each value as JSON.",
            hint="Its scripts read values in Redis (the user's id, counters), "
            "and pickle in Redis would let whoever can write to Redis run code "
            f"in the web workers. Set SESSION_SERIALIZER to {JSON_SERIALIZER!r}.",
            id="redis_hash_sessions.E006",
        )
    ]
