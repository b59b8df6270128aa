"""Round trips to Redis per kind of request: exact counts, not timings."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import COUNT, PASSWORD, noted_entry, redis_now, session_redis_key

pytestmark = pytest.mark.django_db


def log_in(client: Client) -> None:
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302


def test_a_page_that_never_touches_the_session_sends_nothing(client, round_trips):
    client.get("/login/")
    assert round_trips == []


def test_login_from_no_session_is_one_round_trip(client, user, round_trips):
    log_in(client)
    assert round_trips == ["EVALSHA"]


def test_login_from_an_anonymous_session_with_data_is_three(client, user, round_trips):
    client.get("/visits/")
    round_trips.clear()
    log_in(client)
    # login() reads the session, cycle_key() renames it at once (the old key
    # must be gone when it returns), the response saves the login's fields.
    assert round_trips == ["HGETALL", "EVALSHA", "EVALSHA"]


def test_logging_in_again_as_the_same_user_is_three(client, user, round_trips):
    log_in(client)
    round_trips.clear()
    log_in(client)
    # The signed-in session is read and ended; the new one is created.
    assert round_trips == ["HGETALL", "DEL", "EVALSHA"]


def test_a_read_only_page_is_one_round_trip(client, user, round_trips):
    log_in(client)
    round_trips.clear()
    client.get("/")
    assert round_trips == ["HGETALL"]


def test_the_dashboard_reads_counts_and_lists_the_users_sessions_in_four(
    client, user, round_trips
):
    log_in(client)
    round_trips.clear()
    client.get("/dashboard/")
    # Listing reads the index, then the sessions it names: a script must be
    # given every key it touches, so it cannot find them itself.
    assert round_trips == ["HGETALL", "EVALSHA", "ZRANGE", "EVALSHA"]


def test_a_logged_in_visit_counts_and_reads_in_one(client, user, round_trips):
    log_in(client)
    round_trips.clear()
    response = client.get("/visits/", HTTP_ACCEPT="application/json")
    assert response.json() == {"visits": 1, "username": "ada"}
    # The count loads the session in the same transaction.
    assert round_trips == [COUNT]


def test_a_visit_that_finds_its_index_entry_due_has_the_save_move_it(
    client, user, round_trips, redis_client, settings
):
    log_in(client)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    key = session_redis_key(cookie)
    redis_client.hset(key, "m:indexed", 0)
    round_trips.clear()
    client.get("/visits/")
    assert round_trips == [COUNT, "EVALSHA"]
    expires = redis_now(redis_client) + redis_client.ttl(key)
    assert 0 <= noted_entry(redis_client.hget(key, "m:indexed")) - expires <= 60 + 1


def test_an_anonymous_visit_counts_and_reads_in_one(client, round_trips):
    client.get("/visits/")
    round_trips.clear()
    response = client.get("/visits/", HTTP_ACCEPT="application/json")
    assert response.json() == {"visits": 2, "username": None}
    assert round_trips == [COUNT]


def test_a_head_of_the_visits_page_only_reads(client, user, round_trips):
    log_in(client)
    client.get("/visits/")
    round_trips.clear()
    client.head("/visits/")
    assert round_trips == ["HGETALL"]


def test_a_page_that_reads_then_changes_the_session_is_two(client, round_trips):
    client.get("/test/set/first/")
    round_trips.clear()
    client.get("/test/set/second/")
    assert round_trips == ["HGETALL", "EVALSHA"]


def test_a_first_visit_creates_the_session_in_one(client, round_trips):
    client.get("/visits/")
    assert round_trips == ["EVALSHA"]


def test_logout_is_one_round_trip(client, user, round_trips):
    log_in(client)
    round_trips.clear()
    client.post("/logout/")
    assert round_trips == ["EVALSHA"]


def test_rolling_expiry_refreshes_an_unchanged_session_in_one_call(
    client, round_trips, settings
):
    settings.SESSION_SAVE_EVERY_REQUEST = True
    client.get("/test/set/first/")
    round_trips.clear()
    client.get("/test/read/")
    # The save script with no field to write: EXPIRE and the index's score.
    assert round_trips == ["HGETALL", "EVALSHA"]
