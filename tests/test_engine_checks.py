"""System checks of the engine's settings, by their IDs."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from redis.sentinel import SentinelManagedSSLConnection

from redis_hash_sessions import connection
from redis_hash_sessions.caches import behind_sentinels, in_cluster
from redis_hash_sessions.checks import SENTINEL_FACTORY, check_settings
from sessionsite.settings import env_addresses


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
    assert ids(settings) == ["redis_hash_sessions.E001"]


def test_a_cache_that_is_not_django_redis_is_e002(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    assert ids(settings) == ["redis_hash_sessions.E002"]


def test_a_cache_without_location_is_e003(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": ""}
    }
    assert ids(settings) == ["redis_hash_sessions.E003"]


def test_djangos_own_session_middleware_is_e004(settings):
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        *[m for m in settings.MIDDLEWARE if "redis_hash_sessions" not in m],
    ]
    assert ids(settings) == ["redis_hash_sessions.E004"]


def test_an_empty_key_prefix_is_e005(settings):
    settings.SESSION_REDIS_KEY_PREFIX = ""
    assert ids(settings) == ["redis_hash_sessions.E005"]


def test_missing_or_long_timeouts_are_w001(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "KEY_PREFIX": "site",
            "OPTIONS": {"SOCKET_TIMEOUT": 5},
        }
    }
    assert ids(settings) == ["redis_hash_sessions.W001", "redis_hash_sessions.W001"]


def test_a_serializer_other_than_json_is_e006(settings):
    settings.SESSION_SERIALIZER = "myapp.serializers.PickleSerializer"
    assert ids(settings) == ["redis_hash_sessions.E006"]


def test_a_custom_redis_client_class_is_e007(settings):
    default = settings.CACHES["default"]
    options = {**default["OPTIONS"], "REDIS_CLIENT_CLASS": "myapp.TracingRedis"}
    settings.CACHES = {"default": {**default, "OPTIONS": options}}
    assert ids(settings) == ["redis_hash_sessions.E007"]


def test_django_redis_sentinel_client_is_e007(settings):
    default = settings.CACHES["default"]
    client = "django_redis.client.SentinelClient"
    options = {**default["OPTIONS"], "CLIENT_CLASS": client}
    settings.CACHES = {"default": {**default, "OPTIONS": options}}
    assert ids(settings) == ["redis_hash_sessions.E007"]


def test_a_cache_without_key_prefix_is_w002(settings):
    default = settings.CACHES["default"]
    settings.CACHES = {"default": {**default, "KEY_PREFIX": ""}}
    assert ids(settings) == ["redis_hash_sessions.W002"]


def sentinel_options(settings, **options) -> None:
    default = settings.CACHES["default"]
    settings.CACHES = {
        "default": {
            **default,
            "OPTIONS": {
                **default["OPTIONS"],
                "CONNECTION_FACTORY": SENTINEL_FACTORY,
                "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
                "SENTINELS": [("127.0.0.1", 26379)],
                **options,
            },
        }
    }


def test_the_engines_sentinel_connection_factory_passes(settings):
    sentinel_options(settings)
    assert ids(settings) == []


def test_django_redis_own_sentinel_connection_factory_is_e007(settings):
    factory = "django_redis.pool.SentinelConnectionFactory"
    sentinel_options(settings, CONNECTION_FACTORY=factory)
    assert ids(settings) == ["redis_hash_sessions.E007", "redis_hash_sessions.E008"]


def test_sentinels_without_the_sentinel_factory_are_e008(settings):
    default = settings.CACHES["default"]
    options = {**default["OPTIONS"], "SENTINELS": [("127.0.0.1", 26379)]}
    options.pop("CONNECTION_FACTORY", None)
    settings.CACHES = {"default": {**default, "OPTIONS": options}}
    assert "redis_hash_sessions.E008" in ids(settings)


@pytest.mark.parametrize(
    "location",
    [
        "redis://sessions/0?is_master=0",
        "redis://sessions/0?is_master=false",
        "redis://sessions/0?is_master=No",
        "redis://sessions/0?is_master=%30",
        ["redis://sessions/0", "redis://sessions/1"],
        "redis://:pw@Sessions/0",
        "redis://:pw@/0",
        "unix:///run/redis.sock",
    ],
    ids=[
        "a replica",
        "false",
        "No",
        "encoded 0",
        "a list",
        "capitals",
        "no host",
        "a socket",
    ],
)
def test_a_sentinel_location_that_is_not_one_primary_is_e008(settings, location):
    sentinel_options(settings)
    settings.CACHES["default"]["LOCATION"] = location
    assert ids(settings) == ["redis_hash_sessions.E008"]


def test_tls_behind_sentinel_without_its_connection_class_is_e008(settings):
    sentinel_options(settings)
    settings.CACHES["default"]["LOCATION"] = "rediss://sessions/0"
    assert ids(settings) == ["redis_hash_sessions.E008"]


def test_behind_sentinels_keeps_tls_on_the_sentinel_managed_connection(settings):
    entry = {**settings.CACHES["default"], "LOCATION": "rediss://:pw@sessions/0"}
    settings.CACHES = {"default": behind_sentinels(entry, [("127.0.0.1", 26379)], None)}
    assert ids(settings) == []
    pool = connection.get_connection().client.connection_pool
    assert pool.connection_class is SentinelManagedSSLConnection


def test_sentinels_without_timeouts_are_w001(settings):
    sentinel_options(settings, SENTINEL_KWARGS={"password": "x"})
    default = settings.CACHES["default"]
    options = {
        k: v for k, v in default["OPTIONS"].items() if not k.startswith("SOCKET_")
    }
    settings.CACHES = {"default": {**default, "OPTIONS": options}}
    assert ids(settings) == ["redis_hash_sessions.W001"] * 4


@pytest.mark.parametrize(
    "sentinels",
    [None, [], ["127.0.0.1:26379"], [("127.0.0.1", "26379")], [("", 26379)]],
    ids=["missing", "empty", "a string", "a string port", "no host"],
)
def test_sentinels_that_are_not_host_port_pairs_are_e008(settings, sentinels):
    sentinel_options(settings, SENTINELS=sentinels)
    assert ids(settings) == ["redis_hash_sessions.E008"]


def test_a_pool_that_cannot_ask_the_sentinels_is_e008(settings):
    sentinel_options(settings, CONNECTION_POOL_CLASS="redis.BlockingConnectionPool")
    assert ids(settings) == ["redis_hash_sessions.E008"]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SESSION_REDIS_WAIT_REPLICAS", -1),
        ("SESSION_REDIS_WAIT_REPLICAS", "2"),
        ("SESSION_REDIS_WAIT_FOR", "everything"),
        ("SESSION_REDIS_WAIT_TIMEOUT", 0),
        ("SESSION_REDIS_WAIT_TIMEOUT", 0.0004),
        ("SESSION_REDIS_WAIT_TIMEOUT", float("inf")),
    ],
)
def test_bad_replica_wait_settings_are_e009(settings, setting, value):
    setattr(settings, setting, value)
    assert ids(settings) == ["redis_hash_sessions.E009"]


def test_a_replica_wait_as_long_as_the_socket_timeout_is_w003(settings):
    settings.SESSION_REDIS_WAIT_REPLICAS = 1
    settings.SESSION_REDIS_WAIT_TIMEOUT = 0.5
    assert ids(settings) == ["redis_hash_sessions.W003"]


@pytest.mark.parametrize(
    ("value", "addresses"),
    [
        ("10.0.0.1:26379", [("10.0.0.1", 26379)]),
        ("a:1, b:2", [("a", 1), ("b", 2)]),
        ("[::1]:26379", [("::1", 26379)]),
    ],
)
def test_redis_sentinels_lists_host_port_pairs(monkeypatch, value, addresses):
    monkeypatch.setenv("REDIS_SENTINELS", value)
    assert env_addresses("REDIS_SENTINELS") == addresses


@pytest.mark.parametrize("value", ["10.0.0.1", "10.0.0.1:port", ":26379", "a:70000"])
def test_a_malformed_redis_sentinels_is_refused_at_start(monkeypatch, value):
    monkeypatch.setenv("REDIS_SENTINELS", value)
    with pytest.raises(ImproperlyConfigured, match="host:port pairs"):
        env_addresses("REDIS_SENTINELS")


def test_sentinel_kwargs_without_timeouts_replace_the_sockets_and_are_w001(settings):
    sentinel_options(settings, SENTINEL_KWARGS={})
    assert ids(settings) == ["redis_hash_sessions.W001"] * 2


def cluster_options(settings, **options) -> None:
    entry = in_cluster(settings.CACHES["default"], [("127.0.0.1", 7000)])
    entry["OPTIONS"].update(options)
    settings.CACHES = {"default": entry}


def test_the_engines_cluster_settings_pass(settings):
    cluster_options(settings)
    assert ids(settings) == []


def test_cluster_nodes_without_the_cluster_factory_are_e010(settings):
    cluster_options(settings, CONNECTION_FACTORY=None)
    assert ids(settings) == ["redis_hash_sessions.E010"]


@pytest.mark.parametrize(
    "nodes",
    [None, [], ["127.0.0.1:7000"], [("127.0.0.1", "7000")]],
    ids=["missing", "empty", "a string", "a string port"],
)
def test_cluster_nodes_that_are_not_host_port_pairs_are_e010(settings, nodes):
    cluster_options(settings, CLUSTER_NODES=nodes)
    assert ids(settings) == ["redis_hash_sessions.E010"]


def test_a_cluster_location_with_another_database_is_e010(settings):
    cluster_options(settings)
    settings.CACHES["default"]["LOCATION"] = "redis://127.0.0.1:7000/1"
    assert ids(settings) == ["redis_hash_sessions.E010"]


@pytest.mark.parametrize(
    "setting", ["KEY_PREFIX", "SESSION_REDIS_KEY_PREFIX"], ids=["cache", "engine"]
)
def test_braces_in_a_key_prefix_on_a_cluster_are_e010(settings, setting):
    cluster_options(settings)
    if setting == "KEY_PREFIX":
        settings.CACHES["default"]["KEY_PREFIX"] = "{site}"
    else:
        settings.SESSION_REDIS_KEY_PREFIX = "{s}"
    assert ids(settings) == ["redis_hash_sessions.E010"]


def test_a_pool_class_on_a_cluster_is_e010(settings):
    cluster_options(settings, CONNECTION_POOL_CLASS="redis.BlockingConnectionPool")
    assert ids(settings) == ["redis_hash_sessions.E010"]


@pytest.mark.parametrize(
    "location",
    ["redis://127.0.0.1:7000/0?db=3", "unix:///run/redis.sock", ["redis://a/0"]],
    ids=["db in the query", "a socket", "a list"],
)
def test_a_cluster_location_that_is_not_one_url_of_database_0_is_e010(
    settings, location
):
    cluster_options(settings)
    settings.CACHES["default"]["LOCATION"] = location
    assert ids(settings) == ["redis_hash_sessions.E010"]


def test_a_key_function_that_moves_the_marks_to_other_slots_is_e010(settings):
    cluster_options(settings)
    settings.CACHES["default"]["KEY_FUNCTION"] = "tests.test_engine_checks.marks_apart"
    assert ids(settings) == ["redis_hash_sessions.E010"]


def marks_apart(key: str, key_prefix: str, version: int) -> str:
    """Return Django's key name, but a mark's with a hash tag of its own."""
    name = f"{key_prefix}:{version}:{key}"
    return "{marks}" + name if ":moved:" in key or ":ended:" in key else name
