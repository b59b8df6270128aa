"""
What a review of the engine against Django's session contract found, kept fixed.

Each test names the behaviour Django's other backends have and callers rely on.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import UpdateError

from redis_hash_sessions import connection, keys, users
from redis_hash_sessions.engine import SessionStore
from redis_hash_sessions.exceptions import SessionStoreUnavailable
from tests.conftest import primaries, session_redis_key, user_index


def stored(data: dict[str, object]) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.save()
    return session


class TestClearOnAStoreThatNeverLoaded:
    def test_saving_empties_the_session_in_redis(self, redis_client: redis.Redis):
        key = stored({"a": 1, "b": 2}).session_key
        session = SessionStore(key)
        session.clear()
        session.save()
        assert SessionStore(key).load() == {}
        assert redis_client.hexists(session_redis_key(key), "d:a") == 0

    def test_signs_the_user_out(self):
        key = stored({SESSION_KEY: "1", "visits": 3}).session_key
        session = SessionStore(key)
        session.clear()
        session["theme"] = "dark"
        session.save()
        assert SessionStore(key).load() == {"theme": "dark"}
        assert users.sessions_of("1") == []


def test_a_second_login_from_one_anonymous_session_gets_its_own_session():
    # A login form sent twice: both requests loaded the anonymous session
    # before the first renamed it; the second must not fail.
    key = stored({"visits": 1}).session_key
    first, second = SessionStore(key), SessionStore(key)
    first.keys(), second.keys()
    first.cycle_key()
    second.cycle_key()
    second[SESSION_KEY] = "1"
    second.save()
    assert first.session_key != second.session_key
    assert SessionStore(second.session_key).load() == {"visits": 1, SESSION_KEY: "1"}


def test_load_without_a_key_returns_nothing_and_sends_nothing(round_trips):
    session = SessionStore()
    assert session.load() == {}
    assert round_trips == []


def test_a_key_set_directly_is_kept_and_saved_under_it():
    session = SessionStore()
    session["a"] = 1
    session._session_key = "12345678"
    session.save(must_create=True)
    assert session.session_key == "12345678"
    assert session.exists("12345678")
    direct = SessionStore()
    direct._session_key = "12345678"
    assert direct.load() == {"a": 1}


def test_a_forged_cookie_never_reaches_redis(round_trips):
    forged = "a" * 32 + ":" + "b" * 43
    assert SessionStore(forged).session_key is None
    assert SessionStore().exists(forged) is False
    assert round_trips == []


class TestErrorsThatAreNotOutages:
    def test_a_huge_expiry_is_a_value_error_before_any_redis_call(self, round_trips):
        session = SessionStore()
        session["a"] = 1
        session.set_expiry(10**16)
        with pytest.raises(ValueError, match="more than Redis can keep"):
            session.save()
        assert round_trips == []

    def test_a_counter_past_64_bits_is_a_value_error(self):
        key = stored({"visits": 2**63 - 1}).session_key
        with pytest.raises(ValueError, match="overflow"):
            SessionStore(key).incr("visits")

    def test_a_counter_that_redis_overflows_is_a_value_error(self, redis_client):
        key = stored({"visits": 1}).session_key
        session = SessionStore(key)
        session.keys()
        redis_client.hset(session_redis_key(key), "d:visits", 2**63 - 1)
        with pytest.raises(ValueError, match="overflow"):
            session.incr("visits")

    def test_an_amount_that_is_not_an_integer_is_a_type_error(self, round_trips):
        session = SessionStore()
        with pytest.raises(TypeError):
            session.incr("visits", 1.5)  # type: ignore[arg-type]
        assert round_trips == []

    def test_a_wrong_type_at_the_key_while_saving_is_no_outage(
        self, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
    ):
        key = stored({"a": 1}).session_key
        session = SessionStore(key)
        session.keys()
        redis_client.delete(session_redis_key(key))
        redis_client.set(session_redis_key(key), "not a hash")
        session["a"] = 2
        with (
            caplog.at_level(logging.ERROR, "redis_hash_sessions"),
            pytest.raises(redis.ResponseError, match="WRONGTYPE"),
        ):
            session.save()
        assert caplog.messages == []

    def test_delete_then_load_and_delete_sends_one_delete(self, round_trips):
        key = stored({"a": 1}).session_key
        round_trips.clear()
        session = SessionStore(key)
        session.delete()
        session.load_and_delete()
        assert round_trips == ["DEL"]


class TestTheTtlFollowsTheStoredExpiry:
    def test_a_stale_request_does_not_restore_the_old_expiry(
        self, redis_client: redis.Redis
    ):
        key = stored({"a": 1}).session_key
        stale = SessionStore(key)
        stale.keys()
        other = SessionStore(key)
        other.set_expiry(60)
        other.save()
        stale["b"] = 2
        stale.save()
        assert 0 < redis_client.ttl(session_redis_key(key)) <= 60

    def test_an_increment_keeps_an_absolute_expiry(self, redis_client: redis.Redis):
        session = SessionStore()
        session["visits"] = 1
        session.set_expiry(timedelta(seconds=90))
        session.save()
        SessionStore(session.session_key).incr("visits")
        assert 0 < redis_client.ttl(session_redis_key(session.session_key)) <= 90

    def test_removing_the_custom_expiry_goes_back_to_the_default(
        self, redis_client: redis.Redis, settings
    ):
        session = SessionStore()
        session["a"] = 1
        session.set_expiry(60)
        session.save()
        session.set_expiry(None)
        session.save()
        ttl = redis_client.ttl(session_redis_key(session.session_key))
        assert settings.SESSION_COOKIE_AGE - 5 < ttl <= settings.SESSION_COOKIE_AGE

    def test_a_signed_in_session_that_was_deleted_is_not_saved_back(self):
        key = stored({SESSION_KEY: "1"}).session_key
        session = SessionStore(key)
        session.keys()
        SessionStore(key).delete()
        session["a"] = 1
        with pytest.raises(UpdateError):
            session.save()
        assert users.sessions_of("1") == []


class TestWhatAHostileReviewFound:
    def test_saving_a_session_that_is_gone_creates_a_new_one(self):
        session = SessionStore(keys.new_session_key())
        session.save()
        assert session.exists(session.session_key)

    @pytest.mark.asyncio
    @pytest.mark.usefixtures("close_async_redis")
    async def test_asaving_a_session_that_is_gone_creates_a_new_one(self):
        session = SessionStore(keys.new_session_key())
        await session.asave()
        assert await session.aexists(session.session_key)

    def test_an_expiry_past_the_year_9999_is_refused(self, round_trips):
        session = SessionStore()
        session.set_expiry(10**12)
        with pytest.raises(ValueError, match="more than Redis can keep"):
            session.save()
        assert round_trips == []

    def test_a_long_expiry_still_lists(self):
        session = SessionStore()
        session[SESSION_KEY] = "1"
        session.set_expiry(10**10)
        session.save()
        (listed,) = users.sessions_of("1")
        assert listed.expires_at.year > 2300

    def test_a_hugely_negative_expiry_just_expires(self):
        session = SessionStore()
        session["a"] = 1
        session.set_expiry(-(10**16))
        session.save()
        assert not session.exists(session.session_key)

    @pytest.mark.parametrize("rule", ["garbage", "99999999999999999999", "@1e30"])
    def test_a_corrupted_expiry_rule_falls_back_to_the_default_age(
        self, redis_client: redis.Redis, settings, rule
    ):
        key = stored({"a": 1}).session_key
        redis_client.hset(session_redis_key(key), "m:expiry", rule)
        session = SessionStore(key)
        session["a"] = 2
        session.save()
        ttl = redis_client.ttl(session_redis_key(key))
        assert settings.SESSION_COOKIE_AGE - 5 < ttl <= settings.SESSION_COOKIE_AGE

    def test_a_lone_surrogate_is_stored_as_djangos_serializer_stores_it(self):
        key = stored({"text": "\ud800 and ✓"}).session_key
        assert SessionStore(key).load() == {"text": "\ud800 and ✓"}

    def test_a_number_as_a_key_is_stored_under_its_json_name(self):
        key = stored({1: "one"}).session_key  # type: ignore[dict-item]
        assert SessionStore(key).load() == {"1": "one"}

    def test_a_cycle_key_refused_for_a_bad_value_keeps_the_key(self):
        key = stored({"a": 1}).session_key
        session = SessionStore(key)
        session.set_expiry(10**12)
        with pytest.raises(ValueError, match="more than Redis can keep"):
            session.cycle_key()
        assert session.session_key == key
        assert SessionStore(key).load()["a"] == 1

    @pytest.mark.parametrize(
        ("setting", "value"),
        [("min-replicas-to-write", "3")],  # more replicas than any topology has
        ids=["NOREPLICAS"],
    )
    def test_a_redis_that_refuses_writes_for_now_is_an_outage(
        self, redis_topology, setting, value
    ):
        key = stored({"a": 1}).session_key
        session = SessionStore(key)
        session["a"] = 2
        servers = primaries(redis_topology)
        before = servers[0].config_get(setting)[setting]
        for server in servers:
            server.config_set(setting, value)
        try:
            with pytest.raises(SessionStoreUnavailable):
                session.save()
        finally:
            for server in servers:
                server.config_set(setting, before)

    def test_index_scores_follow_redis_clock_not_the_app_servers(
        self, redis_client: redis.Redis, monkeypatch
    ):
        monkeypatch.setattr(time, "time", lambda: 4_000_000_000.0)
        session = SessionStore()
        session[SESSION_KEY] = "1"
        session.save()
        monkeypatch.undo()
        score = redis_client.zscore(user_index(1), session.key_hash)
        assert score is not None
        assert abs(score - int(redis_client.time()[0])) < 3600

    def test_no_script_names_djangos_user_field_itself(self):
        code = [
            line
            for path in Path(connection.LUA_DIR).glob("*.lua")
            for line in path.read_text().splitlines()
            if not line.lstrip().startswith("--")
        ]
        assert code
        assert not [line for line in code if SESSION_KEY in line]

    def test_counting_escapes_glob_characters_in_the_prefix(self, redis_topology):
        from tests.redis_hash_sessions.test_key_names import site

        with site(redis_topology, KEY_PREFIX="site[1]*"):
            stored({"a": 1})
        with site(redis_topology, KEY_PREFIX="site[1]*x"):
            stored({"a": 1})
        with site(redis_topology, KEY_PREFIX="site[1]*"):
            assert users.count_sessions() == 1


class TestParallelRotations:
    def test_a_second_rotation_of_a_signed_in_session_makes_no_second_one(self):
        key = stored({SESSION_KEY: "1", "visits": 2}).session_key
        first, second = SessionStore(key), SessionStore(key)
        first.keys(), second.keys()
        first.cycle_key()
        with pytest.raises(UpdateError):
            second.cycle_key()
        assert [s.key_hash for s in users.sessions_of("1")] == [first.key_hash]

    def test_a_rotation_that_lost_the_race_never_undoes_a_logout(self):
        key = stored({SESSION_KEY: "1"}).session_key
        first, slow = SessionStore(key), SessionStore(key)
        first.keys(), slow.keys()
        first.cycle_key()
        SessionStore(first.session_key).load_and_delete()
        with pytest.raises(UpdateError):
            slow.cycle_key()
        assert users.sessions_of("1") == []

    def test_a_request_that_loads_after_the_rename_has_moved_and_no_session(self):
        key = stored({SESSION_KEY: "1"}).session_key
        SessionStore(key).cycle_key()
        late = SessionStore(key)
        assert late.load() == {}
        assert late.moved

    def test_a_request_whose_session_moved_creates_none(self, redis_client):
        key = stored({SESSION_KEY: "1"}).session_key
        SessionStore(key).cycle_key()
        late = SessionStore(key)
        late["visits"] = 1
        with pytest.raises(UpdateError):
            late.save()
        assert users.count_sessions() == 1

    def test_a_deleted_session_has_not_moved(self):
        key = stored({SESSION_KEY: "1"}).session_key
        SessionStore(key).delete()
        late = SessionStore(key)
        assert late.load() == {}
        assert not late.moved
