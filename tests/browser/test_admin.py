"""Django's admin in Chromium: an operator ends all sessions of a user."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from tests.accounts.test_sessions import IPHONE, device, session_exists
from tests.conftest import PASSWORD


def test_an_operator_ends_all_sessions_of_a_user(page: Page, problems, user):
    get_user_model().objects.create_superuser("boss", password=PASSWORD)
    laptop, phone = device(), device(IPHONE, "198.51.100.9")
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    page.goto(f"/admin/auth/user/{user.pk}/change/")
    sessions = page.get_by_role("region", name="Sessions")
    expect(sessions.get_by_role("cell", name="Firefox 128 on Linux")).to_be_visible()
    expect(sessions.get_by_role("cell", name="198.51.100.9")).to_be_visible()

    sessions.get_by_role("button", name="End all sessions of this user").click()
    expect(page).to_have_url(re.compile(rf"/admin/auth/user/{user.pk}/change/$"))
    expect(page.get_by_text("Ended 2 sessions of ada.")).to_be_visible()
    expect(sessions.get_by_text("No sessions.")).to_be_visible()
    assert (session_exists(laptop), session_exists(phone)) == (False, False)
    assert problems == []
