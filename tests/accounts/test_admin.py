"""Django's admin: staff only, behind the lockout, each user's sessions."""

from __future__ import annotations

import logging
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts import session_data
from tests.accounts.test_sessions import IPHONE, device, session_exists
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("boss", password=PASSWORD)


@pytest.fixture
def operator(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def change_page(user) -> str:
    return f"/admin/auth/user/{user.pk}/change/"


def end_all(user) -> str:
    return f"/admin/auth/user/{user.pk}/end-sessions/"


class TestSessionsOnTheChangePage:
    def test_the_users_sessions_are_listed(self, operator, user):
        device(), device(IPHONE, "198.51.100.9")
        html = operator.get(change_page(user)).content.decode()
        assert "Firefox 128 on Linux" in html
        assert "Mobile Safari 17 on iOS" in html
        assert "198.51.100.9" in html
        assert "End all sessions of this user" in html

    def test_end_all_sessions_ends_every_session_of_the_user(self, operator, user):
        laptop, phone = device(), device(IPHONE)
        response = operator.post(end_all(user))
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"] == change_page(user)
        assert (session_exists(laptop), session_exists(phone)) == (False, False)

    def test_the_operators_own_session_goes_on(self, operator, user):
        device()
        operator.post(end_all(user))
        assert operator.get(change_page(user)).status_code == HTTPStatus.OK

    def test_ending_takes_two_redis_round_trips(self, operator, user, round_trips):
        device(), device(IPHONE)
        round_trips.clear()
        operator.post(end_all(user))
        # Loading the operator's own session, then ending the user's: their
        # index first, since a script must be given every key it touches.
        assert round_trips == ["HGETALL", "ZRANGE", "EVALSHA"]

    def test_ending_is_logged_with_the_staff_users_name(self, operator, user, caplog):
        device(), device(IPHONE)
        caplog.clear()
        with caplog.at_level(logging.INFO, "accounts.auth"):
            operator.post(end_all(user))
        assert [r.getMessage() for r in caplog.records] == [
            "sessions ended by staff: staff='boss' user='ada' count=2 ip=127.0.0.1"
        ]

    def test_ending_needs_a_post(self, operator, user):
        laptop = device()
        response = operator.get(end_all(user))
        assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
        assert session_exists(laptop)

    def test_ending_needs_a_csrf_token(self, staff, user):
        laptop = device()
        operator = Client(enforce_csrf_checks=True)
        operator.force_login(staff)
        assert operator.post(end_all(user)).status_code == HTTPStatus.FORBIDDEN
        assert session_exists(laptop)


class TestStaffOnly:
    def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(self, user):
        laptop = device()
        response = laptop.get(change_page(user))
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"].startswith("/admin/login/")

    def test_a_user_who_is_not_staff_cannot_end_sessions(self, user):
        laptop = device()
        laptop.post(end_all(user))
        assert session_exists(laptop)


class TestAdminLogin:
    def log_in(self, client: Client, password: str):
        return client.post("/admin/login/", {"username": "boss", "password": password})

    def test_five_failures_lock_it_like_the_site_login(self, client, staff):
        for _ in range(5):
            self.log_in(client, "wrong")
        assert self.log_in(client, PASSWORD).status_code == (
            HTTPStatus.TOO_MANY_REQUESTS
        )

    def test_a_login_records_when_it_signed_in(self, client, staff):
        assert self.log_in(client, PASSWORD).status_code == HTTPStatus.FOUND
        assert session_data.SIGNED_IN_AT in client.session


def test_the_admin_lists_failed_login_attempts(operator, user):
    Client().post("/login/", {"username": "ada", "password": "wrong"})
    response = operator.get("/admin/axes/accessattempt/")
    assert response.status_code == HTTPStatus.OK
    assert "ada" in response.content.decode()
