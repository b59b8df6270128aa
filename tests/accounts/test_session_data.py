"""Session fields of the wrong type: never a 500, one warning, a fresh session."""

from __future__ import annotations

import logging
from http import HTTPStatus

import pytest
from django.conf import settings
from django.test import Client

from redis_hash_sessions.engine import SessionStore
from tests.conftest import PASSWORD, session_redis_key

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
WRONG = [
    ("visits", '"abc"'),
    ("visits", "1.5"),
    ("visits", "true"),
    ("visits", "null"),
    ("visits", "1e309"),
    ("visits", "1" + "0" * 400),
    ("visits", str(2**63 - 1)),
    ("visits", "-1"),
    ("last_active", '"abc"'),
    ("last_active", "null"),
    ("signed_in_at", '"abc"'),
    ("signed_in_at", '"2026-01-01T00:00:00"'),
    ("_session_expiry", '"abc"'),
    ("_session_expiry", '"2026-01-01T00:00:00"'),
    ("_auth_user_id", '"abc"'),
    ("_auth_user_id", "[1]"),
    ("signed_in_at", '"9999-12-31T23:59:59-14:00"'),
    ("signed_in_at", '"9999-12-31T23:59:59+00:00"'),
    ("_session_expiry", '"0001-01-01T00:00:00+14:00"'),
    ("_auth_user_backend", '"axes.backends.AxesStandaloneBackend"'),
    ("_auth_user_backend", '"no.such.Backend"'),
]


def signed_in() -> Client:
    client = Client()
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    return client


def corrupt(redis_client, client: Client, field: str, raw: str) -> None:
    redis_key = session_redis_key(client.cookies[COOKIE].value)
    redis_client.hset(redis_key, f"d:{field}", raw)


def warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "django.security.SuspiciousSession"
    ]


@pytest.mark.parametrize(("field", "raw"), WRONG)
def test_a_signed_in_session_with_a_wrong_type_is_ended(user, redis_client, field, raw):
    client = signed_in()
    corrupt(redis_client, client, field, raw)
    cookie = client.cookies[COOKIE].value
    response = client.get("/dashboard/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/login/")
    assert not SessionStore().exists(cookie)


@pytest.mark.parametrize(("field", "raw"), WRONG)
def test_a_wrong_type_is_one_suspicious_session_warning(
    user, redis_client, caplog, field, raw
):
    client = signed_in()
    corrupt(redis_client, client, field, raw)
    with caplog.at_level(logging.WARNING):
        client.get("/dashboard/")
    assert warnings(caplog) == [f"Session data corrupted: wrong type in {field}"]


@pytest.mark.parametrize("raw", ['"abc"', "1.5", "1e309", "1" + "0" * 400])
def test_an_anonymous_count_of_the_wrong_type_starts_afresh(redis_client, raw):
    client = Client()
    client.get("/visits/")
    corrupt(redis_client, client, "visits", raw)
    response = client.get("/visits/", headers={"accept": "application/json"})
    assert response.json() == {"visits": 1, "username": None}


@pytest.mark.parametrize(("field", "raw"), [w for w in WRONG if w[0] != "visits"])
def test_a_visit_counted_before_a_wrong_type_was_found_counts_afresh(
    redis_client, field, raw
):
    client = Client()
    client.get("/visits/")
    corrupt(redis_client, client, field, raw)
    response = client.get("/visits/", headers={"accept": "application/json"})
    assert response.json() == {"visits": 1, "username": None}


@pytest.mark.parametrize(("field", "raw"), WRONG)
def test_logging_out_of_a_session_with_a_wrong_type_works(
    user, redis_client, field, raw
):
    client = signed_in()
    corrupt(redis_client, client, field, raw)
    response = client.post("/logout/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/login/?logged_out=1"


@pytest.mark.parametrize(("field", "raw"), WRONG)
def test_logging_in_over_a_session_with_a_wrong_type_works(
    user, redis_client, field, raw
):
    client = signed_in()
    corrupt(redis_client, client, field, raw)
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    assert client.get("/dashboard/").status_code == HTTPStatus.OK


GARBAGE_METADATA = [
    ("m:expiry", raw) for raw in ("nan", "@nan", "-nan", "inf", "abc", "1e400", "0x10")
] + [
    ("m:indexed", raw) for raw in ("abc", "nan", "inf", "-inf", "", "1e400")
] + [("m:created", "")]  # fmt: skip


@pytest.mark.parametrize("signed", [True, False], ids=["signed-in", "anonymous"])
@pytest.mark.parametrize(("field", "raw"), GARBAGE_METADATA)
def test_garbage_in_the_engines_own_fields_never_answers_500(
    user, redis_client, field, raw, signed
):
    client = signed_in() if signed else Client()
    client.get("/visits/")
    redis_key = session_redis_key(client.cookies[COOKIE].value)
    redis_client.hset(redis_key, field, raw)
    for page in ("/visits/", "/dashboard/", "/visits/"):
        assert client.get(page).status_code < 500


def test_an_expiry_rule_that_is_not_a_number_counts_each_visit_once(redis_client):
    client = Client()
    client.get("/visits/")
    redis_key = session_redis_key(client.cookies[COOKIE].value)
    redis_client.hset(redis_key, "m:expiry", "nan")
    json = {"accept": "application/json"}
    assert client.get("/visits/", headers=json).json()["visits"] == 2
    assert client.get("/visits/", headers=json).json()["visits"] == 3
