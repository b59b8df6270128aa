"""The login's security defaults (OWASP ASVS level 2), one guarantee per test."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from http import HTTPStatus

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test import Client

from tests.conftest import PASSWORD
from tests.site_process import ROOT

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME


def attempt(client: Client, username: str = "ada", password: str = "wrong", **meta):  # noqa: S107
    return client.post("/login/", {"username": username, "password": password}, **meta)


def fail(client: Client, times: int, username: str = "ada", ip: str = "10.0.0.1"):
    for _ in range(times):
        attempt(client, username=username, REMOTE_ADDR=ip)


def sign_in(client: Client, username: str = "ada", ip: str = "10.0.0.1"):
    response = attempt(client, username=username, password=PASSWORD, REMOTE_ADDR=ip)
    client.post("/logout/", REMOTE_ADDR=ip)
    return response


@pytest.fixture
def mallory(db):
    """An account that the attacker owns."""
    return get_user_model().objects.create_user("mallory", password=PASSWORD)


class TestLockout:
    def test_five_failures_lock_the_username_on_that_ip_with_429(self, client, user):
        fail(client, 5)
        response = attempt(client, password=PASSWORD, REMOTE_ADDR="10.0.0.1")
        assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert COOKIE not in response.cookies

    def test_four_failures_do_not_lock(self, client, user):
        fail(client, 4)
        assert sign_in(client).status_code == HTTPStatus.FOUND

    def test_an_attacker_on_one_ip_cannot_lock_the_user_out_of_their_own(
        self, client, user
    ):
        fail(client, 5, ip="10.6.6.6")
        assert sign_in(client, ip="10.0.0.2").status_code == HTTPStatus.FOUND

    def test_refused_attempts_do_not_count_towards_the_usernames_limit(
        self, client, user
    ):
        fail(client, 30, ip="10.6.6.6")
        assert sign_in(client, ip="10.0.0.2").status_code == HTTPStatus.FOUND

    def test_twenty_failures_across_ips_lock_the_username_everywhere(
        self, client, user
    ):
        for i in range(4):
            fail(client, 5, ip=f"10.6.6.{i}")
        assert sign_in(client, ip="10.0.0.2").status_code == (
            HTTPStatus.TOO_MANY_REQUESTS
        )

    def test_nineteen_failures_across_ips_do_not_lock_the_username(self, client, user):
        for i in range(4):
            fail(client, 5 if i < 3 else 4, ip=f"10.6.6.{i}")
        assert sign_in(client, ip="10.0.0.2").status_code == HTTPStatus.FOUND

    def test_twenty_usernames_tried_once_from_one_ip_lock_that_ip(self, client, user):
        for i in range(20):
            fail(client, 1, username=f"guess{i}", ip="10.0.0.9")
        assert sign_in(client, ip="10.0.0.9").status_code == (
            HTTPStatus.TOO_MANY_REQUESTS
        )

    def test_nineteen_usernames_tried_once_from_one_ip_do_not_lock_it(
        self, client, user
    ):
        for i in range(19):
            fail(client, 1, username=f"guess{i}", ip="10.0.0.9")
        assert sign_in(client, ip="10.0.0.9").status_code == HTTPStatus.FOUND

    def test_the_ip_lock_spares_other_ips(self, client, user):
        for i in range(20):
            fail(client, 1, username=f"guess{i}", ip="10.0.0.9")
        assert sign_in(client, ip="10.0.0.2").status_code == HTTPStatus.FOUND

    def test_an_attackers_own_success_never_erases_the_victims_failures(
        self, client, user, mallory
    ):
        for _ in range(4):
            fail(client, 4, ip="10.6.6.6")
            assert sign_in(client, "mallory", ip="10.6.6.6").status_code == (
                HTTPStatus.FOUND
            )
        response = attempt(client, password=PASSWORD, REMOTE_ADDR="10.6.6.6")
        assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS

    def test_a_success_never_erases_failures_from_other_ips(self, client, user):
        for i in range(3):
            fail(client, 5, ip=f"10.6.6.{i}")
        fail(client, 4, ip="10.0.0.2")
        assert sign_in(client, ip="10.0.0.2").status_code == HTTPStatus.FOUND
        fail(client, 5, ip="10.6.6.3")
        assert sign_in(client, ip="10.0.0.2").status_code == (
            HTTPStatus.TOO_MANY_REQUESTS
        )

    def test_a_success_never_erases_other_usernames_failures_on_its_ip(
        self, client, user, mallory
    ):
        for i in range(19):
            fail(client, 1, username=f"guess{i}", ip="10.6.6.6")
        assert sign_in(client, "mallory", ip="10.6.6.6").status_code == (
            HTTPStatus.FOUND
        )
        fail(client, 1, username="guess19", ip="10.6.6.6")
        assert sign_in(client, "mallory", ip="10.6.6.6").status_code == (
            HTTPStatus.TOO_MANY_REQUESTS
        )

    def test_a_success_forgives_the_users_own_failures_on_that_ip(self, client, user):
        fail(client, 4)
        assert sign_in(client).status_code == HTTPStatus.FOUND
        fail(client, 4)
        assert sign_in(client).status_code == HTTPStatus.FOUND

    def test_the_page_says_when_to_try_again_and_nothing_about_the_password(
        self, client, user
    ):
        fail(client, 5)
        response = attempt(client, password=PASSWORD, REMOTE_ADDR="10.0.0.1")
        html = response.content.decode()
        assert response["Retry-After"] == "900"
        assert "Try again in 15 minutes" in html
        assert "password" not in html.lower().replace('name="password"', "")


class TestPasswords:
    def test_argon2id_is_the_first_hasher_in_production(self):
        from sessionsite import settings as site_settings

        assert site_settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")

    def test_an_older_hash_is_upgraded_to_argon2id_at_login(self, client, settings):
        from sessionsite import settings as site_settings

        settings.PASSWORD_HASHERS = site_settings.PASSWORD_HASHERS
        get_user_model().objects.create(
            username="ada", password=make_password(PASSWORD, hasher="pbkdf2_sha256")
        )
        assert attempt(client, password=PASSWORD).status_code == HTTPStatus.FOUND
        assert get_user_model().objects.get().password.startswith("argon2$argon2id$")


HOSTILE_NEXT = [
    "evil.example",
    "%2F%2Fevil.example",
    "//evil.example",
    "///evil.example",
    "https:evil.example",
    "https://evil.example/",
    "http://testserver.evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "/%5Cevil.example",
    "/%2F%2Fevil.example",
    "https://testserver@evil.example/",
    "/\r\nLocation: https://evil.example",
    "\x00//evil.example",
]


@pytest.mark.parametrize("next_url", HOSTILE_NEXT)
def test_a_hostile_next_is_never_followed(client, user, next_url):
    response = client.post(
        "/login/", {"username": "ada", "password": PASSWORD, "next": next_url}
    )
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/dashboard/"


class TestCsrf:
    def test_login_without_a_token_is_403(self, user):
        client = Client(enforce_csrf_checks=True)
        assert attempt(client, password=PASSWORD).status_code == HTTPStatus.FORBIDDEN

    def test_login_from_a_foreign_origin_is_403(self, user):
        client = Client(enforce_csrf_checks=True)
        client.get("/login/")
        token = client.cookies[settings.CSRF_COOKIE_NAME].value
        response = client.post(
            "/login/",
            {"username": "ada", "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"origin": "https://evil.example"},
        )
        assert response.status_code == HTTPStatus.FORBIDDEN

    def test_logout_without_a_token_is_403(self, user):
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        assert client.post("/logout/").status_code == HTTPStatus.FORBIDDEN


class TestAuthenticationLog:
    def records(self, caplog) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "accounts.auth"]

    def test_success_failure_and_logout_are_logged_with_username_and_ip(
        self, client, user, caplog
    ):
        with caplog.at_level(logging.INFO, "accounts.auth"):
            attempt(client)
            attempt(client, password=PASSWORD)
            client.post("/logout/")
        assert self.records(caplog) == [
            "login failed: user='ada' ip=127.0.0.1",
            "login succeeded: user='ada' ip=127.0.0.1",
            "logout: user='ada' ip=127.0.0.1",
        ]

    def test_a_lockout_is_logged(self, client, user, caplog):
        with caplog.at_level(logging.INFO, "accounts.auth"):
            for _ in range(5):
                attempt(client)
        assert "login locked out: user='ada' ip=127.0.0.1" in self.records(caplog)

    def test_no_log_line_holds_a_password_or_a_session_id(self, client, user, caplog):
        with caplog.at_level(logging.DEBUG):
            attempt(client)
            attempt(client, password=PASSWORD)
            session_key = client.cookies[COOKIE].value
            client.post("/logout/")
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "wrong" not in text
        assert PASSWORD not in text
        assert session_key[:32] not in text


class TestCookies:
    def test_the_session_cookie_is_host_prefixed_secure_httponly_lax(
        self, client, user
    ):
        cookie = attempt(client, password=PASSWORD).cookies[COOKIE]
        assert COOKIE == "__Host-sessionid"
        assert cookie["secure"] is True
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert cookie["path"] == "/"
        assert cookie["domain"] == ""

    def test_the_cookie_expiry_follows_the_30_minute_idle_expiry(self, client, user):
        cookie = attempt(client, password=PASSWORD).cookies[COOKIE]
        assert cookie["max-age"] == 1800

    def test_the_csrf_cookie_is_secure(self, client):
        cookie = client.get("/login/").cookies[settings.CSRF_COOKIE_NAME]
        assert cookie["secure"] is True


class TestHeaders:
    @pytest.mark.parametrize(
        "path", ["/login/", "/dashboard/", "/visits/", "/password/"]
    )
    def test_login_and_authenticated_pages_are_not_stored(self, client, user, path):
        client.force_login(user)
        assert "no-store" in client.get(path)["Cache-Control"]

    def test_the_password_form_with_errors_is_not_stored(self, client, user):
        client.force_login(user)
        response = client.post("/password/", {"old_password": "wrong"})
        assert response.status_code == HTTPStatus.OK
        assert "no-store" in response["Cache-Control"]

    def test_logout_deletes_the_session_cookie_and_no_other(self, client, user):
        client.force_login(user)
        response = client.post("/logout/")
        assert "Clear-Site-Data" not in response
        assert response.cookies[COOKIE]["max-age"] == 0

    def test_security_headers_are_set(self, client):
        response = client.get("/login/", secure=True)
        assert (
            response["Strict-Transport-Security"]
            == "max-age=31536000; includeSubDomains"
        )
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"

    def test_the_content_security_policy_allows_only_this_site(self, client):
        policy = client.get("/login/")["Content-Security-Policy"]
        assert policy == (
            "default-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'"
        )

    @pytest.mark.parametrize("template", ["base.html", "accounts/login.html"])
    def test_templates_hold_no_inline_script_or_style(self, template):
        text = (ROOT / "templates" / template).read_text()
        assert "<script" not in text
        assert "<style" not in text
        assert "style=" not in text


def production_environment(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sessionsite.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x7Rq9-production-like-secret-key-long-enough-0123456789",
        "DJANGO_ALLOWED_HOSTS": "sessions.example.com",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        **extra,
    }


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_passes_with_production_settings():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_environment()
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (1 silenced)." in result.stdout


@pytest.mark.parametrize(
    ("flag", "expected"), [("0", "None"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https')")]
)
def test_the_proxy_ssl_header_is_trusted_only_when_declared(flag, expected):
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)",
        env=production_environment(DJANGO_BEHIND_TLS_PROXY=flag),
    )
    assert result.stdout.strip() == expected, result.stderr


def test_client_ip_trusts_x_forwarded_for_only_behind_the_declared_proxy(rf, settings):
    from accounts.services import client_ip

    request = rf.get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    assert client_ip(request) == "10.0.0.1"
    settings.BEHIND_TLS_PROXY = True
    assert client_ip(request) == "203.0.113.7"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("203.0.113.7:5555", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("unknown", "10.0.0.1"),
        ("not-an-ip", "10.0.0.1"),
    ],
)
def test_client_ip_takes_only_an_address_from_the_proxy(rf, settings, entry, expected):
    from accounts.services import client_ip

    settings.BEHIND_TLS_PROXY = True
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=entry)
    assert client_ip(request) == expected


@pytest.mark.django_db
def test_the_admin_login_refuses_an_oversized_username_before_any_query(client, caplog):
    response = client.get("/admin/login/")
    with caplog.at_level(logging.WARNING, "accounts.auth"):
        response = client.post(
            "/admin/login/", {"username": "u" * 300, "password": "x" * 5000}
        )
    assert response.status_code == HTTPStatus.OK
    assert response.context["form"].errors
    assert caplog.messages == []


def test_a_logged_username_is_cut_to_150_characters():
    from accounts.signals import shown

    assert shown("u" * 2_000_000) == "u" * 150 + "..."
    assert shown("ada") == "ada"


def test_collectstatic_writes_compressed_files_with_hashed_names(tmp_path, settings):
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {
            "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        },
    }
    call_command("collectstatic", "--no-input", verbosity=0)
    hashed = [p.name for p in (tmp_path / "css").glob("site.*.css")]
    assert len(hashed) == 1
    assert (tmp_path / "css" / f"{hashed[0]}.gz").exists()
