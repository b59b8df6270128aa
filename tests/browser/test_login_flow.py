"""The site in Debian's Chromium, driven by Playwright, against a live server."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import PASSWORD


def log_in(page: Page, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def visit_count(page: Page) -> int:
    return int(page.locator("#visit-count").inner_text())


def test_a_wrong_password_shows_the_generic_error(page, user):
    log_in(page, password="wrong")
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    expect(page.get_by_label("Username")).to_have_value("ada")
    expect(page.get_by_label("Password")).to_have_value("")


def test_the_right_password_lands_on_the_dashboard_and_reload_counts(page, user):
    log_in(page)
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.get_by_role("heading", name="Welcome ada!")).to_be_visible()
    first = visit_count(page)
    page.reload()
    expect(page.locator("#visit-count")).to_have_text(str(first + 1))


def test_a_second_tab_shares_the_session(page, context, user):
    log_in(page)
    second_tab = context.new_page()
    second_tab.goto("/dashboard/")
    expect(second_tab.get_by_role("heading", name="Welcome ada!")).to_be_visible()


def test_a_second_context_is_another_logged_out_visitor(
    page, other_visitor: BrowserContext, user
):
    log_in(page)
    stranger = other_visitor.new_page()
    stranger.goto("/dashboard/")
    expect(stranger).to_have_url(re.compile(r"/login/\?next=/dashboard/$"))
    expect(stranger.get_by_role("heading", name="Log in")).to_be_visible()


def test_logout_returns_to_login_and_the_dashboard_asks_again(page, user):
    log_in(page)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/\?logged_out=1$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You have been logged out.")
    page.go_back()
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/dashboard/$"))


def test_five_failures_show_the_lockout_page(page, user):
    for _ in range(5):
        log_in(page, password="wrong")
    log_in(page)
    expect(
        page.get_by_role("heading", name="Too many sign-in attempts")
    ).to_be_visible()
    expect(page.get_by_text("Try again in 15 minutes")).to_be_visible()


def test_pages_have_no_console_errors_or_csp_violations(page, problems, user):
    page.goto("/login/")
    log_in(page)
    page.goto("/visits/")
    page.goto("/dashboard/")
    assert problems == []


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea')]
  .filter(el => !el.labels || el.labels.length === 0)
  .map(el => el.name)"""
UNNAMED_BUTTONS = """() => [...document.querySelectorAll('button, a')]
  .filter(el => !el.textContent.trim() && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML)"""


def test_pages_pass_a_basic_accessibility_check(page, user):
    for path in ["/login/", "/visits/", "/dashboard/"]:
        if path == "/dashboard/":
            log_in(page)
        page.goto(path)
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator("h1").count() == 1
        assert page.evaluate(UNLABELLED_CONTROLS) == []
        assert page.evaluate(UNNAMED_BUTTONS) == []
        assert page.title()


def test_screenshots_of_login_and_dashboard_are_written(page, user, screenshots):
    page.goto("/login/")
    page.screenshot(path=screenshots / "login.png", full_page=True)
    log_in(page)
    expect(page.get_by_role("heading", name="Welcome ada!")).to_be_visible()
    page.screenshot(path=screenshots / "dashboard.png", full_page=True)
    for name in ["login.png", "dashboard.png"]:
        assert (screenshots / name).stat().st_size > 1000
