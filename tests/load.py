"""Browsers that load the real site while a failover test breaks its Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from tests.http_client import Browser
from tests.site_process import DEMO_PASSWORD, DEMO_USERNAME, Gunicorn

JSON = {"Accept": "application/json"}
TIMEOUT = 5.0


@dataclass
class Visitor:
    """A browser counting visits: what it sent and what it got."""

    browser: Browser
    answers: list[tuple[float, int, int | None, str | None]] = field(
        default_factory=list
    )

    def visit(self) -> None:
        response = self.browser.get("/visits/", headers=JSON)
        visits = username = None
        if response.status == HTTPStatus.OK:
            body = response.json()
            visits, username = body["visits"], body["username"]
        self.answers.append((time.monotonic(), response.status, visits, username))

    def statuses(self) -> set[int]:
        return {status for _, status, _, _ in self.answers}

    def counts(self) -> list[int]:
        return [visits for _, _, visits, _ in self.answers if visits is not None]


def sign_in(site: Gunicorn) -> tuple[int, Browser]:
    """Sign the demo user in from a new browser; return the answer and it."""
    browser = Browser(site.port, timeout=TIMEOUT)
    return browser.log_in(DEMO_USERNAME, DEMO_PASSWORD).status, browser


def until(stop: threading.Event, work: Callable[[], None]) -> threading.Thread:
    """Start a thread that does work over and over until stop is set."""

    def loop() -> None:
        while not stop.is_set():
            work()
            time.sleep(0.01)

    thread = threading.Thread(target=loop)
    thread.start()
    return thread
