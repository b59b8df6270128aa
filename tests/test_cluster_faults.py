"""
Redis Cluster faults on a live 3+3 cluster of its own per test: the whole
cluster down, a primary down, a slot half moved, a script missing on one
node. What a hostile review of the Cluster support found, kept as its spec.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import override_settings
from redis.crc import key_slot

from redis_hash_sessions import connection, keys
from redis_hash_sessions.cluster import ClusterConnectionFactory
from redis_hash_sessions.engine import SessionStore
from redis_hash_sessions.exceptions import SessionStoreUnavailable
from tests.topologies import ClusterSet

pytestmark = pytest.mark.faults


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    nodes = ClusterSet(tmp_path / "redis")
    nodes.start()
    try:
        with override_settings(CACHES=nodes.caches()):
            ClusterConnectionFactory._clusters.clear()
            connection.get_connection.forget()
            yield nodes
    finally:
        ClusterConnectionFactory._clusters.clear()
        connection.get_connection.forget()
        nodes.stop()


def _stop_all(cluster: ClusterSet) -> None:
    for server in cluster.servers:
        server.kill()


def test_whole_cluster_down_answers_503_not_500(cluster: ClusterSet) -> None:
    """A cluster that is down is an outage (503), like one Redis that is down."""
    session = SessionStore()
    session["a"] = 1
    session.save()
    key = session.session_key
    _stop_all(cluster)
    # A request that reads the session: must be SessionStoreUnavailable (503).
    with pytest.raises(SessionStoreUnavailable):
        SessionStore(key).load()


def test_worker_started_while_cluster_unreachable_answers_503(
    cluster: ClusterSet,
) -> None:
    """A worker whose first request meets an unreachable cluster must answer 503."""
    key = keys.new_session_key()
    _stop_all(cluster)
    ClusterConnectionFactory._clusters.clear()
    connection.get_connection.forget()
    with (
        override_settings(CACHES=cluster.caches()),  # a fresh django-redis client
        pytest.raises(SessionStoreUnavailable),
    ):
        SessionStore(key).load()


def test_async_first_use_while_cluster_unreachable_answers_503(
    cluster: ClusterSet,
) -> None:
    SessionStore().save()  # the sync client is mapped
    _stop_all(cluster)

    async def first_request() -> None:
        with pytest.raises(SessionStoreUnavailable):
            await SessionStore(keys.new_session_key()).aload()

    asyncio.run(first_request())


@override_settings(SESSION_REDIS_WAIT_REPLICAS=1, SESSION_REDIS_WAIT_TIMEOUT=1.0)
def test_waited_write_that_meets_ask_leaves_the_slot_map_alone(
    cluster: ClusterSet,
) -> None:
    """An ASK is a one-off redirection: the slot stays mapped to its owner."""
    names = keys.names()
    tag = keys.user_tag("42")
    gone = names.session(tag + "A" * 43)  # absent: the source answers ASK
    slot = key_slot(gone.encode())
    source = cluster._owner(slot)
    target = next(p for p in cluster.primaries if p is not source)
    source_id, target_id = cluster._node_id(source), cluster._node_id(target)
    conn = connection.get_connection()
    client = conn.client
    client.ping()
    assert client.nodes_manager.slots_cache[slot][0].port == source.port
    cluster._command(target, "SETSLOT", slot, "IMPORTING", source_id)
    cluster._command(source, "SETSLOT", slot, "MIGRATING", target_id)
    # A logout's delete (auth: waited) of a key the source does not hold.
    conn.delete([gone], auth=True)
    after = client.nodes_manager.slots_cache[slot][0].port
    assert after == source.port, (
        f"slot {slot} now mapped to the importing node {after}; "
        f"the source {source.port} still owns it"
    )


@pytest.mark.django_db
def test_site_answers_503_not_500_when_the_whole_cluster_is_down(
    cluster: ClusterSet,
) -> None:
    from django.conf import settings
    from django.test import Client

    browser = Client(raise_request_exception=False)
    first = browser.get("/visits/", headers={"Accept": "application/json"})
    assert first.status_code == 200
    assert settings.SESSION_COOKIE_NAME in browser.cookies
    _stop_all(cluster)
    second = browser.get("/visits/", headers={"Accept": "application/json"})
    assert second.status_code == 503, second.status_code


@pytest.mark.django_db
def test_readyz_stays_ready_while_one_primary_fails_over(cluster: ClusterSet) -> None:
    """
    While a primary is down the other primaries' sessions answer 200: a
    readiness probe that turned every worker unready meanwhile would pull the
    whole site out of the load balancer.
    """
    from django.test import Client

    browser = Client(raise_request_exception=False)
    assert browser.get("/readyz").status_code == 200
    cluster.primaries[0].kill()
    answer = browser.get("/readyz")
    assert answer.status_code == 200, (answer.status_code, answer.content)


@pytest.mark.django_db
@pytest.mark.parametrize("user", ["default", "least-privileged"])
def test_readyz_stays_ready_while_the_primary_it_probes_fails_over(
    cluster: ClusterSet, user: str, settings
) -> None:
    """
    Its probe's keys are all in one slot: another node answering is enough,
    for the default user and for one with only the README's rules.
    """
    from django.test import Client

    from sessionsite import health
    from tests.redis_hash_sessions.test_acl import CLUSTER_NEEDED, NEEDED

    if user != "default":
        for server in cluster.servers:
            server.client().acl_setuser(
                "web",
                enabled=True,
                passwords=["+pw"],
                keys=[f"{settings.CACHES['default']['KEY_PREFIX']}:*"],
                commands=[*NEEDED, *CLUSTER_NEEDED],
            )
        caches = cluster.caches()
        location = caches["default"]["LOCATION"]
        caches["default"]["LOCATION"] = location.replace("://", "://web:pw@", 1)
        settings.CACHES = caches
    browser = Client(raise_request_exception=False)
    assert browser.get("/readyz").status_code == 200
    cluster.node_for_key(keys.names().index(health.PROBE_USER)).kill()
    answer = browser.get("/readyz")
    assert answer.status_code == 200, (answer.status_code, answer.content)


@pytest.mark.django_db
def test_readyz_answers_503_not_500_when_the_cluster_is_down(
    cluster: ClusterSet,
) -> None:
    from django.test import Client

    browser = Client(raise_request_exception=False)
    assert browser.get("/readyz").status_code == 200
    _stop_all(cluster)
    assert browser.get("/readyz").status_code == 503


@pytest.mark.django_db
def test_a_login_that_fails_on_the_users_primary_leaves_the_visitor_usable(
    cluster: ClusterSet, user
) -> None:
    """
    On a cluster the leave (the anonymous key's primary) and the create (the
    user's primary) are on two primaries: kill the user's primary, sign in
    from an anonymous session that lives elsewhere. The login answers 503;
    the visitor's session is put back and goes on (its count with it), not
    400 for the moved mark leave.lua left.
    """
    from django.conf import settings
    from django.test import Client

    from tests.conftest import PASSWORD

    tag = "{" + keys.user_tag(str(user.pk)) + "}"
    users_primary = cluster.node_for_key(tag)
    json = {"Accept": "application/json"}
    while True:  # an anonymous session on another primary
        browser = Client(raise_request_exception=False)
        assert browser.get("/visits/", headers=json).status_code == 200
        cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
        if cluster.node_for_key("{" + cookie[:3] + "}") is not users_primary:
            break
    for (
        primary
    ) in cluster.primaries:  # every script known everywhere, as in a warm site
        for lua in connection.SCRIPTS:
            primary.client().script_load(lua)
    users_primary.kill()
    answer = browser.post("/login/", {"username": "ada", "password": PASSWORD})
    assert answer.status_code == 503
    cluster.wait_for_failover(users_primary)  # the user's slots serve again
    for _ in range(5):  # the first command after a promotion may meet the dead node
        visit = browser.get("/visits/", headers=json)
        if visit.status_code != 503:
            break
    assert visit.status_code == 200, visit.status_code
    assert visit.json() == {"visits": 2, "username": None}


def test_a_sign_in_while_its_users_slot_moves_answers_503(cluster: ClusterSet) -> None:
    """
    A sign-in (create and index) of a user whose slot is half moved meets
    TRYAGAIN for as long as the move lasts: its new key is on neither node,
    its index on one. It answers 503, as the README says, never 500.
    """
    tag = keys.user_tag("42")
    slot = key_slot(("{" + tag + "}").encode())
    source = cluster._owner(slot)
    target = next(p for p in cluster.primaries if p is not source)
    source_id, target_id = cluster._node_id(source), cluster._node_id(target)
    # The user already has a session (its index exists, on the source).
    first = SessionStore()
    first[SESSION_KEY] = "42"
    first.save()
    cluster._command(target, "SETSLOT", slot, "IMPORTING", source_id)
    cluster._command(source, "SETSLOT", slot, "MIGRATING", target_id)
    session = SessionStore()
    session[SESSION_KEY] = "42"
    with pytest.raises(SessionStoreUnavailable):
        session.save()  # a sign-in from no session: one create script


def test_a_script_unknown_to_one_primary_does_not_need_every_primary(
    cluster: ClusterSet,
) -> None:
    """
    A promoted replica has no scripts (replicas never get the script cache):
    loading one where it is missing must not need every primary up.
    """
    alive, _, doomed = cluster.primaries
    session = None
    while True:  # an anonymous session on `alive`
        candidate = SessionStore()
        candidate["a"] = 1
        candidate.save()
        if cluster.node_for_key("{" + candidate.session_key[:3] + "}") is alive:
            session = candidate
            break
    alive.client().script_flush()  # as a promoted replica has no scripts
    doomed.kill()
    again = SessionStore(session.session_key)
    again["a"] = 2
    again.save()  # its own primary is healthy
    assert SessionStore(session.session_key)["a"] == 2
