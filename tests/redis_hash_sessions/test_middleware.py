"""The session cookie and the middleware around the engine."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.conf import settings
from django.test import AsyncClient, Client

from redis_hash_sessions import keys
from redis_hash_sessions.engine import SessionStore
from tests.conftest import PASSWORD, stored_key

COOKIE = settings.SESSION_COOKIE_NAME


def tampered_id(value: str) -> str:
    return ("x" if value[0] != "x" else "y") + value[1:]


def flip_last(value: str) -> str:
    return value[:-1] + ("A" if value[-1] != "A" else "B")


BAD_COOKIES = {
    "forged": lambda: keys.new_session_key()[:33] + "A" * 43,
    "tampered id": lambda: tampered_id(stored_key()),
    "tampered signature": lambda: flip_last(stored_key()),
    "truncated": lambda: stored_key()[:-5],
    "unsigned id": lambda: stored_key()[: keys.ID_LENGTH],
    "oversized": lambda: "a" * 4096,
    "non-ascii": lambda: "é" * keys.SESSION_KEY_LENGTH,
    "empty": lambda: "",
}


@pytest.mark.parametrize("kind", BAD_COOKIES)
def test_a_bad_cookie_is_dropped_before_any_redis_call(client, round_trips, kind):
    cookie = BAD_COOKIES[kind]()
    round_trips.clear()
    response = client.get("/test/read/", headers={"cookie": f"{COOKIE}={cookie}"})
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {}
    assert round_trips == []


@pytest.mark.parametrize("kind", BAD_COOKIES)
def test_a_bad_cookie_is_deleted_in_the_response(client, kind):
    cookie = BAD_COOKIES[kind]()
    response = client.get("/test/read/", headers={"cookie": f"{COOKIE}={cookie}"})
    assert response.cookies[COOKIE].value == ""
    assert response.cookies[COOKIE]["max-age"] == 0


def test_a_bad_cookie_is_never_adopted_as_a_session_id(client):
    cookie = keys.new_session_key()[:33] + "A" * 43
    client.get("/test/set/a/", headers={"cookie": f"{COOKIE}={cookie}"})
    assert client.cookies[COOKIE].value != cookie
    assert keys.verify(client.cookies[COOKIE].value) == client.cookies[COOKIE].value


def test_the_cookie_carries_the_signed_session_key(client):
    client.get("/test/set/a/")
    value = client.cookies[COOKIE].value
    assert keys.verify(value) == value
    assert SessionStore(value)["a"] is True


def test_a_cookie_signed_with_a_fallback_secret_is_re_signed(client, settings):
    client.get("/test/set/a/")
    old = client.cookies[COOKIE].value
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-next-secret-key"
    response = client.get("/test/read/")
    assert response.json() == {"a": True}
    new = response.cookies[COOKIE].value
    assert new[: keys.ID_LENGTH] == old[: keys.ID_LENGTH]
    assert keys.verify(new) == new


def test_a_response_that_read_the_session_varies_on_cookie(client):
    client.get("/test/set/a/")
    response = client.get("/test/read/")
    assert "Cookie" in response["Vary"]


def test_an_unchanged_session_sets_no_cookie(client):
    client.get("/test/set/a/")
    response = client.get("/test/read/")
    assert COOKIE not in response.cookies


def test_a_5xx_response_does_not_save_the_session(client):
    client.get("/test/set/a/")
    response = client.get("/test/fail/")
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert client.get("/test/read/").json() == {"a": True}


@pytest.mark.django_db
def test_a_session_emptied_by_flush_loses_its_cookie(client):
    client.get("/test/set/a/")
    response = client.post("/logout/")
    assert response.cookies[COOKIE].value == ""


def test_the_cookie_expiry_follows_the_session(client):
    response = client.get("/test/set/a/")
    assert response.cookies[COOKIE]["max-age"] == settings.SESSION_COOKIE_AGE


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis", "close_async_db")
async def test_the_async_path_logs_in_counts_and_logs_out(user):
    client = AsyncClient()
    response = await client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    first = await client.get("/visits/", headers={"accept": "application/json"})
    second = await client.get("/visits/", headers={"accept": "application/json"})
    assert (first.json(), second.json()) == (
        {"visits": 1, "username": "ada"},
        {"visits": 2, "username": "ada"},
    )
    await client.post("/logout/")
    third = await client.get("/visits/", headers={"accept": "application/json"})
    assert third.json() == {"visits": 1, "username": None}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_redis", "close_async_db")
async def test_the_async_path_saves_with_the_async_client(user, round_trips):
    client = AsyncClient()
    await client.get("/test/set/a/")
    assert round_trips == ["EVALSHA"]
    assert SessionStore(client.cookies[COOKIE].value)["a"] is True


def test_sync_client_view_of_the_same_session(client: Client):
    client.get("/test/set/a/")
    assert client.session["a"] is True
