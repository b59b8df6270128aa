from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_ensure_demo_user_creates_the_user(settings):
    settings.DEMO_USERNAME, settings.DEMO_PASSWORD = "admin", "secret"
    call_command("ensure_demo_user")
    assert get_user_model().objects.get(username="admin").check_password("secret")


def test_ensure_demo_user_resets_the_password_of_an_existing_user(settings):
    get_user_model().objects.create_user("admin", password="old", is_active=False)
    settings.DEMO_USERNAME, settings.DEMO_PASSWORD = "admin", "secret"
    call_command("ensure_demo_user")
    user = get_user_model().objects.get(username="admin")
    assert user.check_password("secret")
    assert user.is_active


def test_ensure_demo_user_without_credentials_says_what_to_set(settings):
    settings.DEMO_USERNAME, settings.DEMO_PASSWORD = "", ""
    with pytest.raises(CommandError, match="DEMO_USERNAME and DEMO_PASSWORD"):
        call_command("ensure_demo_user")


def test_ensure_demo_user_keeps_a_correct_password_and_its_sessions(settings):
    settings.DEMO_USERNAME, settings.DEMO_PASSWORD = "admin", "secret"
    call_command("ensure_demo_user")
    before = get_user_model().objects.get(username="admin").password
    call_command("ensure_demo_user")
    assert get_user_model().objects.get(username="admin").password == before
