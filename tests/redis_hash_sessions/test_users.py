"""Each user's sessions: the index the engine keeps, and ending sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from redis_hash_sessions import users
from redis_hash_sessions.engine import SessionStore
from tests.conftest import (
    COUNT,
    index_note,
    noted_entry,
    redis_now,
    session_redis_key,
    stored_key,
    user_index,
)


def signed_in(user_id: str, **data: object) -> SessionStore:
    session = SessionStore()
    session.update({"_auth_user_id": user_id, **data})
    session.save()
    return session


def visit(session_key: str | None, round_trips: list[str]) -> list[str]:
    """Count a visit in a request's own store and save it; return its round trips."""
    counting = SessionStore(session_key)
    round_trips.clear()
    counting.incr("visits")
    counting.save()
    return list(round_trips)


def listed(user_id: str) -> set[str]:
    return {entry.key_hash for entry in users.sessions_of(user_id)}


def test_a_saved_session_of_a_user_is_listed_under_that_user():
    first, second = signed_in("1"), signed_in("1")
    signed_in("2")
    assert listed("1") == {first.key_hash, second.key_hash}


def test_an_anonymous_session_is_listed_under_nobody(redis_client: redis.Redis):
    session = SessionStore()
    session["visits"] = 1
    session.save()
    assert list(redis_client.scan_iter(match=user_index("*"))) == []


def test_logging_in_an_anonymous_session_lists_it():
    session = SessionStore()
    session["visits"] = 1
    session.save()
    session["_auth_user_id"] = "1"
    session.cycle_key()
    session.save()
    assert listed("1") == {session.key_hash}


def test_a_rotated_session_is_listed_under_its_new_name_only():
    session = signed_in("1")
    old = session.key_hash
    session.cycle_key()
    session.save()
    assert listed("1") == {session.key_hash}
    assert session.key_hash != old


def test_a_deleted_session_leaves_the_index():
    session = signed_in("1")
    SessionStore(session.session_key).delete()
    assert listed("1") == set()


def test_a_logout_by_load_and_delete_leaves_the_index():
    session = signed_in("1")
    SessionStore(session.session_key).load_and_delete()
    assert listed("1") == set()


def test_removing_the_user_from_a_session_leaves_the_index():
    session = signed_in("1")
    loaded = SessionStore(session.session_key)
    del loaded["_auth_user_id"]
    loaded.save()
    assert listed("1") == set()


def test_the_listed_expiry_follows_the_ttl_on_redis_clock(redis_client: redis.Redis):
    session = signed_in("1")
    before = redis_now(redis_client)
    session.set_expiry(600)
    session.save()
    after = redis_now(redis_client)
    (entry,) = users.sessions_of("1")
    assert before + 600 <= entry.expires_at.timestamp() <= after + 600


def index_score(redis_client: redis.Redis, session: SessionStore) -> float:
    score = redis_client.zscore(user_index(1), session.key_hash or "")
    assert score is not None
    return score


def test_an_entry_is_scored_at_most_a_minute_past_its_session_expiry(redis_client):
    session = signed_in("1", visits=0)
    expires = redis_now(redis_client) + redis_client.ttl(
        session_redis_key(session.session_key)
    )
    assert 0 <= index_score(redis_client, session) - expires <= 60 + 1


def expire_index_entry_soon(redis_client: redis.Redis, session: SessionStore) -> None:
    """Score the session's index entry (and its note of it) to pass in 5 s."""
    soon = redis_now(redis_client) + 5
    redis_client.zadd(user_index(1), {session.key_hash or "": soon})
    redis_client.hset(
        session_redis_key(session.session_key),
        "m:indexed",
        index_note(soon, redis_now(redis_client)),
    )


def test_an_increment_of_a_loaded_session_moves_an_entry_that_is_due(redis_client):
    session = signed_in("1", visits=0)
    expire_index_entry_soon(redis_client, session)
    before = redis_now(redis_client)
    loaded = SessionStore(session.session_key)
    assert loaded["visits"] == 0
    loaded.incr("visits")
    assert index_score(redis_client, session) >= before + 1800 + 60


def test_an_increment_that_loads_the_session_has_the_save_move_a_due_entry(
    redis_client, round_trips
):
    session = signed_in("1", visits=0)
    expire_index_entry_soon(redis_client, session)
    before = redis_now(redis_client)
    counting = SessionStore(session.session_key)
    round_trips.clear()
    assert counting.incr("visits") == 1
    assert index_score(redis_client, session) < before + 1800
    counting.save()
    assert index_score(redis_client, session) >= before + 1800 + 60
    assert round_trips == [COUNT, "EVALSHA"]


def test_an_increment_that_loads_the_session_saves_nothing_if_no_entry_is_due(
    round_trips,
):
    session = signed_in("1", visits=0)
    counting = SessionStore(session.session_key)
    round_trips.clear()
    assert counting.incr("visits") == 1
    counting.save()
    assert round_trips == [COUNT]


@pytest.mark.parametrize(
    "note",
    [
        None,  # as 1.0.0 stored signed-in sessions, without one
        "abc",
        "1e999",
        "inf",
        "nan",
        "1e300",
        "",
        "1796000000",
        "1:2:3",
        "-5:1",
        "9" * 30 + ":1",
        # Past the digits Python's int() takes from a string.
        "9" * 4301 + ":1",
        "1:" + "9" * 4301,
    ],
)
def test_a_count_with_no_index_note_of_ours_has_the_save_move_the_entry(
    redis_client, note
):
    session = signed_in("1", visits=0)
    redis_key = session_redis_key(session.session_key)
    if note is None:
        redis_client.hdel(redis_key, "m:indexed")
    else:
        redis_client.hset(redis_key, "m:indexed", note)
    redis_client.zadd(user_index(1), {session.key_hash: redis_now(redis_client) + 5})
    before = redis_now(redis_client)
    counting = SessionStore(session.session_key)
    assert counting.incr("visits") == 1
    counting.save()
    assert index_score(redis_client, session) >= before + 1800 + 60
    assert noted_entry(redis_client.hget(redis_key, "m:indexed")) == index_score(
        redis_client, session
    )


def test_a_count_never_moves_the_session_past_its_entry(redis_client):
    session = signed_in("1", visits=0)
    redis_key = session_redis_key(session.session_key)
    entry = redis_now(redis_client) + 100
    redis_client.zadd(user_index(1), {session.key_hash: entry})
    note = index_note(entry, redis_now(redis_client))
    redis_client.hset(redis_key, "m:indexed", note)
    redis_client.expire(redis_key, 90)
    # No save follows (an error page, an outage, a caller that does not save).
    SessionStore(session.session_key).incr("visits")
    assert 0 < redis_client.ttl(redis_key) <= 90
    assert index_score(redis_client, session) == entry


def test_a_count_of_a_session_past_its_entry_has_the_save_move_it(
    redis_client, round_trips
):
    session = signed_in("1", visits=0)
    redis_key = session_redis_key(session.session_key)
    entry = redis_now(redis_client) + 100  # short of the session's 1800 s
    redis_client.zadd(user_index(1), {session.key_hash: entry})
    note = index_note(entry, redis_now(redis_client))
    redis_client.hset(redis_key, "m:indexed", note)
    assert visit(session.session_key, round_trips) == [COUNT, "EVALSHA"]
    expires = redis_now(redis_client) + redis_client.ttl(redis_key)
    assert index_score(redis_client, session) >= expires


def test_a_save_that_finds_the_entry_in_place_corrects_a_stale_note(
    redis_client, round_trips
):
    session = signed_in("1", visits=0)
    redis_key = session_redis_key(session.session_key)
    redis_client.hdel(redis_key, "m:indexed")  # as 1.0.0 stored sessions
    visit(session.session_key, round_trips)
    assert visit(session.session_key, round_trips) == [COUNT]
    assert noted_entry(redis_client.hget(redis_key, "m:indexed")) == index_score(
        redis_client, session
    )


def test_a_count_reports_the_entry_due_when_nobody_saw_it_for_a_minute(
    redis_client, round_trips
):
    session = signed_in("1", visits=0)
    now = redis_now(redis_client)
    redis_client.delete(user_index(1))  # lost, while the note says it is there
    redis_client.hset(
        session_redis_key(session.session_key),
        "m:indexed",
        index_note(now + 1800 + 60, now - 60),
    )
    assert visit(session.session_key, round_trips) == [COUNT, "EVALSHA"]
    assert listed("1") == {session.key_hash}


@pytest.mark.parametrize("rule", [600, "absolute"], ids=["shorter", "absolute"])
def test_a_session_with_its_own_expiry_returns_to_a_lost_index_within_a_minute(
    redis_client, rule
):
    session = signed_in("1", visits=0)
    session.set_expiry(600 if rule == 600 else timezone.now() + timedelta(hours=1))
    session.save()
    redis_client.delete(user_index(1))
    note = redis_client.hget(session_redis_key(session.session_key), "m:indexed")
    entry = noted_entry(note)
    redis_client.hset(
        session_redis_key(session.session_key),
        "m:indexed",
        index_note(entry, redis_now(redis_client) - 61),
    )
    counting = SessionStore(session.session_key)
    counting.incr("visits")
    counting.save()
    assert listed("1") == {session.key_hash}


def test_a_count_without_an_index_note_leaves_the_ttl_to_the_save(redis_client):
    session = signed_in("1", visits=0)
    redis_key = session_redis_key(session.session_key)
    redis_client.hdel(redis_key, "m:indexed")
    redis_client.expire(redis_key, 500)
    SessionStore(session.session_key).incr("visits")
    assert redis_client.ttl(redis_key) <= 500


@pytest.mark.parametrize("replacement", [None, "not an index"], ids=["lost", "string"])
def test_a_lost_or_corrupted_index_is_rebuilt_by_the_next_write(
    redis_client, replacement
):
    session = signed_in("1", visits=0)
    redis_client.delete(user_index(1))  # evicted, or flushed
    if replacement is not None:
        redis_client.set(user_index(1), replacement)
    assert listed("1") == set()
    loaded = SessionStore(session.session_key)
    loaded["theme"] = "dark"
    loaded.save()
    assert listed("1") == {session.key_hash}


@pytest.mark.parametrize("replacement", [None, "not an index"], ids=["lost", "string"])
def test_a_named_session_ends_without_its_index(redis_client, replacement):
    # Revoking a stolen session must not wait for its index to come back.
    session = signed_in("1")
    redis_client.delete(user_index(1))
    if replacement is not None:
        redis_client.set(user_index(1), replacement)
    assert users.end_sessions("1", only=[session.key_hash or ""]) == 1
    assert not SessionStore().exists(session.session_key)
    if replacement is not None:
        assert redis_client.get(user_index(1)) == replacement.encode()


def test_a_key_of_another_type_in_the_index_fails_neither_listing_nor_ending(
    redis_client,
):
    kept, corrupted = signed_in("1"), signed_in("1")
    redis_client.delete(session_redis_key(corrupted.session_key))
    redis_client.set(session_redis_key(corrupted.session_key), "not a session")
    assert listed("1") == {kept.key_hash}
    assert users.end_sessions("1") == 1
    assert redis_client.get(session_redis_key(corrupted.session_key)) is not None


def test_a_hash_that_holds_no_session_is_neither_listed_nor_ended(redis_client):
    kept, stray = signed_in("1"), signed_in("1")
    redis_client.hdel(session_redis_key(stray.session_key), "m:created")
    assert listed("1") == {kept.key_hash}
    assert users.end_sessions("1", only=[stray.key_hash or ""]) == 0


def test_an_index_member_that_is_not_utf8_is_left_out(redis_client):
    session = signed_in("1")
    redis_client.zadd(user_index(1), {b"\xff\xfe": redis_now(redis_client) + 60})
    assert listed("1") == {session.key_hash}
    assert users.end_sessions("1") == 1


def test_a_session_whose_ttl_ends_past_the_year_9999_is_listed(redis_client):
    session = signed_in("1")
    redis_client.expire(session_redis_key(session.session_key), 10**12)
    (entry,) = users.sessions_of("1")
    assert entry.expires_at.year == 9999


def test_an_entry_scored_past_any_expiry_fails_no_write(redis_client):
    first = signed_in("1")
    redis_client.zadd(user_index(1), {"corrupted": float("inf")})
    second = signed_in("1")
    assert listed("1") == {first.key_hash, second.key_hash}
    assert redis_client.ttl(user_index(1)) > 0


@pytest.mark.parametrize("user", [1, ""], ids=["number", "empty"])
def test_a_count_of_a_session_that_indexes_no_user_is_one_round_trip(round_trips, user):
    session = SessionStore()
    session.update({"_auth_user_id": user, "visits": 0})
    session.save()
    assert visit(session.session_key, round_trips) == [COUNT]


def test_a_count_of_a_session_with_the_longest_expiry_is_one_round_trip(
    redis_client, round_trips
):
    session = signed_in("1", visits=0)
    session.set_expiry(10**11 - 3600)
    session.save()
    assert visit(session.session_key, round_trips) == [COUNT]


@pytest.mark.parametrize("score", ["inf", "1e15", "another-primarys-clock"])
def test_a_count_whose_entry_is_scored_past_any_expiry_is_due_once(
    redis_client, round_trips, score
):
    session = signed_in("1", visits=0)
    now = redis_now(redis_client)
    # The last case: written by a primary whose clock ran an hour ahead, for
    # a session with the longest expiry the engine takes.
    value = now + 10**11 + 60 + 3600 if score.startswith("another") else float(score)
    redis_client.zadd(user_index(1), {session.key_hash: value})
    redis_key = session_redis_key(session.session_key)
    redis_client.hset(redis_key, "m:indexed", index_note(now + 1860, now - 61))
    for _ in range(3):
        trips = visit(session.session_key, round_trips)
    assert trips == [COUNT]


def test_an_increment_within_the_minute_leaves_the_index_alone(redis_client):
    session = signed_in("1", visits=0)
    score = index_score(redis_client, session) - 30
    redis_client.zadd(user_index(1), {session.key_hash: score})
    for _ in range(3):
        SessionStore(session.session_key).incr("visits")
    assert index_score(redis_client, session) == score


def test_listing_returns_the_fields_asked_for():
    signed_in("1", _ip="203.0.113.7", _device="Firefox on Linux")
    (entry,) = users.sessions_of("1", fields=["_ip", "_device", "_missing"])
    assert entry.data == {"_ip": "203.0.113.7", "_device": "Firefox on Linux"}


@pytest.mark.parametrize(
    "value", [b"{not json", b"[" * 100_000], ids=["not-json", "nested-too-deep"]
)
def test_a_field_that_is_not_json_lists_its_session_as_unreadable(
    value: bytes, redis_client: redis.Redis
):
    session = signed_in("1", _device="Firefox")
    redis_client.hset(session_redis_key(session.session_key), "d:_device", value)
    (entry,) = users.sessions_of("1", fields=["_device"])
    assert entry.key_hash == session.key_hash
    assert entry.readable is False


def test_a_member_whose_session_vanished_is_pruned_when_listed(
    redis_client: redis.Redis,
):
    kept, gone = signed_in("1"), signed_in("1")
    redis_client.delete(session_redis_key(gone.session_key or ""))
    assert listed("1") == {kept.key_hash}
    assert redis_client.zcard(user_index(1)) == 1


def test_a_member_whose_expiry_passed_is_pruned_on_the_next_write(
    redis_client: redis.Redis,
):
    redis_client.zadd(user_index(1), {"expired": redis_now(redis_client) - 1})
    signed_in("1")
    assert b"expired" not in redis_client.zrange(user_index(1), 0, -1)


def test_a_member_that_names_another_users_session_is_not_listed(
    redis_client: redis.Redis,
):
    theirs = signed_in("2")
    redis_client.zadd(user_index(1), {theirs.key_hash: redis_now(redis_client) + 60})
    assert listed("1") == set()
    assert users.end_sessions("1", only=[theirs.key_hash]) == 0
    assert listed("2") == {theirs.key_hash}


def test_the_index_expires_a_minute_after_its_last_session(redis_client):
    signed_in("1")
    assert 1790 + 60 < redis_client.ttl(user_index(1)) <= 1800 + 60


def test_listing_is_two_round_trips_however_many_users_exist(round_trips):
    for user in range(20):
        signed_in(str(user))
    round_trips.clear()
    users.sessions_of("3")
    # The index, then the sessions it names, all declared to the script.
    assert round_trips == ["ZRANGE", "EVALSHA"]


class TestEndingSessions:
    def test_one_session_ends_and_the_others_stay(self):
        first, second = signed_in("1"), signed_in("1")
        assert users.end_sessions("1", only=[first.key_hash]) == 1
        assert not SessionStore().exists(first.session_key or "")
        assert listed("1") == {second.key_hash}

    def test_all_but_the_kept_ones_end(self):
        first, second, third = signed_in("1"), signed_in("1"), signed_in("1")
        assert users.end_sessions("1", keep=[second.key_hash]) == 2
        assert listed("1") == {second.key_hash}
        assert not SessionStore().exists(third.session_key or "")
        assert not SessionStore().exists(first.session_key or "")

    def test_all_end(self):
        signed_in("1"), signed_in("1")
        assert users.end_sessions("1") == 2
        assert listed("1") == set()

    def test_a_session_of_another_user_is_never_ended(self):
        mine, theirs = signed_in("1"), signed_in("2")
        assert users.end_sessions("1", only=[theirs.key_hash]) == 0
        assert SessionStore().exists(theirs.session_key or "")
        assert listed("1") == {mine.key_hash}

    def test_an_ended_session_is_marked_as_ended(self):
        session, other = signed_in("1"), signed_in("1")
        users.end_sessions("1", only=[session.key_hash])
        assert users.was_ended(session.session_key or "")
        assert not users.was_ended(other.session_key or "")

    def test_ending_named_sessions_is_one_round_trip(self, round_trips):
        session, _ = signed_in("1"), signed_in("1")
        round_trips.clear()
        users.end_sessions("1", only=[session.key_hash])
        assert round_trips == ["EVALSHA"]

    def test_ending_all_but_some_reads_the_index_first(self, round_trips):
        session, _ = signed_in("1"), signed_in("1")
        round_trips.clear()
        users.end_sessions("1", keep=[session.key_hash])
        assert round_trips == ["ZRANGE", "EVALSHA"]


def test_user_of_names_the_user_of_a_session():
    session = signed_in("42")
    assert users.user_of(session.key_hash or "") == "42"


@pytest.mark.parametrize(
    "value", [b"42", b'""', b"null"], ids=["number", "empty", "null"]
)
def test_user_of_a_session_whose_user_is_no_id_login_stores_is_nobody(
    value: bytes, redis_client: redis.Redis
):
    session = signed_in("42")
    redis_client.hset(session_redis_key(session.session_key), "d:_auth_user_id", value)
    assert users.user_of(session.key_hash or "") is None


@pytest.mark.parametrize(
    "value", [b"{not json", b"[" * 100_000], ids=["not-json", "nested-too-deep"]
)
def test_user_of_a_session_whose_user_is_not_json_is_nobody(
    value: bytes, redis_client: redis.Redis
):
    session = signed_in("42")
    redis_client.hset(session_redis_key(session.session_key), "d:_auth_user_id", value)
    assert users.user_of(session.key_hash or "") is None


def test_count_sessions_counts_session_hashes_only():
    signed_in("1"), signed_in("1")
    anonymous = SessionStore()
    anonymous["visits"] = 1
    anonymous.save()
    users.end_sessions("1", only=[])
    assert users.count_sessions() == 3


def test_count_sessions_leaves_out_what_a_count_left_on_a_dead_key():
    ended = signed_in("1", visits=1)
    SessionStore(ended.session_key).delete()
    assert SessionStore(ended.session_key).load_and_incr("visits") is None
    signed_in("2")
    assert users.count_sessions() == 1


@pytest.mark.django_db
def test_the_site_keeps_its_round_trip_counts_with_the_index(client, round_trips, user):
    from tests.conftest import PASSWORD

    client.post("/login/", {"username": "ada", "password": PASSWORD})
    client.get("/test/set/x/")
    client.post("/logout/")
    assert round_trips == ["EVALSHA", "HGETALL", "EVALSHA", "EVALSHA"]


# The async twins, on the engine's async client.


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis")
async def test_asessions_of_lists_what_sessions_of_lists():
    first, second = signed_in("1", visits=3), signed_in("1")
    listed_async = await users.asessions_of("1", fields=["visits"])
    assert listed_async == users.sessions_of("1", fields=["visits"])
    assert {entry.key_hash for entry in listed_async} == {
        first.key_hash,
        second.key_hash,
    }


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis")
async def test_aend_sessions_ends_all_but_the_kept_one():
    kept, ended = signed_in("1"), signed_in("1")
    assert await users.aend_sessions("1", keep=[kept.key_hash]) == 1
    assert listed("1") == {kept.key_hash}
    assert not SessionStore().exists(ended.session_key)


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis")
async def test_aend_sessions_ends_only_the_named_one():
    kept, ended = signed_in("1"), signed_in("1")
    assert await users.aend_sessions("1", only=[ended.key_hash]) == 1
    assert listed("1") == {kept.key_hash}


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis")
async def test_awas_ended_tells_an_ended_session_from_a_live_one():
    kept, ended = signed_in("1"), signed_in("1")
    users.end_sessions("1", only=[ended.key_hash])
    assert await users.awas_ended(ended.session_key)
    assert not await users.awas_ended(kept.session_key)


def test_count_sessions_counts_them_on_every_server():
    for _ in range(30):
        stored_key()
    assert users.count_sessions() == 30
