"""
A Sentinel failover under load: the primary is killed while signed-in
visitors count visits and others sign in, through the real site under
gunicorn (WSGI and ASGI).

Loopback only, bounded in requests and time. The figures (how long requests
answered 503, how many acknowledged writes the promoted replica lacked) are
printed: `pytest tests/test_sentinel_failover.py -s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest

from tests.http_client import Browser
from tests.load import JSON, TIMEOUT, Visitor, sign_in, until
from tests.redis_process import free_port
from tests.site_process import DEMO_USERNAME, serving
from tests.topologies import SentinelSet

pytestmark = [pytest.mark.faults, pytest.mark.gunicorn]

VISITORS = 8
SIGNERS = 2
# Sentinel's down-after-milliseconds is 1 s; electing a leader and
# promoting a replica take 1-3 s more (measured: about 3 s under this load).
FAILOVER_BOUND = 10.0
# Shorter than down-after-milliseconds, and than the 8 s after which the
# sentinels would point a replica back at the primary.
LAG = 0.8


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    # As the compose file runs them: the old primary comes back with its data.
    sentinels = SentinelSet(tmp_path / "redis", appendonly=True)
    sentinels.start()
    yield sentinels
    sentinels.stop()


@pytest.mark.parametrize(
    ("interface", "wait_for"),
    [("wsgi", "logins"), ("asgi", "writes")],
    ids=["wsgi, logins wait for a replica", "asgi, every write waits"],
)
def test_a_killed_primary_fails_over_without_a_500_or_a_logout(
    sentinel_set: SentinelSet, tmp_path: Path, interface: str, wait_for: str
) -> None:
    with serving(
        sentinel_set.url,
        tmp_path / "site",
        workers=2,
        threads=8,
        interface=interface,
        REDIS_WAIT_REPLICAS="1",
        REDIS_WAIT_FOR=wait_for,
        **sentinel_set.environment(),
    ) as site:
        visitors = []
        for _ in range(VISITORS):
            status, browser = sign_in(site)
            assert status == HTTPStatus.FOUND
            visitors.append(Visitor(browser))
        acknowledged: list[Browser] = []
        login_answers: list[int] = []
        # The cookies of sessions whose logout answered 302.
        logged_out: list[dict[str, str]] = []

        def sign_in_again() -> None:
            status, browser = sign_in(site)
            login_answers.append(status)
            if status != HTTPStatus.FOUND:
                return
            if len(login_answers) % 2:
                acknowledged.append(browser)
                return
            # Every other one signs out again at once.
            cookies = dict(browser.cookies)
            if browser.post("/logout/").status == HTTPStatus.FOUND:
                logged_out.append(cookies)

        stop = threading.Event()
        threads = [until(stop, v.visit) for v in visitors]
        threads += [until(stop, sign_in_again) for _ in range(SIGNERS)]
        try:
            time.sleep(1)
            old = sentinel_set.current_primary()
            # The replicas lose the primary for LAG seconds before it dies, as
            # a slow network would make them: what it acknowledges meanwhile
            # is on no replica, and the promoted one will not have it.
            unreachable = free_port()
            cut_at = time.monotonic()
            for replica in sentinel_set.replicas:
                replica.client().replicaof("127.0.0.1", unreachable)
            time.sleep(LAG)
            killed_at = time.monotonic()
            old.kill()
            deadline = killed_at + FAILOVER_BOUND
            while sentinel_set.current_primary() is old:
                assert time.monotonic() < deadline, "no replica was promoted"
                time.sleep(0.1)
            # Load on the new primary, then on it with the old one back as
            # its replica.
            time.sleep(2)
            returned_at = time.monotonic()
            old.start()
            new = sentinel_set.current_primary()
            sentinel_set.wait_for_replicas(new)
            resynced_at = time.monotonic()
            time.sleep(1)
        finally:
            stop.set()
            for thread in threads:
                thread.join()

        answers = [a for v in visitors for a in v.answers]
        statuses = {status for _, status, _, _ in answers}
        assert statuses <= {HTTPStatus.OK, HTTPStatus.SERVICE_UNAVAILABLE}
        assert {status for status in login_answers} <= {
            HTTPStatus.FOUND,
            HTTPStatus.SERVICE_UNAVAILABLE,
        }
        # Never signed out: every answer that was not a 503 knows the user.
        assert {username for _, status, _, username in answers if status == 200} == {
            DEMO_USERNAME
        }
        unavailable = [t for t, status, _, _ in answers if status != HTTPStatus.OK]
        # The failover's own outage: the 503s before the old primary returns.
        failover = [t for t in unavailable if t < returned_at]
        outage = (max(failover) - killed_at) if failover else 0.0
        assert outage < FAILOVER_BOUND
        # Its return costs the new primary a full resync (15 to 20 s here,
        # with a fork on this loaded machine): a request may answer 503 then
        # (CI saw one 14.5 s after the kill), never once the resync is done.
        assert all(t < resynced_at for t in unavailable)
        # After the failover and the old primary's return, everyone is served.
        assert all(v.answers[-1][1] == HTTPStatus.OK for v in visitors)
        # Every acknowledged login is still signed in on the new primary.
        signed_out = [
            b
            for b in acknowledged
            if b.get("/visits/", headers=JSON).json()["username"] != DEMO_USERNAME
        ]
        assert signed_out == []
        # No acknowledged logout is undone.
        signed_in_again = []
        for cookies in logged_out:
            browser = Browser(site.port, timeout=TIMEOUT)
            browser.cookies.update(cookies)
            response = browser.get("/visits/", headers=JSON)
            if response.status == HTTPStatus.OK and response.json()["username"]:
                signed_in_again.append(cookies)
        assert logged_out
        assert signed_in_again == []
        assert old.client().info("replication")["role"] == "slave"
        # A count that does not move past the one acknowledged before it
        # means the promoted replica lacked those increments.
        lost = sum(
            max(0, earlier + 1 - later)
            for v in visitors
            for earlier, later in zip(v.counts(), v.counts()[1:], strict=False)
        )
        if wait_for == "writes":
            assert lost == 0
            # Proof that the cut happened: writes during it found no replica.
            assert any(cut_at <= t < killed_at for t in unavailable)
        else:
            # Visits do not wait: those acknowledged during the lag are gone.
            # (Proof that the lag happened; the logins of the same moments
            # answered 503, so that none acknowledged is lost above.)
            assert lost > 0
        print(
            f"\n{interface}, {wait_for} wait for a replica: "
            f"{len(answers)} visits, {len(unavailable)} answered 503, "
            f"503s ended {outage:.1f} s after the kill; "
            f"{len(login_answers)} logins, {len(acknowledged)} kept and all still "
            f"signed in, {len(logged_out)} logged out and none signed in again; "
            f"{lost} acknowledged visits lost."
        )
