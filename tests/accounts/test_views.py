"""The site's pages, through Django's test client and a real Redis."""

from __future__ import annotations

from http import HTTPStatus

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from redis_hash_sessions import users
from redis_hash_sessions.engine import SessionStore
from tests.conftest import PASSWORD, session_redis_key

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
JSON = {"accept": "application/json"}


def log_in(client: Client, **extra: str):
    return client.post("/login/", {"username": "ada", "password": PASSWORD, **extra})


class TestHome:
    def test_sends_a_visitor_to_login(self, client):
        response = client.get("/")
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"] == "/login/"

    def test_sends_a_logged_in_user_to_the_dashboard(self, client, user):
        log_in(client)
        assert client.get("/")["Location"] == "/dashboard/"


class TestLogin:
    def test_page_shows_the_form(self, client):
        response = client.get("/login/")
        assert response.status_code == HTTPStatus.OK
        html = response.content.decode()
        assert 'name="username"' in html
        assert 'name="password"' in html
        assert 'name="csrfmiddlewaretoken"' in html
        assert '<label for="id_username">' in html

    def test_success_redirects_to_the_dashboard(self, client, user):
        response = log_in(client)
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"] == "/dashboard/"

    def test_success_stores_the_user_in_a_new_session(self, client, user):
        client.get("/visits/")
        anonymous = client.cookies[COOKIE].value
        log_in(client)
        session = SessionStore(client.cookies[COOKIE].value)
        assert session.session_key != anonymous
        assert session["_auth_user_id"] == str(user.pk)
        assert not SessionStore().exists(anonymous)

    def test_logging_in_again_gets_a_new_key_and_drops_the_old(self, client, user):
        log_in(client)
        first = client.cookies[COOKIE].value
        log_in(client)
        assert client.cookies[COOKIE].value != first
        assert not SessionStore().exists(first)

    def test_follows_a_safe_next(self, client, user):
        response = log_in(client, next="/visits/")
        assert response["Location"] == "/visits/"

    def test_ignores_a_next_on_another_host(self, client, user):
        response = log_in(client, next="https://evil.example/")
        assert response["Location"] == "/dashboard/"

    def test_wrong_password_shows_the_generic_error(self, client, user):
        response = client.post("/login/", {"username": "ada", "password": "wrong"})
        assert response.status_code == HTTPStatus.OK
        assert "Invalid username or password." in response.content.decode()

    @pytest.mark.parametrize("case", ["unknown user", "wrong password", "inactive"])
    def test_every_failure_reads_the_same(self, client, user, case):
        username, password = {
            "unknown user": ("nobody", PASSWORD),
            "wrong password": ("ada", "wrong"),
            "inactive": ("ada", PASSWORD),
        }[case]
        if case == "inactive":
            user.is_active = False
            user.save()
        response = client.post("/login/", {"username": username, "password": password})
        form = response.context["form"]
        assert form.errors == {"__all__": ["Invalid username or password."]}

    def test_failure_keeps_the_username_but_not_the_password(self, client, user):
        response = client.post("/login/", {"username": "ada", "password": "wrong"})
        html = response.content.decode()
        assert 'value="ada"' in html
        assert 'value="wrong"' not in html

    def test_failure_creates_no_session(self, client, user, redis_client):
        response = client.post("/login/", {"username": "ada", "password": "wrong"})
        assert COOKIE not in response.cookies
        assert redis_client.dbsize() == 0

    @pytest.mark.parametrize("field", ["username", "password"])
    def test_an_oversized_field_is_a_form_error(self, client, user, field):
        data = {"username": "ada", "password": PASSWORD, field: "x" * 100_000}
        response = client.post("/login/", data)
        assert response.status_code == HTTPStatus.OK
        assert response.context["form"].errors[field]

    def test_shows_the_demo_credentials_only_in_debug(self, client, settings):
        settings.DEMO_USERNAME, settings.DEMO_PASSWORD = "admin", "secret"
        assert "Demo account" not in client.get("/login/").content.decode()
        settings.DEBUG = True
        assert "Demo account" in client.get("/login/").content.decode()


class TestDashboard:
    def test_requires_login(self, client):
        response = client.get("/dashboard/")
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"] == "/login/?next=/dashboard/"

    def test_welcomes_the_user_and_counts_the_visit(self, client, user):
        log_in(client)
        html = client.get("/dashboard/").content.decode()
        assert "Welcome ada!" in html
        assert '<strong id="visit-count">1</strong>' in html

    def test_tells_about_the_session(self, client, user):
        log_in(client)
        facts = client.get("/dashboard/").context["facts"]
        assert facts.signed_in_at is not None
        assert facts.expires_at > facts.signed_in_at
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert facts.redis_key == session_redis_key(cookie)

    def test_counts_up_on_each_view(self, client, user):
        log_in(client)
        counts = [client.get("/dashboard/").context["visits"] for _ in range(3)]
        assert counts == [1, 2, 3]


class TestVisits:
    def test_counts_one_two_three(self, client):
        counts = [client.get("/visits/").context["visits"] for _ in range(3)]
        assert counts == [1, 2, 3]

    def test_answers_json_when_asked(self, client):
        response = client.get("/visits/", headers=JSON)
        assert response.json() == {"visits": 1, "username": None}
        assert "Accept" in response["Vary"]

    def test_shares_the_count_with_the_dashboard(self, client, user):
        log_in(client)
        client.get("/dashboard/")
        response = client.get("/visits/", headers=JSON)
        assert response.json() == {"visits": 2, "username": "ada"}

    def test_welcomes_back_a_logged_in_user(self, client, user):
        log_in(client)
        assert "Welcome back, ada" in client.get("/visits/").content.decode()

    def test_keeps_an_anonymous_count_through_login(self, client, user):
        client.get("/visits/")
        log_in(client)
        assert client.get("/visits/", headers=JSON).json()["visits"] == 2


class TestLogout:
    def test_destroys_the_session_and_its_cookie(self, client, user, redis_client):
        log_in(client)
        session_key = client.cookies[COOKIE].value
        response = client.post("/logout/")
        assert response.cookies[COOKIE].value == ""
        assert redis_client.exists(session_redis_key(session_key)) == 0
        assert users.sessions_of(user.pk) == []

    def test_redirects_to_login_with_a_message(self, client, user):
        log_in(client)
        response = client.post("/logout/", follow=True)
        assert response.redirect_chain == [("/login/?logged_out=1", HTTPStatus.FOUND)]
        assert "You have been logged out." in response.content.decode()

    def test_asks_for_login_again_afterwards(self, client, user):
        log_in(client)
        client.post("/logout/")
        assert client.get("/dashboard/")["Location"] == "/login/?next=/dashboard/"

    def test_get_is_not_allowed(self, client):
        assert client.get("/logout/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


class TestNoSessionForVisitorsWhoStoreNothing:
    @pytest.mark.parametrize("path", ["/", "/login/", "/dashboard/"])
    def test_no_cookie_and_no_redis_key(self, client, path, redis_client):
        response = client.get(path)
        assert COOKIE not in response.cookies
        assert redis_client.dbsize() == 0


def test_update_session_auth_hash_keeps_the_user_logged_in_under_a_new_key(
    client, user, redis_client: redis.Redis
):
    log_in(client)
    old = client.cookies[COOKIE].value
    from django.contrib.auth import update_session_auth_hash
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = SessionStore(old)
    request.user = user
    user.set_password("a new password 42")
    user.save()
    update_session_auth_hash(request, user)
    request.session.save()
    client.cookies[COOKIE] = request.session.session_key
    assert client.get("/dashboard/").status_code == HTTPStatus.OK
    assert not SessionStore().exists(old)
    assert get_user_model().objects.get().check_password("a new password 42")


class TestMethods:
    @pytest.mark.parametrize("path", ["/", "/healthz", "/readyz", "/visits/"])
    def test_head_is_answered_like_get(self, client, path):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code
        assert head.content == b""

    def test_head_on_the_dashboard_is_answered(self, client, user):
        client.force_login(user)
        assert client.head("/dashboard/").status_code == HTTPStatus.OK

    def test_head_on_visits_counts_nothing(self, client):
        client.get("/visits/")
        client.head("/visits/")
        assert client.get("/visits/", headers=JSON).json()["visits"] == 2

    def test_head_on_the_dashboard_counts_nothing(self, client, user):
        client.force_login(user)
        client.get("/dashboard/")
        client.head("/dashboard/")
        assert client.get("/visits/", headers=JSON).json()["visits"] == 2

    def test_head_without_a_session_creates_none(self, client, redis_client):
        client.head("/visits/")
        assert COOKIE not in client.cookies
        assert redis_client.dbsize() == 0

    @pytest.mark.parametrize("path", ["/", "/healthz", "/visits/"])
    def test_options_is_refused_where_only_reading_is_meant(self, client, path):
        response = client.options(path)
        assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
        assert response["Allow"] == "GET, HEAD"

    @pytest.mark.parametrize("path", ["/login/", "/password/"])
    def test_put_on_a_form_is_405(self, client, user, path):
        client.force_login(user)
        assert client.put(path).status_code == HTTPStatus.METHOD_NOT_ALLOWED


@pytest.mark.parametrize("path", ["/sessions/end-others/", "/sessions/abc/end/"])
def test_ending_sessions_answers_405_to_a_get_even_when_signed_out(client, path):
    response = client.get(path)
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response["Allow"] == "POST"
