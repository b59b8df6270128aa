"""System checks for the settings that the Redis session engine reads."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .keys import key_prefix

ENGINE = "sessionsite.redis_sessions.engine"
MIDDLEWARE = "sessionsite.redis_sessions.middleware.SessionMiddleware"
DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
REDIS_BACKEND = "django_redis.cache.RedisCache"
JSON_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"
REDIS_CLIENT = "redis.client.Redis"
DJANGO_REDIS_CLIENT = "django_redis.client.DefaultClient"
MAX_TIMEOUT = 2.0


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
                id="redis_sessions.E001",
            )
        ]
    if config.get("BACKEND") != REDIS_BACKEND:
        return [
            Error(
                f"CACHES[{alias!r}] does not use django-redis.",
                hint=f"Set CACHES[{alias!r}]['BACKEND'] to {REDIS_BACKEND!r}.",
                id="redis_sessions.E002",
            )
        ]
    if not config.get("LOCATION"):
        return [
            Error(
                f"CACHES[{alias!r}] has no LOCATION.",
                hint="Set it to the Redis URL, e.g. redis://127.0.0.1:6379/0 "
                "(in this project: set REDIS_URL).",
                id="redis_sessions.E003",
            )
        ]
    options: dict[str, Any] = config.get("OPTIONS", {})
    messages: list[CheckMessage] = []
    for option, default in (
        ("REDIS_CLIENT_CLASS", REDIS_CLIENT),
        ("CLIENT_CLASS", DJANGO_REDIS_CLIENT),
        ("CONNECTION_FACTORY", None),
    ):
        if options.get(option, default) != default:
            messages.append(
                Error(
                    f"CACHES[{alias!r}]['OPTIONS'][{option!r}] is "
                    f"{options[option]!r}, which the session engine cannot use: "
                    "its async client is built from a plain redis-py pool.",
                    hint=f"Remove {option}, or give sessions a cache entry of "
                    "their own (SESSION_CACHE_ALIAS).",
                    id="redis_sessions.E007",
                )
            )
    if not config.get("KEY_PREFIX"):
        messages.append(
            Warning(
                f"CACHES[{alias!r}] has no KEY_PREFIX: another site on the same "
                "Redis database without one would share its sessions and users.",
                hint=f"Set CACHES[{alias!r}]['KEY_PREFIX'] to a name of this site.",
                id="redis_sessions.W002",
            )
        )
    for option in ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT"):
        value = options.get(option)
        if not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT:
            messages.append(
                Warning(
                    f"CACHES[{alias!r}]['OPTIONS'][{option!r}] is {value!r}: a "
                    "hung Redis would hang every request that uses a session.",
                    hint=f"Set it to a number of seconds above 0 and at most "
                    f"{MAX_TIMEOUT:g}, such as 0.5.",
                    id="redis_sessions.W001",
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
            id="redis_sessions.E004",
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
            id="redis_sessions.E005",
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
            id="redis_sessions.E006",
        )
    ]
