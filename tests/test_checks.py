"""System checks of the site's own settings, by their IDs."""

from __future__ import annotations

from sessionsite.checks import check_demo_user, check_login_limits, check_secret_key


def test_a_secret_key_passes(settings):
    assert check_secret_key() == []


def test_no_secret_key_is_e001(settings):
    settings.SECRET_KEY = ""
    assert [message.id for message in check_secret_key()] == ["sessionsite.E001"]


def test_demo_username_without_password_is_e002(settings):
    settings.DEMO_USERNAME, settings.DEMO_PASSWORD = "admin", ""
    assert [message.id for message in check_demo_user()] == ["sessionsite.E002"]


def test_demo_credentials_together_pass(settings):
    settings.DEMO_USERNAME, settings.DEMO_PASSWORD = "admin", "secret"
    assert check_demo_user() == []


def test_the_default_login_limits_pass(settings):
    assert check_login_limits() == []


def test_a_login_limit_below_one_is_e003(settings):
    settings.LOGIN_IP_FAILURE_LIMIT = 0
    assert [message.id for message in check_login_limits()] == ["sessionsite.E003"]
