"""
A Redis user of the engine's own: the rights it needs, and a clear 503 without them.

On one Redis, behind Sentinel and on a cluster, with the rules the README's
Deploy section lists; writes wait for a replica where there are replicas,
as the site's settings have them.
"""

from __future__ import annotations

import gc
import secrets
from collections.abc import Callable, Iterator
from http import HTTPStatus

import pytest

from tests.conftest import PASSWORD, engine_errors
from tests.topologies import ClusterSet, Topology

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("each_refusal_logged_afresh"),
]

# The README's list: the rules for every topology, then a cluster's own.
NEEDED = [
    "+@read", "+@write", "+@transaction", "-@dangerous", "-@scripting",
    "+eval", "+evalsha", "+script|load", "+time", "+select", "+wait",
]  # fmt: skip
CLUSTER_NEEDED = ["+cluster|slots", "+command", "+asking"]


@pytest.fixture
def as_web(redis_topology: Topology, settings) -> Iterator[Callable[..., None]]:
    """Have the site sign in to Redis as "web", with the ACL rules given."""
    servers = redis_topology.servers

    def sign_in_as_web(*rules: str) -> None:
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        # A new password each time: django-redis keeps a client per URL (a
        # cluster's mapped once), which must not outlive the rules.
        password = secrets.token_hex(8)
        for server in servers:
            server.client().acl_setuser(
                "web",
                enabled=True,
                reset_passwords=True,
                passwords=[f"+{password}"],
                keys=[f"{prefix}:*"],
                commands=list(rules),
            )
        # Database 1 on one Redis, so that SELECT is needed; a cluster has 0.
        caches = redis_topology.caches(db=1)
        location = caches["default"]["LOCATION"]
        credentials = f"://web:{password}@"
        caches["default"]["LOCATION"] = location.replace("://", credentials, 1)
        settings.CACHES = caches
        settings.SESSION_REDIS_WAIT_REPLICAS = 1 if redis_topology.replicas else 0

    yield sign_in_as_web
    for server in servers:
        server.client().acl_deluser("web")


def needed(topology: Topology) -> list[str]:
    return NEEDED + (CLUSTER_NEEDED if isinstance(topology, ClusterSet) else [])


def test_the_site_works_for_a_user_with_only_what_the_readme_lists(
    client, user, as_web, redis_topology
):
    as_web(*needed(redis_topology))
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    assert client.get("/visits/").context["visits"] == 1
    assert client.get("/visits/").context["visits"] == 2
    assert client.get("/dashboard/").status_code == HTTPStatus.OK
    assert client.post("/sessions/end-others/").status_code == HTTPStatus.FOUND
    assert client.post("/logout/").status_code == HTTPStatus.FOUND


def test_readyz_answers_ok_to_a_user_with_only_what_the_readme_lists(
    client, as_web, redis_topology
):
    as_web(*needed(redis_topology))
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["redis"] == "ok"


# What a request's writes send, at the top and in their scripts.
@pytest.mark.parametrize(
    "rule",
    ["-time", "-evalsha", "-script|load", "-hset", "-hincrby", "-expire", "-zadd"],
)
def test_readyz_calls_a_user_refused_what_the_engine_sends_refused(
    client, as_web, redis_topology, rule
):
    # HELLO, which no ACL refuses, answers; the probe does not.
    as_web(*needed(redis_topology), rule)
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["redis"] == "refused"


@pytest.mark.parametrize(
    "rule",
    [
        # Not NOPERM: Redis and Valkey say it in words of their own.
        pytest.param("-time", id="to-a-script"),
        pytest.param("-evalsha", id="outright"),
    ],
)
def test_a_command_refused_is_a_503_at_sign_in(
    client, user, as_web, redis_topology, rule
):
    as_web(*needed(redis_topology), rule)
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert "Sign-in is unavailable right now" in response.content.decode()


def test_a_refusal_is_logged_once_saying_where_the_needs_are_listed(
    client, user, as_web, redis_topology, caplog
):
    as_web(*needed(redis_topology), "-evalsha")
    caplog.clear()
    for _ in range(3):
        client.post("/login/", {"username": "ada", "password": PASSWORD})
    [line] = engine_errors(caplog)
    assert line.startswith(
        "Redis refuses the session engine a command or a key (an ACL, or a "
        "command renamed away): see the README's Deploy for what it needs."
    )
    assert line.endswith("no permissions to run the 'evalsha' command")


def test_another_refusal_is_logged_too(client, user, as_web, redis_topology, caplog):
    as_web(*needed(redis_topology), "-evalsha")
    client.post("/login/", {"username": "ada", "password": PASSWORD})
    as_web(*needed(redis_topology), "-time")
    caplog.clear()
    client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert len(engine_errors(caplog)) == 1


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("SCRIPT", "FLUSH"),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "DELETE", "library"),
        ("FCALL", "function", "0"),
        ("CONFIG", "SET", "maxmemory", "1"),
    ],
    ids=lambda command: " ".join(command),
)
def test_the_readme_user_cannot_touch_what_the_whole_server_shares(
    redis_topology, as_web, command
):
    as_web(*needed(redis_topology))
    [server, *_] = redis_topology.servers
    # DRYRUN answers with the refusal, not an error.
    reply = server.client().execute_command("ACL", "DRYRUN", "web", *command)
    assert b"has no permissions to run" in reply


def test_a_refusal_when_a_user_is_deactivated_is_logged_as_one(
    client, user, as_web, redis_topology, django_capture_on_commit_callbacks, caplog
):
    as_web(*needed(redis_topology))
    client.post("/login/", {"username": "ada", "password": PASSWORD})
    as_web(*needed(redis_topology), "-evalsha")
    caplog.clear()
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()
    [line] = [r.getMessage() for r in caplog.records if r.name == "accounts.auth"]
    assert line.startswith(
        f"could not end the sessions of user id={user.pk} (they are refused until "
        "they expire): Redis refuses the session engine a command or a key"
    )


# redis-py leaves the sockets of a cluster it could not map to the garbage
# collector: collected here, where their warnings are expected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("rule", "logged"),
    [
        ("-cluster|slots", "Redis Cluster cannot be mapped"),
        ("-command", "Redis refuses the session engine a command or a key"),
    ],
)
def test_a_cluster_rule_taken_away_is_refused_at_readyz_and_sign_in(
    client, user, as_web, redis_topology, rule, logged, caplog
):
    if not isinstance(redis_topology, ClusterSet):
        pytest.skip("a cluster's own rules")
    as_web(*needed(redis_topology), rule)
    readiness = client.get("/readyz").json()["redis"]
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    gc.collect()
    assert readiness == "refused"
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    [line] = engine_errors(caplog)
    assert line.startswith(logged)
