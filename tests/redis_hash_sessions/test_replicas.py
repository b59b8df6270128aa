"""SESSION_REDIS_WAIT_REPLICAS: writes that wait for replicas in their round trip."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.test import Client

from redis_hash_sessions import keys
from redis_hash_sessions.exceptions import SessionStoreUnavailable
from tests.conftest import COUNT, PASSWORD, session_redis_key, user_index
from tests.redis_process import RedisProcess
from tests.topologies import ClusterSet, Topology

pytestmark = pytest.mark.django_db

COOKIE = django_settings.SESSION_COOKIE_NAME


def replicas_per_primary(topology: Topology) -> int:
    """Return how many replicas each primary has (a cluster has three primaries)."""
    primaries = len(getattr(topology, "primaries", [topology]))
    return len(topology.replicas) // primaries


def replicas_of(topology: Topology, redis_key: str) -> list[RedisProcess]:
    """Return the replicas of the primary that holds redis_key."""
    if isinstance(topology, ClusterSet):
        return [topology.replica_of(topology.node_for_key(redis_key))]
    return topology.replicas


def puts_back(topology: Topology) -> bool:
    """
    Return whether a failed sign-in puts the anonymous session it left back.

    On Redis Cluster the sign-in leaves the old key (another slot) and
    creates a new one; when the new one fails, the old goes back. Elsewhere
    the old key was renamed, and the sign-in's undo deletes it.
    """
    return isinstance(topology, ClusterSet)


def exists_on(replica: RedisProcess, redis_key: str) -> int:
    """Return EXISTS redis_key as the replica itself holds it."""
    pipe = replica.client().pipeline(transaction=False)
    # A cluster's replica redirects reads to its primary without READONLY;
    # a replica outside a cluster refuses READONLY, and needs none.
    pipe.execute_command("READONLY")
    pipe.exists(redis_key)
    return int(pipe.execute(raise_on_error=False)[-1])


@pytest.fixture
def replicated(redis_topology: Topology, settings) -> Topology:
    """Make sign-ins and sign-outs wait for every replica of their primary."""
    if not redis_topology.replicas:
        pytest.skip("this topology has no replicas")
    settings.SESSION_REDIS_WAIT_REPLICAS = replicas_per_primary(redis_topology)
    return redis_topology


def log_in(client: Client) -> int:
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    return response.status_code


def test_a_login_is_on_every_replica_when_its_response_leaves(client, user, replicated):
    assert log_in(client) == HTTPStatus.FOUND
    key = session_redis_key(client.cookies[COOKIE].value)
    replicas = replicas_of(replicated, key)
    assert [exists_on(replica, key) for replica in replicas] == [1] * len(replicas)


def test_a_login_that_waits_for_replicas_is_still_one_round_trip(
    client, user, replicated, round_trips
):
    assert log_in(client) == HTTPStatus.FOUND
    assert round_trips == ["EVALSHA+WAIT"]


def test_a_logout_waits_for_replicas_in_its_one_round_trip(
    client, user, replicated, round_trips
):
    log_in(client)
    key = session_redis_key(client.cookies[COOKIE].value)
    round_trips.clear()
    client.post("/logout/")
    assert round_trips == ["EVALSHA+WAIT"]
    replicas = replicas_of(replicated, key)
    assert [exists_on(replica, key) for replica in replicas] == [0] * len(replicas)


def test_a_visit_does_not_wait_by_default(client, user, replicated, round_trips):
    log_in(client)
    round_trips.clear()
    client.get("/visits/")
    assert round_trips == [COUNT]


def test_every_write_waits_when_asked(client, user, replicated, round_trips, settings):
    settings.SESSION_REDIS_WAIT_FOR = "writes"
    log_in(client)
    round_trips.clear()
    client.get("/visits/")
    assert round_trips == [COUNT + "+WAIT"]


def test_a_login_that_too_few_replicas_confirm_answers_503(
    client, user, redis_topology, settings, redis_client
):
    settings.SESSION_REDIS_WAIT_REPLICAS = len(redis_topology.replicas) + 1
    settings.SESSION_REDIS_WAIT_TIMEOUT = 0.05
    assert log_in(client) == HTTPStatus.SERVICE_UNAVAILABLE
    assert COOKIE not in client.cookies


def test_a_script_missing_after_a_failover_is_loaded_again(
    client, user, replicated, redis_client, round_trips
):
    redis_client.script_flush()
    assert log_in(client) == HTTPStatus.FOUND
    assert round_trips == ["EVALSHA+WAIT", "SCRIPT LOAD", "EVALSHA+WAIT"]


def test_an_unconfirmed_login_leaves_no_session_and_no_stuck_cookie(
    client, user, redis_topology, settings, redis_client
):
    client.get("/visits/")
    settings.SESSION_REDIS_WAIT_REPLICAS = len(redis_topology.replicas) + 1
    settings.SESSION_REDIS_WAIT_TIMEOUT = 0.05
    assert log_in(client) == HTTPStatus.SERVICE_UNAVAILABLE
    assert redis_client.zcard(user_index(user.pk)) == 0
    left = [k for k in redis_client.scan_iter() if b":session:" in k]
    assert len(left) == (1 if puts_back(redis_topology) else 0)
    # The old cookie's session moved before the login failed: it goes on
    # (on a cluster, put back) or starts afresh, never with 400 for the
    # moved mark's 30 seconds, never signed in.
    response = client.get("/visits/", headers={"Accept": "application/json"})
    visits = 2 if puts_back(redis_topology) else 1
    assert response.json() == {"visits": visits, "username": None}


def test_a_password_change_does_not_wait_for_replicas(
    client, user, replicated, round_trips
):
    # Its new key is no sign-in: undoing it unconfirmed would sign the user
    # out, so it takes the replication lag's risk (README, Redis Sentinel).
    log_in(client)
    round_trips.clear()
    response = client.post(
        "/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a new and long passphrase",
            "new_password2": "a new and long passphrase",
        },
    )
    assert response.status_code == HTTPStatus.FOUND
    assert round_trips == ["HGETALL", "ZRANGE", "EVALSHA", "EVALSHA"]


def unconfirmed(settings, topology: Topology) -> None:
    """Make every write wait for more replicas than the topology has."""
    settings.SESSION_REDIS_WAIT_FOR = "writes"
    settings.SESSION_REDIS_WAIT_REPLICAS = len(topology.replicas) + 1
    settings.SESSION_REDIS_WAIT_TIMEOUT = 0.05


def test_an_unconfirmed_ordinary_save_keeps_the_session(
    client, user, redis_topology, settings
):
    log_in(client)
    unconfirmed(settings, redis_topology)
    assert client.get("/test/set/theme/").status_code == 503
    settings.SESSION_REDIS_WAIT_REPLICAS = 0
    response = client.get("/visits/", headers={"Accept": "application/json"})
    assert response.json()["username"] == "ada"


def test_an_unconfirmed_rotation_that_lost_its_race_leaves_the_winners_mark(
    redis_topology, settings, redis_client
):
    from redis_hash_sessions.engine import SessionStore

    key = SessionStore(session_key=None)
    key["a"] = 1
    key.save()
    old = key.session_key
    loser, winner = SessionStore(old), SessionStore(old)
    assert loser.get("a") == winner.get("a") == 1  # both loaded first
    winner.cycle_key()
    unconfirmed(settings, redis_topology)
    loser[SESSION_KEY] = "1"  # a sign-in: the kind of write that is undone
    with pytest.raises(SessionStoreUnavailable):
        loser.cycle_key()
    settings.SESSION_REDIS_WAIT_REPLICAS = 0
    later = SessionStore(old)
    later.load()
    assert later.moved


def renamed_back(
    settings,
    topology: Topology,
    *,
    data: dict[str, object] | None = None,
    meanwhile: Callable[[str], object] | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> str:
    """
    Sign a session in, have a change of its key go unconfirmed; return its key.

    meanwhile(the old key) runs, as another request would, while the change
    waits for replicas: just before its undo is sent.
    """
    from redis_hash_sessions import connection
    from redis_hash_sessions.engine import SessionStore

    session = SessionStore()
    session.update({SESSION_KEY: "1", **(data or {})})
    session.save()
    key = session.session_key
    assert key is not None
    unconfirmed(settings, topology)
    if meanwhile is not None:
        assert monkeypatch is not None
        send_all = connection.Connection.send_all

        def undo_after_another_request(self, commands):
            settings.SESSION_REDIS_WAIT_REPLICAS = 0
            meanwhile(key)
            send_all(self, commands)

        monkeypatch.setattr(
            connection.Connection, "send_all", undo_after_another_request
        )
    with pytest.raises(SessionStoreUnavailable):
        session.cycle_key()  # a password change's, say
    settings.SESSION_REDIS_WAIT_REPLICAS = 0
    return key


def test_an_unconfirmed_rotation_renamed_back_forgets_its_index_note(
    redis_topology, settings, redis_client
):
    old = renamed_back(settings, redis_topology)
    # The rotation scored the new key's entry; the old one's note would lie.
    assert redis_client.hgetall(session_redis_key(old))
    assert not redis_client.hexists(session_redis_key(old), "m:indexed")
    # The rename keeps the TTL the rotation set: the old name's entry follows.
    expires = redis_client.time()[0] + redis_client.ttl(session_redis_key(old))
    old_hash = keys.key_hash(old)
    assert redis_client.zscore(user_index(1), old_hash) >= expires
    assert redis_client.zcard(user_index(1)) == 1


def test_a_logout_while_a_rotation_waits_is_not_undone_by_its_rename_back(
    redis_topology, settings, redis_client, monkeypatch
):
    from redis_hash_sessions.engine import SessionStore

    def logout(old: str) -> None:
        other = SessionStore(old)
        other.get(SESSION_KEY)  # what the auth middleware reads: it moved
        other.flush()  # django.contrib.auth.logout()

    old = renamed_back(
        settings, redis_topology, meanwhile=logout, monkeypatch=monkeypatch
    )
    assert SessionStore(old).load() == {}
    assert redis_client.zscore(user_index(1), keys.key_hash(old)) is None
    assert redis_client.zcard(user_index(1)) == 0


def test_deleting_an_anonymous_session_does_not_wait(replicated, round_trips):
    from redis_hash_sessions.engine import SessionStore

    session = SessionStore()
    session["a"] = 1
    session.save()
    round_trips.clear()
    session.flush()
    assert round_trips == ["DEL"]


def test_djangos_own_logout_waits_for_replicas(replicated, round_trips):
    from redis_hash_sessions.engine import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = "1"
    session.save()
    loaded = SessionStore(session.session_key)
    assert loaded[SESSION_KEY] == "1"
    round_trips.clear()
    loaded.flush()  # what django.contrib.auth.logout() does
    assert round_trips == ["DEL+WAIT"]


def test_an_unconfirmed_key_change_of_an_anonymous_session_is_undone(
    client, user, redis_topology, settings
):
    client.get("/visits/")
    unconfirmed(settings, redis_topology)
    # login() changes the key first: under "writes" that waits, and fails.
    assert log_in(client) == HTTPStatus.SERVICE_UNAVAILABLE
    settings.SESSION_REDIS_WAIT_REPLICAS = 0
    response = client.get("/visits/", headers={"Accept": "application/json"})
    assert response.json() == {"visits": 2, "username": None}


def test_an_unconfirmed_key_change_is_renamed_back(redis_topology, settings):
    from redis_hash_sessions.engine import SessionStore

    first = renamed_back(settings, redis_topology)
    assert SessionStore(first).load() == {SESSION_KEY: "1"}


def test_an_unconfirmed_sign_in_after_two_key_changes_leaves_no_mark(
    redis_topology, settings
):
    from redis_hash_sessions.engine import SessionStore

    session = SessionStore()
    session["a"] = 1
    session.save()
    first = session.session_key
    session.cycle_key()
    session.cycle_key()
    session[SESSION_KEY] = "1"
    settings.SESSION_REDIS_WAIT_REPLICAS = len(redis_topology.replicas) + 1
    settings.SESSION_REDIS_WAIT_TIMEOUT = 0.05
    with pytest.raises(SessionStoreUnavailable):
        session.save()
    settings.SESSION_REDIS_WAIT_REPLICAS = 0
    later = SessionStore(first)
    assert later.load() == ({"a": 1} if puts_back(redis_topology) else {})
    assert not later.moved


def test_a_count_of_the_old_cookie_while_a_rotation_waits_keeps_its_rename_back(
    redis_topology, settings, redis_client, monkeypatch
):
    from redis_hash_sessions.engine import SessionStore

    def count(old: str) -> None:
        # Its session moved, so the count lands in a hash of its own on the
        # old key.
        assert SessionStore(old).load_and_incr("visits") is None

    old = renamed_back(
        settings,
        redis_topology,
        data={"visits": 1},
        meanwhile=count,
        monkeypatch=monkeypatch,
    )
    assert dict(SessionStore(old).items()) == {SESSION_KEY: "1", "visits": 1}
