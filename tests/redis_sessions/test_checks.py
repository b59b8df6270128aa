"""System checks of the engine's settings, by their IDs."""

from __future__ import annotations

from sessionsite.redis_sessions.checks import check_settings


def ids(settings) -> list[str]:
    return [message.id for message in check_settings()]


def test_the_site_settings_pass(settings):
    assert ids(settings) == []


def test_another_session_engine_is_not_checked(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    settings.CACHES = {}
    assert ids(settings) == []


def test_a_missing_cache_alias_is_e001(settings):
    settings.SESSION_CACHE_ALIAS = "sessions"
    assert ids(settings) == ["redis_sessions.E001"]


def test_a_cache_that_is_not_django_redis_is_e002(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    assert ids(settings) == ["redis_sessions.E002"]


def test_a_cache_without_location_is_e003(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": ""}
    }
    assert ids(settings) == ["redis_sessions.E003"]


def test_djangos_own_session_middleware_is_e004(settings):
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        *[m for m in settings.MIDDLEWARE if "redis_sessions" not in m],
    ]
    assert ids(settings) == ["redis_sessions.E004"]


def test_an_empty_key_prefix_is_e005(settings):
    settings.SESSION_REDIS_KEY_PREFIX = ""
    assert ids(settings) == ["redis_sessions.E005"]


def test_missing_or_long_timeouts_are_w001(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "KEY_PREFIX": "site",
            "OPTIONS": {"SOCKET_TIMEOUT": 5},
        }
    }
    assert ids(settings) == ["redis_sessions.W001", "redis_sessions.W001"]


def test_a_serializer_other_than_json_is_e006(settings):
    settings.SESSION_SERIALIZER = "myapp.serializers.PickleSerializer"
    assert ids(settings) == ["redis_sessions.E006"]


def test_a_custom_redis_client_class_is_e007(settings):
    default = settings.CACHES["default"]
    options = {**default["OPTIONS"], "REDIS_CLIENT_CLASS": "myapp.TracingRedis"}
    settings.CACHES = {"default": {**default, "OPTIONS": options}}
    assert ids(settings) == ["redis_sessions.E007"]


def test_django_redis_sentinel_client_is_e007(settings):
    default = settings.CACHES["default"]
    client = "django_redis.client.SentinelClient"
    options = {**default["OPTIONS"], "CLIENT_CLASS": client}
    settings.CACHES = {"default": {**default, "OPTIONS": options}}
    assert ids(settings) == ["redis_sessions.E007"]


def test_a_cache_without_key_prefix_is_w002(settings):
    default = settings.CACHES["default"]
    settings.CACHES = {"default": {**default, "KEY_PREFIX": ""}}
    assert ids(settings) == ["redis_sessions.W002"]
