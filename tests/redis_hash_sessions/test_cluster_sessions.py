"""
What only Redis Cluster does: an anonymous session's login leaves its key
for one in its user's hash slot, and a new key that cannot be written puts
the old session back (README, Redis Cluster).
"""

from __future__ import annotations

import pytest
import redis
from django.contrib.auth import SESSION_KEY

from redis_hash_sessions import connection
from redis_hash_sessions.engine import SessionStore
from redis_hash_sessions.exceptions import SessionStoreUnavailable
from tests.conftest import session_redis_key
from tests.topologies import ClusterSet


@pytest.fixture(autouse=True)
def _on_a_cluster(redis_topology) -> None:
    if not isinstance(redis_topology, ClusterSet):
        pytest.skip("leaving a key for another slot is for Redis Cluster")


def fail_saves(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the save script fail from now on, as if its primary were down."""
    run = connection.Connection.run

    def failing(self, script, keys, args, *, auth):
        if script is self.save:
            raise redis.ConnectionError("the new key's primary is down")
        return run(self, script, keys, args, auth=auth)

    monkeypatch.setattr(connection.Connection, "run", failing)


def signing_in(**data: object) -> tuple[str, SessionStore]:
    """Return an anonymous session's key, and a store that signs it in."""
    session = SessionStore()
    session.update(data)
    session.save()
    old = session.session_key
    assert old is not None
    login = SessionStore(old)
    login.keys()
    login.cycle_key()
    login[SESSION_KEY] = "7"
    return old, login


def test_a_sign_in_whose_new_key_fails_puts_the_old_session_back(
    monkeypatch, redis_client
):
    old, login = signing_in(cart=["book"])
    fail_saves(monkeypatch)
    with pytest.raises(SessionStoreUnavailable):
        login.save()
    assert dict(SessionStore(old).items()) == {"cart": ["book"]}
    assert redis_client.ttl(session_redis_key(old)) > 0


def test_a_logout_of_the_old_cookie_meanwhile_is_not_undone(monkeypatch, redis_client):
    old, login = signing_in(cart=["book"])
    SessionStore(old).flush()  # another tab's logout: it finds the session moved
    fail_saves(monkeypatch)
    with pytest.raises(SessionStoreUnavailable):
        login.save()
    assert redis_client.exists(session_redis_key(old)) == 0


def test_a_failed_save_after_the_sign_in_was_written_puts_nothing_back(
    monkeypatch, redis_client
):
    old, login = signing_in(cart=["book"])
    login.save()
    signed_in = login.session_key
    login["later"] = 1

    def down(*args: object, **kwargs: object) -> None:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(connection.Connection, "run", down)
    with pytest.raises(SessionStoreUnavailable):
        login.save()
    monkeypatch.undo()
    assert SessionStore(signed_in).get(SESSION_KEY) == "7"
    assert redis_client.exists(session_redis_key(old)) == 0
