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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

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


def new_context(browser: Browser, live_server: Any) -> BrowserContext:
    return browser.new_context(base_url=live_server.url)


@pytest.fixture
def context(browser: Browser, live_server: Any) -> Iterator[BrowserContext]:
    context = new_context(browser, live_server)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def other_visitor(browser: Browser, live_server: Any) -> Iterator[BrowserContext]:
    """A second browser context: another visitor, with cookies of its own."""
    context = new_context(browser, live_server)
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
