"""The SessionBase contract, kept by the Redis engine (sync methods)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import timedelta

import pytest
import redis
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.core.management import call_command
from django.core.signing import JSONSerializer
from django.test import override_settings
from django.utils import timezone
from redis.crc import key_slot

from redis_hash_sessions import keys
from redis_hash_sessions.connection import get_connection
from redis_hash_sessions.engine import SessionStore, encode
from tests.conftest import COUNT, session_redis_key, user_index
from tests.topologies import ClusterSet


@pytest.fixture
def tagged(redis_topology) -> None:
    """Skip a test of the slot tags where there are none (not on a cluster)."""
    if not isinstance(redis_topology, ClusterSet):
        pytest.skip("slot tags are for Redis Cluster")


def stored(data: dict[str, object] | None = None) -> SessionStore:
    """Return a session saved in Redis with the given data."""
    session = SessionStore()
    session.update(data or {})
    session.save()
    return session


def loaded(session_key: str | None) -> SessionStore:
    """Return a store that has read its session, as a request does."""
    session = SessionStore(session_key)
    session.keys()
    return session


def redis_key(session: SessionStore) -> str:
    assert session.session_key is not None
    return session_redis_key(session.session_key)


def test_new_session_has_no_key_until_saved() -> None:
    session = SessionStore()
    session["a"] = 1
    assert session.session_key is None
    session.save()
    assert keys.is_well_formed(session.session_key)


def test_saved_data_loads_back_in_another_store() -> None:
    data = {"text": "héllo ✓", "number": 3, "list": [1, "two"], "nested": {"a": None}}
    session = stored(data)
    assert dict(SessionStore(session.session_key).items()) == data


def test_unknown_session_key_loads_as_empty_and_loses_its_key() -> None:
    session = SessionStore(keys.new_session_key())
    assert dict(session.items()) == {}
    assert session.session_key is None


def test_session_key_with_a_bad_signature_is_dropped() -> None:
    session_key = stored({"a": 1}).session_key
    assert session_key is not None
    forged = session_key[:-1] + ("A" if session_key[-1] != "A" else "B")
    assert SessionStore(forged).session_key is None


def test_dict_interface_behaves_like_a_dict() -> None:
    session = SessionStore()
    session["a"] = 1
    session.update({"b": 2})
    assert session.setdefault("c", 3) == 3
    assert session.pop("a") == 1
    del session["b"]
    assert "c" in session
    assert list(session.keys()) == ["c"]
    assert list(session.values()) == [3]
    assert session.get("missing", "default") == "default"


def test_save_with_must_create_refuses_an_existing_key() -> None:
    session = stored({"a": 1})
    other = SessionStore(session.session_key)
    other["b"] = 2
    with pytest.raises(CreateError):
        other.save(must_create=True)
    assert dict(SessionStore(session.session_key).items()) == {"a": 1}


def test_save_of_a_deleted_session_raises_update_error() -> None:
    session = stored({"a": 1})
    session["b"] = 2
    SessionStore(session.session_key).delete()
    with pytest.raises(UpdateError):
        session.save()


def test_save_of_a_deleted_session_does_not_recreate_it(
    redis_client: redis.Redis,
) -> None:
    session = stored({"a": 1})
    session["b"] = 2
    SessionStore(session.session_key).delete()
    with pytest.raises(UpdateError):
        session.save()
    assert redis_client.exists(redis_key(session)) == 0


def test_create_saves_an_empty_session_that_exists() -> None:
    session = SessionStore()
    session.create()
    assert session.session_key is not None
    assert session.exists(session.session_key)
    assert session.modified


def test_exists_is_false_for_unknown_and_forged_keys() -> None:
    session = SessionStore()
    assert not session.exists(keys.new_session_key())
    assert not session.exists("not-a-session-key")


def test_delete_removes_the_session(redis_client: redis.Redis) -> None:
    session = stored({"a": 1})
    session.delete()
    assert redis_client.exists(redis_key(session)) == 0


def test_delete_with_a_key_removes_that_session() -> None:
    first, second = stored({"a": 1}), stored({"b": 2})
    assert first.session_key is not None
    assert second.session_key is not None
    SessionStore().delete(first.session_key)
    assert not SessionStore().exists(first.session_key)
    assert SessionStore().exists(second.session_key)


def test_flush_deletes_the_session_and_forgets_its_key(
    redis_client: redis.Redis,
) -> None:
    session = stored({"a": 1})
    old_redis_key = redis_key(session)
    session.flush()
    assert session.session_key is None
    assert dict(session.items()) == {}
    assert redis_client.exists(old_redis_key) == 0


def test_cycle_key_moves_the_data_to_a_new_key(redis_client: redis.Redis) -> None:
    session = stored({"a": 1})
    old_key, old_redis_key = session.session_key, redis_key(session)
    session.cycle_key()
    session.save()
    assert session.session_key != old_key
    assert dict(SessionStore(session.session_key).items()) == {"a": 1}
    assert redis_client.exists(old_redis_key) == 0


def test_cycle_key_keeps_changes_another_request_made_meanwhile() -> None:
    session = loaded(stored({"a": 1}).session_key)
    other = SessionStore(session.session_key)
    other["b"] = 2
    other.save()
    session.cycle_key()
    session.save()
    assert dict(SessionStore(session.session_key).items()) == {"a": 1, "b": 2}


def test_cycle_key_keeps_this_requests_change_over_a_concurrent_one() -> None:
    session = loaded(stored({"a": 1, "b": 1, "c": 1}).session_key)
    other = SessionStore(session.session_key)
    other["a"], other["b"] = 2, 2
    del other["c"]
    other.save()
    session["a"] = 3
    session.cycle_key()
    session.save()
    assert dict(SessionStore(session.session_key).items()) == {"a": 3, "b": 2}


def test_cycle_key_of_a_signed_in_session_deleted_meanwhile_raises() -> None:
    session = loaded(stored({SESSION_KEY: "1"}).session_key)
    SessionStore(session.session_key).delete()
    with pytest.raises(UpdateError):
        session.cycle_key()
    assert not SessionStore().exists(session.session_key)


def test_cycle_key_of_an_anonymous_session_deleted_meanwhile_starts_afresh() -> None:
    # A login form sent twice: the second request's session was rotated
    # away by the first; its login goes on under a session of its own.
    session = loaded(stored({"a": 1}).session_key)
    SessionStore(session.session_key).delete()
    session.cycle_key()
    session.save()
    assert dict(SessionStore(session.session_key).items()) == {"a": 1}


def test_cycle_key_removes_the_old_key_before_it_returns() -> None:
    session = loaded(stored({"a": 1}).session_key)
    old_key = session.session_key
    session.cycle_key()
    assert not SessionStore().exists(old_key)
    session.save()
    assert dict(SessionStore(session.session_key).items()) == {"a": 1}


def test_the_key_login_hands_out_is_the_key_the_save_keeps() -> None:
    session = loaded(stored({"a": 1}).session_key)
    session.cycle_key()
    session[SESSION_KEY] = "42"  # login(), before user_logged_in is sent
    handed_out = session.session_key
    session.save()
    assert session.session_key == handed_out
    assert dict(SessionStore(handed_out).items()) == {"a": 1, SESSION_KEY: "42"}


def test_a_value_a_moving_save_cannot_store_leaves_the_session_where_it_was() -> None:
    key = stored({"a": 1}).session_key
    session = loaded(key)
    session[SESSION_KEY] = "42"
    session["bad"] = object()
    with pytest.raises(TypeError):
        session.save()
    assert dict(SessionStore(key).items()) == {"a": 1}


def test_cycle_key_keeps_the_data_under_the_new_key_at_once(redis_topology) -> None:
    if isinstance(redis_topology, ClusterSet):
        pytest.skip("on Redis Cluster the save creates an anonymous session's new key")
    session = loaded(stored({"a": 1}).session_key)
    session.cycle_key()
    assert dict(SessionStore(session.session_key).items()) == {"a": 1}


def test_cycle_key_renames_a_signed_in_session_before_it_returns() -> None:
    session = loaded(stored({SESSION_KEY: "1"}).session_key)
    old_key = session.session_key
    session.cycle_key()
    assert not SessionStore().exists(old_key)
    assert dict(SessionStore(session.session_key).items()) == {SESSION_KEY: "1"}


@pytest.mark.usefixtures("tagged")
def test_a_signed_in_session_key_starts_with_its_users_tag() -> None:
    session = SessionStore()
    session[SESSION_KEY] = "42"
    session.save()
    assert session.session_key is not None
    assert session.session_key.startswith(keys.user_tag("42"))


@pytest.mark.usefixtures("tagged")
def test_a_session_that_gains_a_user_moves_to_a_key_tagged_for_them() -> None:
    session = loaded(stored({"a": 1}).session_key)
    old_key = session.session_key
    session[SESSION_KEY] = "42"
    session.save()
    assert session.session_key != old_key
    assert session.session_key.startswith(keys.user_tag("42"))
    assert not SessionStore().exists(old_key)
    assert dict(SessionStore(session.session_key).items()) == {
        "a": 1,
        SESSION_KEY: "42",
    }


@pytest.mark.usefixtures("tagged")
def test_a_user_and_their_index_share_a_hash_slot() -> None:
    session = SessionStore()
    session[SESSION_KEY] = "42"
    session.save()
    assert session.session_key is not None
    assert key_slot(session_redis_key(session.session_key).encode()) == key_slot(
        user_index("42").encode()
    )


def test_deleting_the_old_key_after_cycle_key_leaves_the_new_one() -> None:
    session = loaded(stored({"a": 1}).session_key)
    old_key = session.session_key
    session.cycle_key()
    session.delete(old_key)
    session["b"] = 2
    session.save()
    assert dict(SessionStore(session.session_key).items()) == {"a": 1, "b": 2}


def test_cycle_key_of_a_new_session_creates_it_on_save() -> None:
    session = SessionStore()
    session["a"] = 1
    session.cycle_key()
    session.save()
    assert dict(SessionStore(session.session_key).items()) == {"a": 1}


def test_a_save_sends_only_the_keys_it_changed() -> None:
    session = stored({"a": 1, "b": 1})
    first, second = SessionStore(session.session_key), SessionStore(session.session_key)
    first["a"], second["b"] = 2, 2
    first.save()
    second.save()
    assert dict(SessionStore(session.session_key).items()) == {"a": 2, "b": 2}


def test_deleting_a_key_deletes_only_that_key() -> None:
    session = stored({"a": 1, "b": 1})
    first, second = SessionStore(session.session_key), SessionStore(session.session_key)
    del first["a"]
    second["c"] = 1
    first.save()
    second.save()
    assert dict(SessionStore(session.session_key).items()) == {"b": 1, "c": 1}


def test_a_value_changed_in_place_is_saved() -> None:
    session = stored({"cart": [1]})
    loaded = SessionStore(session.session_key)
    loaded["cart"].append(2)
    loaded.modified = True
    loaded.save()
    assert SessionStore(session.session_key)["cart"] == [1, 2]


def test_values_are_stored_as_json_fields(redis_client: redis.Redis) -> None:
    session = stored({"user": {"id": 7}, "visits": 3})
    fields = redis_client.hgetall(redis_key(session))
    assert json.loads(fields[b"d:user"]) == {"id": 7}
    assert fields[b"d:visits"] == b"3"
    assert b"m:created" in fields


@pytest.mark.parametrize(
    "value",
    [
        "",
        'a "quote", a \\ and a /',
        "ünïcödé ☃ 𝄞",
        "\ud800 a lone surrogate",
        "\x00\x1f\x7f controls",
        0,
        -1,
        2**64,
        -(10**300),
        True,
        None,
        1.5,
        [1, "a"],
        {"k": "v"},
    ],
)
def test_a_value_is_stored_as_djangos_json_serializer_writes_it(value: object) -> None:
    assert encode(value) == JSONSerializer().dumps(value)


def test_a_value_json_cannot_hold_is_refused() -> None:
    session = SessionStore()
    session["when"] = timezone.now()
    with pytest.raises(TypeError):
        session.save()


def test_a_key_that_json_cannot_name_is_refused() -> None:
    session = SessionStore()
    session[(1, 2)] = "one"  # type: ignore[index]
    with pytest.raises(TypeError, match="must be strings"):
        session.save()


def test_no_redis_key_or_value_contains_the_session_id(
    redis_client: redis.Redis,
) -> None:
    session = stored({"a": 1})
    old_id = session.session_key[: keys.ID_LENGTH].encode()
    session.cycle_key()
    session.save()
    assert session.session_key is not None
    session_id = session.session_key[: keys.ID_LENGTH].encode()
    names = sorted(redis_client.scan_iter())
    digest = base64.urlsafe_b64encode(hashlib.sha256(session_id).digest())
    # The session, and the mark that says its previous key moved.
    assert session_redis_key(session.session_key).encode() in names
    assert len(names) == 2
    name = digest.rstrip(b"=")
    if keys.names().tagged:
        name = b"{" + session_id[: keys.TAG_LENGTH] + b"}" + name
    assert any(n.endswith(b":session:" + name) for n in names)
    assert not [name for name in names if session_id in name or old_id in name]
    assert all(
        session_id not in value
        for value in redis_client.hvals(session_redis_key(session.session_key))
    )


def test_default_ttl_is_the_session_cookie_age(
    redis_client: redis.Redis,
) -> None:
    session = stored({"a": 1})
    assert 1790 < redis_client.ttl(redis_key(session)) <= 1800


def test_ttl_follows_set_expiry_in_seconds(redis_client: redis.Redis) -> None:
    session = SessionStore()
    session.set_expiry(600)
    session.save()
    assert 590 < redis_client.ttl(redis_key(session)) <= 600
    assert session.get_expiry_age() == 600


def test_ttl_follows_set_expiry_with_a_timedelta(redis_client: redis.Redis) -> None:
    session = SessionStore()
    session.set_expiry(timedelta(hours=2))
    session.save()
    assert 7190 < redis_client.ttl(redis_key(session)) <= 7200


def test_ttl_follows_set_expiry_with_a_datetime(redis_client: redis.Redis) -> None:
    session = SessionStore()
    expiry = timezone.now() + timedelta(minutes=5)
    session.set_expiry(expiry)
    session.save()
    assert 290 < redis_client.ttl(redis_key(session)) <= 300
    assert SessionStore(session.session_key).get_expiry_date() == expiry


def test_browser_close_session_keeps_the_cookie_age_in_redis(
    redis_client: redis.Redis,
) -> None:
    session = SessionStore()
    session.set_expiry(0)
    session.save()
    assert SessionStore(session.session_key).get_expire_at_browser_close()
    assert 1790 < redis_client.ttl(redis_key(session)) <= 1800


def test_set_expiry_none_returns_to_the_default(redis_client: redis.Redis) -> None:
    session = SessionStore()
    session.set_expiry(60)
    session.save()
    session.set_expiry(None)
    session.save()
    assert 1790 < redis_client.ttl(redis_key(session)) <= 1800


def test_an_expiry_in_the_past_deletes_the_session_on_save() -> None:
    session = stored({"a": 1})
    session.set_expiry(timezone.now() - timedelta(seconds=1))
    session.save()
    assert not SessionStore().exists(session.session_key or "")


def test_refreshing_an_unchanged_session_writes_no_field(
    redis_client: redis.Redis,
) -> None:
    session = stored({"a": 1})
    redis_client.expire(redis_key(session), 10)
    before = redis_client.hgetall(redis_key(session))
    loaded_again = loaded(session.session_key)
    loaded_again.modified = True
    loaded_again.save()
    assert redis_client.ttl(redis_key(session)) > 1790
    assert redis_client.hgetall(redis_key(session)) == before


def test_test_cookie_round_trip() -> None:
    session = SessionStore()
    session.set_test_cookie()
    session.save()
    loaded = SessionStore(session.session_key)
    assert loaded.test_cookie_worked()
    loaded.delete_test_cookie()
    assert not loaded.test_cookie_worked()


def test_clear_expired_and_clearsessions_leave_live_sessions() -> None:
    session = stored({"a": 1})
    SessionStore.clear_expired()
    call_command("clearsessions")
    assert SessionStore().exists(session.session_key or "")


def test_a_key_collision_raises_create_error_and_overwrites_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = stored({"owner": "first"}).session_key
    monkeypatch.setattr(keys, "new_session_key", lambda: taken)
    session = SessionStore()
    session["owner"] = "second"
    with pytest.raises(CreateError):
        session.save()
    assert SessionStore(taken)["owner"] == "first"


def test_a_key_signed_with_a_fallback_secret_is_accepted_and_re_signed(
    settings,
) -> None:
    old_key = stored({"a": 1}).session_key
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key"
    session = SessionStore(old_key)
    assert session["a"] == 1
    assert session.session_key != old_key
    assert session.session_key == keys.verify(session.session_key)


def test_a_key_signed_with_a_retired_secret_is_dropped(
    settings,
) -> None:
    old_key = stored({"a": 1}).session_key
    settings.SECRET_KEY = "a-new-secret-key"
    assert SessionStore(old_key).session_key is None


class TestIncr:
    def test_counts_from_zero_on_a_new_session(self) -> None:
        session = SessionStore()
        assert session.incr("visits") == 1
        assert session.incr("visits", 5) == 6
        session.save()
        assert SessionStore(session.session_key)["visits"] == 6

    def test_adds_to_what_redis_holds(self) -> None:
        session = stored({"visits": 1})
        first, second = loaded(session.session_key), loaded(session.session_key)
        assert first.incr("visits") == 2
        assert second.incr("visits") == 3
        assert SessionStore(session.session_key)["visits"] == 3

    def test_value_is_visible_to_the_rest_of_the_request(self) -> None:
        session = stored({"visits": 1})
        loaded = SessionStore(session.session_key)
        loaded.incr("visits")
        assert loaded["visits"] == 2

    def test_refuses_a_value_that_is_not_an_integer(self) -> None:
        session = stored({"name": "ada"})
        with pytest.raises(TypeError, match="not an integer"):
            SessionStore(session.session_key).incr("name")

    def test_refuses_a_value_another_request_made_not_an_integer(self) -> None:
        session = stored({"visits": 1})
        current = loaded(session.session_key)
        other = SessionStore(session.session_key)
        other["visits"] = "many"
        other.save()
        with pytest.raises(TypeError, match="not an integer"):
            current.incr("visits")

    def test_on_a_deleted_session_raises_update_error(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"visits": 1})
        current = loaded(session.session_key)
        SessionStore(session.session_key).delete()
        with pytest.raises(UpdateError):
            current.incr("visits")
        assert redis_client.exists(redis_key(session)) == 0

    def test_after_deleting_the_key_locally_starts_from_zero(self) -> None:
        session = stored({"visits": 5})
        loaded = SessionStore(session.session_key)
        del loaded["visits"]
        assert loaded.incr("visits") == 1
        loaded.save()
        assert SessionStore(session.session_key)["visits"] == 1

    def test_refreshes_the_ttl(self, redis_client: redis.Redis) -> None:
        session = stored({"visits": 1})
        counting = loaded(session.session_key)
        redis_client.expire(redis_key(session), 10)
        counting.incr("visits")
        assert redis_client.ttl(redis_key(session)) > 1790


class TestIncrBeforeAnyRead:
    """An increment on a session nothing has read yet loads it in the same step."""

    def test_counts_and_loads_in_one_round_trip(self, round_trips) -> None:
        session = stored({"visits": 2, "name": "ada"})
        counting = SessionStore(session.session_key)
        round_trips.clear()
        assert counting.incr("visits") == 3
        assert dict(counting.items()) == {"visits": 3, "name": "ada"}
        assert round_trips == [COUNT]

    def test_the_request_then_saves_nothing_more(self, round_trips) -> None:
        session = stored({"visits": 2})
        counting = SessionStore(session.session_key)
        counting.incr("visits")
        round_trips.clear()
        counting.save()
        assert round_trips == []
        assert SessionStore(session.session_key)["visits"] == 3

    def test_a_change_after_it_is_saved_alone(self) -> None:
        session = stored({"visits": 2, "name": "ada"})
        counting = SessionStore(session.session_key)
        counting.incr("visits")
        counting["name"] = "grace"
        counting.save()
        assert dict(SessionStore(session.session_key).items()) == {
            "visits": 3,
            "name": "grace",
        }

    def test_a_deleted_session_is_not_brought_back(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"visits": 2})
        SessionStore(session.session_key).delete()
        counting = SessionStore(session.session_key)
        assert counting.incr("visits") == 1
        assert counting.session_key is None
        assert not SessionStore().exists(session.session_key)
        assert dict(SessionStore(session.session_key).items()) == {}
        counting.save()
        assert counting.session_key != session.session_key
        assert SessionStore(counting.session_key)["visits"] == 1

    def test_what_a_count_leaves_on_a_deleted_session_lives_a_minute(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"visits": 2})
        SessionStore(session.session_key).delete()
        SessionStore(session.session_key).incr("visits")
        assert redis_client.hgetall(redis_key(session)) == {b"d:visits": b"1"}
        assert 0 < redis_client.ttl(redis_key(session)) <= 60

    def test_a_session_put_back_replaces_what_a_count_left_on_its_key(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"visits": 2})
        fields = redis_client.hgetall(redis_key(session))
        # Left for a key in another hash slot (leave.lua), with its mark.
        redis_client.delete(redis_key(session))
        mark = session._moved_mark()
        redis_client.set(mark, 1, ex=30)
        # The old cookie counts meanwhile: nothing to count in, it moved.
        counting = SessionStore(session.session_key)
        assert counting.load_and_incr("theme") is None
        assert counting.moved
        connection = get_connection()
        flat = [item for pair in fields.items() for item in pair]
        keys_ = [redis_key(session), mark]
        assert connection.call(connection.put_back, keys_, [60_000, *flat]) == 1
        assert dict(SessionStore(session.session_key).items()) == {"visits": 2}

    def test_counts_over_resp2_as_over_resp3(self, redis_topology) -> None:
        if isinstance(redis_topology, ClusterSet):
            pytest.skip("a cluster's client takes no pool arguments")
        # A database no other test uses: django-redis keeps one pool per URL.
        caches = redis_topology.caches(db=3)
        options = caches["default"]["OPTIONS"]
        pool = {**options["CONNECTION_POOL_KWARGS"], "protocol": 2}
        caches["default"]["OPTIONS"] = {**options, "CONNECTION_POOL_KWARGS": pool}
        with override_settings(CACHES=caches):
            session = stored({"visits": 2, "name": "ada"})
            counting = SessionStore(session.session_key)
            assert (
                get_connection().client.connection_pool.connection_kwargs["protocol"]
                == 2
            )
            assert counting.incr("visits") == 3
            assert dict(counting.items()) == {"visits": 3, "name": "ada"}

    def test_a_session_that_moved_counts_nothing_and_refuses_to_save(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"visits": 2})
        moving = loaded(session.session_key)
        moving.cycle_key()
        moving.save()
        counting = SessionStore(session.session_key)
        counting.incr("visits")
        assert counting.moved
        with pytest.raises(UpdateError):
            counting.save()
        assert SessionStore(moving.session_key)["visits"] == 2

    def test_a_key_of_the_wrong_type_counts_in_a_new_session(
        self, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
    ) -> None:
        session_key = keys.new_session_key()
        redis_client.set(session_redis_key(session_key), "not a hash")
        counting = SessionStore(session_key)
        with caplog.at_level(logging.WARNING, "django.security.SuspiciousSession"):
            assert counting.incr("visits") == 1
        assert caplog.messages == ["Session data corrupted"]
        assert redis_client.get(session_redis_key(session_key)) == b"not a hash"

    def test_a_field_that_is_not_json_counts_in_a_new_session(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"visits": 2, "name": "ada"})
        redis_client.hset(redis_key(session), "d:name", b"{not json")
        counting = SessionStore(session.session_key)
        assert counting.incr("visits") == 1
        assert counting.session_key is None

    def test_refuses_a_value_that_is_not_an_integer_and_writes_nothing(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"visits": "many"})
        before = redis_client.hgetall(redis_key(session))
        with pytest.raises(TypeError, match="not an integer"):
            SessionStore(session.session_key).incr("visits")
        assert redis_client.hgetall(redis_key(session)) == before

    def test_an_amount_past_64_bits_is_a_value_error(self, round_trips) -> None:
        session = stored({"visits": 2})
        round_trips.clear()
        with pytest.raises(ValueError, match="64 bits"):
            SessionStore(session.session_key).incr("visits", 2**63)
        assert round_trips == []

    def test_a_sum_past_64_bits_is_a_value_error(self) -> None:
        session = stored({"visits": 2**63 - 1})
        with pytest.raises(ValueError, match="64 bits"):
            SessionStore(session.session_key).incr("visits")

    @pytest.mark.parametrize(
        ("lag", "renewed"), [(61, True), (59, False)], ids=["over", "within"]
    )
    def test_has_the_save_renew_a_ttl_only_once_it_lags_by_over_a_minute(
        self, redis_client: redis.Redis, round_trips, lag: int, renewed: bool
    ) -> None:
        session = stored({"visits": 1})
        redis_client.expire(redis_key(session), 1800 - lag)
        counting = SessionStore(session.session_key)
        round_trips.clear()
        counting.incr("visits")
        counting.save()
        assert round_trips == ([COUNT, "EVALSHA"] if renewed else [COUNT])
        assert (redis_client.ttl(redis_key(session)) > 1800 - lag) == renewed

    def test_has_the_save_shorten_a_ttl_past_a_lowered_age(
        self, redis_client: redis.Redis, settings
    ) -> None:
        session = stored({"visits": 1})
        settings.SESSION_COOKIE_AGE = 300
        counting = SessionStore(session.session_key)
        counting.incr("visits")
        counting.save()
        assert 0 < redis_client.ttl(redis_key(session)) <= 300

    def test_has_the_save_give_a_session_without_a_ttl_its_own(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"visits": 1})
        redis_client.persist(redis_key(session))  # a restore that dropped it
        counting = SessionStore(session.session_key)
        counting.incr("visits")
        counting.save()
        assert redis_client.ttl(redis_key(session)) > 1790

    def test_a_count_of_a_deleted_session_looks_for_its_moved_mark(
        self, round_trips
    ) -> None:
        session = stored({"visits": 1})
        SessionStore(session.session_key).delete()
        counting = SessionStore(session.session_key)
        round_trips.clear()
        assert counting.load_and_incr("visits") is None
        assert round_trips == [COUNT, "EXISTS"]

    @pytest.mark.parametrize(
        ("age", "lagging"), [(100, 89), (100, 91), (5, 4)], ids=str
    )
    def test_a_short_age_lags_at_most_a_tenth_of_itself(
        self, redis_client: redis.Redis, settings, age: int, lagging: int
    ) -> None:
        settings.SESSION_COOKIE_AGE = age
        session = stored({"visits": 1})
        redis_client.expire(redis_key(session), lagging)
        counting = SessionStore(session.session_key)
        counting.incr("visits")
        counting.save()
        renewed = lagging < age - age // 10
        assert (redis_client.ttl(redis_key(session)) > lagging) == renewed

    def test_a_key_rotation_that_then_fails_leaves_nothing_saved_as_done(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({SESSION_KEY: "1", "visits": 1})
        counting = SessionStore(session.session_key)
        counting.incr("visits")
        SessionStore(session.session_key).delete()  # a logout meanwhile
        with pytest.raises(UpdateError):
            counting.cycle_key()
        # The new key was never written: no save may pass it off as stored.
        with pytest.raises(UpdateError):
            counting.save()
        assert not SessionStore().exists(counting.session_key)

    @pytest.mark.parametrize(
        ("rule", "ttl", "renewed"),
        [("600", 600 - 61, True), ("600", 600 - 59, False), ("@", 100, False)],
        ids=["idle-lagging", "idle-fresh", "fixed-time"],
    )
    def test_a_custom_expiry_is_renewed_by_its_own_rule(
        self, redis_client: redis.Redis, round_trips, rule: str, ttl: int, renewed: bool
    ) -> None:
        session = stored({"visits": 1})
        if rule == "@":
            rule = f"@{int(redis_client.time()[0]) + ttl}"
        redis_client.hset(redis_key(session), "m:expiry", rule)
        redis_client.expire(redis_key(session), ttl)
        counting = SessionStore(session.session_key)
        round_trips.clear()
        counting.incr("visits")
        counting.save()
        assert round_trips == ([COUNT, "EVALSHA"] if renewed else [COUNT])
        assert (redis_client.ttl(redis_key(session)) > ttl) == renewed

    def test_every_count_saves_when_every_request_must(
        self, redis_client: redis.Redis, round_trips, settings
    ) -> None:
        settings.SESSION_SAVE_EVERY_REQUEST = True
        session = stored({"visits": 1})
        redis_client.expire(redis_key(session), 1800 - 5)
        counting = SessionStore(session.session_key)
        round_trips.clear()
        counting.incr("visits")
        counting.save()
        assert round_trips == [COUNT, "EVALSHA"]
        assert redis_client.ttl(redis_key(session)) > 1800 - 5


class TestLoadAndIncr:
    def test_returns_none_for_a_deleted_session(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"visits": 2})
        SessionStore(session.session_key).delete()
        counting = SessionStore(session.session_key)
        assert counting.load_and_incr("visits") is None
        assert dict(counting.items()) == {}
        assert counting.is_empty()

    def test_returns_none_for_a_session_without_a_cookie(self, round_trips) -> None:
        assert SessionStore().load_and_incr("visits") is None
        assert round_trips == []

    def test_on_a_loaded_session_is_an_increment(self) -> None:
        session = loaded(stored({"visits": 2}).session_key)
        assert session.load_and_incr("visits") == 3
        assert SessionStore(session.session_key)["visits"] == 3


class TestLoadAndDelete:
    def test_deletes_the_session(self, redis_client: redis.Redis) -> None:
        session = stored({"a": 1})
        SessionStore(session.session_key).load_and_delete()
        assert redis_client.exists(redis_key(session)) == 0

    def test_keeps_the_data_readable(self) -> None:
        session = stored({"a": 1})
        loaded = SessionStore(session.session_key)
        loaded.load_and_delete()
        assert loaded["a"] == 1


class TestCorruptedData:
    def test_a_key_of_the_wrong_type_loads_as_an_empty_session(
        self, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
    ) -> None:
        session_key = keys.new_session_key()
        redis_client.set(session_redis_key(session_key), "not a hash")
        with caplog.at_level(logging.WARNING, "django.security.SuspiciousSession"):
            session = SessionStore(session_key)
            assert dict(session.items()) == {}
        assert session.session_key is None
        assert caplog.messages == ["Session data corrupted"]

    @pytest.mark.parametrize(
        "value",
        [b"\xff{not json", b"", b"1 2", b'"unterminated', b"{}x", b"[" * 100_000],
        ids=["not-utf8", "empty", "two-values", "unterminated", "trailing", "deep"],
    )
    def test_a_field_that_is_not_one_json_value_loads_as_an_empty_session(
        self, value: bytes, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
    ) -> None:
        session = stored({"a": 1})
        redis_client.hset(redis_key(session), "d:a", value)
        with caplog.at_level(logging.WARNING, "django.security.SuspiciousSession"):
            loaded = SessionStore(session.session_key)
            assert dict(loaded.items()) == {}
        assert caplog.messages == ["Session data corrupted"]

    def test_a_field_with_whitespace_around_its_json_loads(
        self, redis_client: redis.Redis
    ) -> None:
        session = stored({"a": 1})
        redis_client.hset(redis_key(session), "d:a", b' {"b": [2]}\n')
        assert SessionStore(session.session_key)["a"] == {"b": [2]}

    def test_a_corrupted_session_is_replaced_by_a_new_one_on_save(
        self, redis_client: redis.Redis
    ) -> None:
        session_key = keys.new_session_key()
        redis_client.set(session_redis_key(session_key), "not a hash")
        session = SessionStore(session_key)
        session["a"] = 1
        session.save()
        assert session.session_key != session_key
        assert SessionStore(session.session_key)["a"] == 1
