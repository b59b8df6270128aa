"""A Redis user with fewer rights than all: what the engine needs, and a clear 503."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from http import HTTPStatus

import pytest

from redis_hash_sessions import connection
from tests.conftest import PASSWORD, caches_for
from tests.redis_process import RedisProcess

pytestmark = pytest.mark.django_db

# What the README says the engine's Redis user needs (one Redis, no replicas
# waited for), on the keys under the cache's KEY_PREFIX.
NEEDED = ("+@read", "+@write", "+@transaction", "+@scripting", "+time")


@pytest.fixture
def as_web(
    redis_server: RedisProcess, settings, monkeypatch
) -> Iterator[Callable[..., None]]:
    """Have the site sign in to the tests' Redis as "web", with the ACL rules given."""

    def sign_in_as_web(*rules: str, keys: str = "*") -> None:
        redis_server.client().acl_setuser(
            "web", enabled=True, passwords=["+pw"], keys=[keys], commands=list(rules)
        )
        settings.CACHES = caches_for(f"redis://web:pw@127.0.0.1:{redis_server.port}/0")

    monkeypatch.setattr(connection.refused, "logged", False)
    yield sign_in_as_web
    redis_server.client().acl_deluser("web")


def test_the_site_works_for_a_user_with_only_what_the_engine_needs(
    client, user, as_web, settings
):
    as_web(*NEEDED, keys=f"{settings.CACHES['default']['KEY_PREFIX']}:*")
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    assert client.get("/visits/").status_code == HTTPStatus.OK
    assert client.get("/visits/").context["visits"] == 2
    assert client.get("/dashboard/").status_code == HTTPStatus.OK
    assert client.post("/sessions/end-others/").status_code == HTTPStatus.FOUND
    assert client.post("/logout/").status_code == HTTPStatus.FOUND
    assert client.get("/readyz").status_code == HTTPStatus.OK


def test_readyz_answers_ok_to_a_user_without_the_dangerous_commands(client, as_web):
    # INFO is one of them, and a least-privilege user often lacks them all.
    as_web("+@all", "-@dangerous")
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["redis"] == "ok"


def test_a_user_refused_scripts_is_told_sign_in_is_unavailable(client, user, as_web):
    as_web("+@all", "-@scripting")
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert "Sign-in is unavailable right now" in response.content.decode()


def test_a_refusal_is_logged_once_with_what_the_engine_needs(
    client, user, as_web, caplog
):
    as_web("+@all", "-@scripting")
    caplog.clear()
    for _ in range(3):
        client.post("/login/", {"username": "ada", "password": PASSWORD})
    [line] = [
        record.getMessage()
        for record in caplog.records
        if record.name == "redis_hash_sessions" and record.levelno >= logging.ERROR
    ]
    assert line.startswith(
        "Redis refuses the session engine a command or a key (an ACL, or a "
        "command renamed away): it needs @read, @write, @transaction, "
        "@scripting and TIME"
    )
    assert line.endswith("no permissions to run the 'evalsha' command")


def test_a_command_renamed_away_is_told_sign_in_is_unavailable(
    client, user, settings, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(connection.refused, "logged", False)
    server = RedisProcess(
        tmp_path / "redis", extra_args=["--rename-command", "EVALSHA", ""]
    )
    server.start()
    settings.CACHES = caches_for(server.url)
    try:
        response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    finally:
        server.stop()
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    [line] = [r.getMessage() for r in caplog.records if r.name == "redis_hash_sessions"]
    # Without the arguments Redis repeats, which may hold session data.
    assert line.endswith("Answering 503: unknown command 'EVALSHA'")
