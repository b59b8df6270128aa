"""
Redis Cluster under load, through the real site under gunicorn (WSGI and
ASGI): a primary killed, and a slot moved, while signed-in and anonymous
visitors count visits and others sign in and out.

A signed-in visitor's session lives in its user's hash slot; an anonymous
one's in a slot of its own, so the anonymous visitors spread over the three
primaries. Loopback only, bounded in requests and time. The figures (how
long the killed primary's sessions answered 503, how many requests did) are
printed: `pytest tests/test_cluster_failover.py -s`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings
from redis.crc import key_slot

from tests.http_client import Browser
from tests.load import JSON, TIMEOUT, Visitor, sign_in, until
from tests.site_process import DEMO_USERNAME, Gunicorn, serving
from tests.topologies import ClusterSet

pytestmark = [pytest.mark.faults, pytest.mark.gunicorn]

COOKIE = settings.SESSION_COOKIE_NAME
SIGNED_IN = 4
ANONYMOUS = 12
SIGNERS = 2
# cluster-node-timeout is 1 s; a replica's election and promotion take
# 1-2 s more (ClusterSet measured 1.4-2.8 s without load).
FAILOVER_BOUND = 10.0


def tag_of(visitor: Visitor) -> str:
    """Return the hash tag of a visitor's session: its ID's first three."""
    return "{" + visitor.browser.cookies[COOKIE][:3] + "}"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    # As the compose file runs them: a killed node comes back with its data.
    nodes = ClusterSet(tmp_path / "redis", appendonly=True)
    nodes.start()
    yield nodes
    nodes.stop()


def site_on(
    cluster: ClusterSet, tmp_path: Path, interface: str, **environment: str
) -> AbstractContextManager[Gunicorn]:
    """Serve the site on the cluster: 2 workers of 8 threads (or ASGI)."""
    return serving(
        cluster.url,
        tmp_path / "site",
        workers=2,
        threads=8,
        interface=interface,
        **cluster.environment(),
        **environment,
    )


@contextmanager
def loading(visitors: list[Visitor], signing: Signing) -> Iterator[None]:
    """Keep every visitor visiting, and SIGNERS browsers signing, in the block."""
    stop = threading.Event()
    threads = [until(stop, v.visit) for v in visitors]
    threads += [until(stop, signing.once) for _ in range(SIGNERS)]
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def visitors_of(site: Gunicorn) -> list[Visitor]:
    """Sign SIGNED_IN visitors in, and start ANONYMOUS sessions."""
    visitors = []
    for _ in range(SIGNED_IN):
        status, browser = sign_in(site)
        assert status == HTTPStatus.FOUND
        visitors.append(Visitor(browser))
    for _ in range(ANONYMOUS):
        visitor = Visitor(Browser(site.port, timeout=TIMEOUT))
        visitor.visit()
        visitors.append(visitor)
    return visitors


@dataclass
class Signing:
    """Browsers that sign in, and every other one out again, meanwhile."""

    site: Gunicorn
    answers: list[int] = field(default_factory=list)
    kept: list[Browser] = field(default_factory=list)
    # The cookies of sessions whose logout answered 302.
    logged_out: list[dict[str, str]] = field(default_factory=list)

    def once(self) -> None:
        status, browser = sign_in(self.site)
        self.answers.append(status)
        if status != HTTPStatus.FOUND:
            return
        if len(self.answers) % 2:
            self.kept.append(browser)
            return
        cookies = dict(browser.cookies)
        if browser.post("/logout/").status == HTTPStatus.FOUND:
            self.logged_out.append(cookies)

    def assert_kept_and_logged_out(self) -> None:
        """Assert that no acknowledged login or logout was undone."""
        assert set(self.answers) <= {HTTPStatus.FOUND, HTTPStatus.SERVICE_UNAVAILABLE}
        signed_out = [
            b
            for b in self.kept
            if b.get("/visits/", headers=JSON).json()["username"] != DEMO_USERNAME
        ]
        assert signed_out == []
        signed_in_again = []
        for cookies in self.logged_out:
            browser = Browser(self.site.port, timeout=TIMEOUT)
            browser.cookies.update(cookies)
            response = browser.get("/visits/", headers=JSON)
            if response.status == HTTPStatus.OK and response.json()["username"]:
                signed_in_again.append(cookies)
        assert self.logged_out
        assert signed_in_again == []


def assert_exact_counts(visitors: list[Visitor]) -> None:
    """Assert that every visitor's count rose by one per acknowledged visit."""
    for visitor in visitors:
        counts = visitor.counts()
        assert counts == list(range(counts[0], counts[0] + len(counts)))


def assert_no_count_lost(visitors: list[Visitor]) -> None:
    """
    Assert that no acknowledged visit was lost: each count passes the last.

    A visit that answered 503 may still have counted (its primary died
    after the write, before the reply), so a count may skip one.
    """
    for visitor in visitors:
        counts = visitor.counts()
        assert all(a < b for a, b in itertools.pairwise(counts))


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_a_killed_primary_answers_503_for_its_sessions_alone_until_promoted(
    cluster: ClusterSet, tmp_path: Path, interface: str
) -> None:
    # Every visit waits for its replica: none acknowledged is lost.
    with site_on(cluster, tmp_path, interface, REDIS_WAIT_FOR="writes") as site:
        visitors = visitors_of(site)
        doomed = cluster.node_for_key(tag_of(visitors[0]))
        on_doomed = [v for v in visitors if cluster.node_for_key(tag_of(v)) is doomed]
        elsewhere = [v for v in visitors if v not in on_doomed]
        assert elsewhere, "every session landed on one primary"
        signing = Signing(site)
        with loading(visitors, signing):
            time.sleep(1)
            killed_at = time.monotonic()
            doomed.kill()
            failover = cluster.wait_for_failover(doomed, timeout=FAILOVER_BOUND)
            time.sleep(1)
            cluster.restart(doomed)
            time.sleep(1)

        # The other primaries' sessions answered throughout.
        assert {s for v in elsewhere for s in v.statuses()} == {HTTPStatus.OK}
        # The killed one's answered 503 until a replica took over, never 500.
        assert {s for v in on_doomed for s in v.statuses()} == {
            HTTPStatus.OK,
            HTTPStatus.SERVICE_UNAVAILABLE,
        }
        unavailable = [
            t for v in on_doomed for t, status, _, _ in v.answers if status != 200
        ]
        outage = max(unavailable) - killed_at
        assert outage < FAILOVER_BOUND
        # Never signed out, and the same cookies work after the failover.
        assert {u for v in visitors[:SIGNED_IN] for _, _, _, u in v.answers} <= {
            DEMO_USERNAME,
            None,
        }
        assert {
            u for v in visitors[:SIGNED_IN] for _, s, _, u in v.answers if s == 200
        } == {DEMO_USERNAME}
        assert all(v.answers[-1][1] == HTTPStatus.OK for v in visitors)
        assert_exact_counts(elsewhere)
        assert_no_count_lost(on_doomed)
        signing.assert_kept_and_logged_out()
        print(
            f"\n{interface}: replica promoted {failover:.1f} s after the kill; "
            f"{len(unavailable)} of {sum(len(v.answers) for v in on_doomed)} visits "
            f"to its {len(on_doomed)} sessions answered 503, the last "
            f"{outage:.1f} s after the kill; "
            f"{sum(len(v.answers) for v in elsewhere)} visits to the "
            f"{len(elsewhere)} sessions on other primaries all answered 200; "
            f"{len(signing.answers)} logins, {len(signing.kept)} kept, "
            f"{len(signing.logged_out)} logged out, none undone."
        )


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_moving_a_signed_in_users_slot_loses_no_session_and_answers_no_500(
    cluster: ClusterSet, tmp_path: Path, interface: str
) -> None:
    with site_on(cluster, tmp_path, interface) as site:
        visitors = visitors_of(site)
        slot = key_slot(tag_of(visitors[0]).encode())
        source = cluster.node_for_key(tag_of(visitors[0]))
        target = next(p for p in cluster.primaries if p is not source)
        signing = Signing(site)
        with loading(visitors, signing):
            time.sleep(0.5)
            started = time.monotonic()
            cluster.migrate_slot(slot, target, batch=1, pause=0.1)
            moved_in = time.monotonic() - started
            time.sleep(0.5)

        assert cluster.node_for_key(tag_of(visitors[0])) is target
        assert {s for v in visitors for s in v.statuses()} <= {
            HTTPStatus.OK,
            HTTPStatus.SERVICE_UNAVAILABLE,
        }
        assert {
            u for v in visitors[:SIGNED_IN] for _, s, _, u in v.answers if s == 200
        } == {DEMO_USERNAME}
        assert all(v.answers[-1][1] == HTTPStatus.OK for v in visitors)
        assert_exact_counts(visitors)
        signing.assert_kept_and_logged_out()
        unavailable = sum(
            1 for v in visitors for _, status, _, _ in v.answers if status != 200
        )
        print(
            f"\n{interface}: slot {slot} moved in {moved_in:.1f} s; "
            f"{sum(len(v.answers) for v in visitors)} visits, {unavailable} "
            f"answered 503; {len(signing.answers)} logins, none undone."
        )
