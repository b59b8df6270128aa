"""
Playwright fixtures for Debian's Chromium.

Written here rather than taken from pytest-playwright: its session-wide
Playwright keeps an event loop running in the test thread after the browser
tests, where Django then refuses every ORM call of the tests that follow.
Here the loop lives only while this package's tests run.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.redis_process import free_port
from tests.site_process import INTERFACES

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)
            # In CI a missing Chromium is a failure (.ci/run installs it).
            if not shutil.which(CHROMIUM) and not os.environ.get("CI"):
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"no Chromium at {CHROMIUM}: apt-get install chromium "
                        "(.ci/run installs it), or set CHROMIUM to its path"
                    )
                )


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API runs an event loop in the test thread, where
        # Django would otherwise refuse the ORM calls of fixtures and teardown.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()


class AsgiLiveServer:
    """
    The site's ASGI application under uvicorn, in a thread of the tests' process.

    pytest-django's live_server, beside it, is WSGI; this one serves the
    same database and Redis, with the static files as live_server does.
    """

    def __init__(self) -> None:
        self.port = free_port()
        application = ASGIStaticFilesHandler(get_asgi_application())
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(params=INTERFACES)
def site_url(request: pytest.FixtureRequest, live_server: Any) -> Iterator[str]:
    """The URL of the site under WSGI (live_server), then under ASGI (uvicorn)."""
    if request.param == "wsgi":
        yield live_server.url
        return
    server = AsgiLiveServer()
    server.start()
    yield server.url
    server.stop()


def new_context(browser: Browser, site_url: str) -> BrowserContext:
    context = browser.new_context(base_url=site_url)
    # Chromium asks for /favicon.ico on its own, once per origin; the site
    # links none, and its 404 is not a page's console error.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    return context


@pytest.fixture
def context(browser: Browser, site_url: str) -> Iterator[BrowserContext]:
    context = new_context(browser, site_url)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def other_visitor(browser: Browser, site_url: str) -> Iterator[BrowserContext]:
    """A second browser context: another visitor, with cookies of its own."""
    context = new_context(browser, site_url)
    yield context
    context.close()


@pytest.fixture
def problems(page: Page) -> list[str]:
    """Collect console errors (CSP violations among them) and page errors."""
    seen: list[str] = []
    page.on(
        "console",
        lambda message: seen.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
