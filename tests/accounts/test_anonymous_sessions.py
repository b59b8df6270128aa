"""Sessions without a user: a shorter idle lifetime, and evicted first."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from redis_hash_sessions import users
from tests.accounts.test_sessions import IPHONE, device, key_hash
from tests.conftest import PASSWORD, caches_for, session_redis_key, user_index
from tests.redis_process import RedisProcess
from tests.site_process import ROOT

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME


def redis_key(client: Client) -> str:
    return session_redis_key(client.cookies[COOKIE].value)


def test_an_anonymous_session_lives_the_anonymous_age(client, redis_client):
    response = client.get("/visits/")
    assert response.cookies[COOKIE]["max-age"] == settings.SESSION_ANONYMOUS_AGE
    assert 0 < redis_client.ttl(redis_key(client)) <= settings.SESSION_ANONYMOUS_AGE


def test_signing_in_gives_the_session_the_full_age(client, user, redis_client):
    client.get("/visits/")
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.cookies[COOKIE]["max-age"] == settings.SESSION_COOKIE_AGE
    assert redis_client.ttl(redis_key(client)) > settings.SESSION_ANONYMOUS_AGE
    assert "_session_expiry" not in client.session


def test_logging_out_leaves_no_anonymous_session(client, user, redis_client):
    client.post("/login/", {"username": "ada", "password": PASSWORD})
    client.post("/logout/")
    # The user's index may keep a stale entry until it is next read.
    assert users.count_sessions() == 0


def test_the_compose_file_evicts_the_soonest_to_expire_first():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "--maxmemory-policy volatile-ttl" in compose
    assert "--maxmemory " in compose


@pytest.fixture
def small_redis(tmp_path: Path, settings) -> Iterator[RedisProcess]:
    """A server of the test's own, evicting as the compose file says."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    server.client().config_set("maxmemory-policy", "volatile-ttl")
    server.client().config_set("hash-max-listpack-value", 128)
    settings.CACHES = caches_for(server.url)
    yield server
    server.stop()


class TestFloodOfAnonymousSessions:
    """Three users with two devices each; then anonymous visits fill Redis."""

    FLOOD = 3000

    @pytest.fixture
    def flooded(self, small_redis, user):
        for name in ("bob", "cy"):
            get_user_model().objects.create_user(name, password=PASSWORD)
        devices = {
            name: [device(username=name), device(IPHONE, username=name)]
            for name in ("ada", "bob", "cy")
        }
        client = small_redis.client()
        # Room for about a third of the flood.
        client.config_set("maxmemory", client.info("memory")["used_memory"] + 250_000)
        visitor = Client()
        for _ in range(self.FLOOD):
            visitor.cookies.clear()
            assert visitor.get("/visits/").status_code == HTTPStatus.OK
        return devices

    def test_redis_evicted_anonymous_sessions(self, flooded, small_redis):
        info = small_redis.client().info()
        assert info["evicted_keys"] > 0
        assert small_redis.client().dbsize() < self.FLOOD

    def test_signed_in_users_stay_signed_in(self, flooded):
        statuses = [
            laptop_or_phone.get("/dashboard/").status_code
            for pair in flooded.values()
            for laptop_or_phone in pair
        ]
        assert statuses == [HTTPStatus.OK] * 6

    def test_each_users_index_stays_exact(self, flooded, small_redis):
        for name, pair in flooded.items():
            user = get_user_model().objects.get(username=name)
            index = small_redis.client().zrange(user_index(user.pk), 0, -1)
            assert sorted(member.decode() for member in index) == sorted(
                key_hash(client) for client in pair
            )
