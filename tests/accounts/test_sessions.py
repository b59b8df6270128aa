"""Per-user sessions on the site: see every device, end them, timeouts."""

from __future__ import annotations

from http import HTTPStatus
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from accounts import services, session_data
from redis_hash_sessions import keys, users
from redis_hash_sessions.engine import SessionStore
from tests.conftest import PASSWORD, caches_for, session_redis_key, user_index
from tests.redis_process import free_port

pytestmark = pytest.mark.django_db

COOKIE = settings.SESSION_COOKIE_NAME
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def device(user_agent: str = FIREFOX, ip: str = "203.0.113.7", username: str = "ada"):
    client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    return client


def key_hash(client: Client) -> str:
    return keys.key_hash(client.cookies[COOKIE].value)


def session_exists(client: Client) -> bool:
    return SessionStore().exists(client.cookies[COOKIE].value)


def follow_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


class TestPanel:
    def test_both_devices_are_listed_with_device_and_ip(self, user):
        laptop, phone = device(), device(IPHONE, "198.51.100.9")
        sessions = laptop.get("/dashboard/").context["sessions"]
        assert {(s.device, s.ip) for s in sessions} == {
            ("Firefox 128 on Linux", "203.0.113.7"),
            ("Mobile Safari 17 on iOS", "198.51.100.9"),
        }
        assert [s.key_hash for s in sessions if s.current] == [key_hash(laptop)]
        assert phone.get("/dashboard/").status_code == HTTPStatus.OK

    def test_the_panel_shows_this_device_and_sign_out_buttons(self, user):
        laptop, _phone = device(), device(IPHONE)
        html = laptop.get("/dashboard/").content.decode()
        assert "(this device)" in html
        assert html.count(">Sign out</button>") == 1
        assert "Sign out all other sessions" in html

    def test_another_users_sessions_are_never_listed(self, user):
        get_user_model().objects.create_user("bob", password=PASSWORD)
        device(username="bob")
        laptop = device()
        assert len(laptop.get("/dashboard/").context["sessions"]) == 1


UNREADABLE = [
    ("ip", "{not json"),
    ("ip", "[1]"),
    ("last_active", '"abc"'),
    ("signed_in_at", '"abc"'),
    ("signed_in_at", "{not json"),
    ("device", "null"),
]


class TestCorruptSessionInTheList:
    @pytest.mark.parametrize(("field", "raw"), UNREADABLE)
    def test_the_others_are_still_listed(self, user, redis_client, field, raw):
        laptop, phone = device(), device(IPHONE)
        phone_redis_key = session_redis_key(phone.cookies[COOKIE].value)
        redis_client.hset(phone_redis_key, f"d:{field}", raw)
        response = laptop.get("/dashboard/")
        assert response.status_code == HTTPStatus.OK
        assert [s.key_hash for s in response.context["sessions"]] == [key_hash(laptop)]

    @pytest.mark.parametrize(("field", "raw"), UNREADABLE)
    def test_the_unreadable_one_is_ended(self, user, redis_client, field, raw):
        laptop, phone = device(), device(IPHONE)
        phone_redis_key = session_redis_key(phone.cookies[COOKIE].value)
        redis_client.hset(phone_redis_key, f"d:{field}", raw)
        laptop.get("/dashboard/")
        assert redis_client.exists(phone_redis_key) == 0
        assert redis_client.zrange(user_index(user.pk), 0, -1) == [
            key_hash(laptop).encode()
        ]

    def test_one_warning_is_logged(self, user, redis_client, caplog):
        laptop, phone = device(), device(IPHONE)
        phone_redis_key = session_redis_key(phone.cookies[COOKIE].value)
        redis_client.hset(phone_redis_key, "d:ip", "{not json")
        caplog.clear()
        laptop.get("/dashboard/")
        assert [
            r.getMessage()
            for r in caplog.records
            if r.name == "django.security.SuspiciousSession"
        ] == [
            "Session data corrupted: ending 1 unreadable session(s) of user "
            f"id={user.pk}"
        ]


def test_a_visit_after_a_secret_key_rotation_counts_once(user, settings):
    client = device()
    json = {"accept": "application/json"}
    assert client.get("/visits/", headers=json).json()["visits"] == 1
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    # Django's get_user() cycles the key of a session hashed with the old one.
    assert client.get("/visits/", headers=json).json()["visits"] == 2
    assert client.get("/visits/", headers=json).json()["visits"] == 3


class TestEnding:
    def test_signing_out_another_device_ends_it_at_once(self, user):
        laptop, phone = device(), device(IPHONE)
        laptop.post(f"/sessions/{key_hash(phone)}/end/")
        assert not session_exists(phone)
        assert session_exists(laptop)

    @pytest.mark.parametrize("page", ["/dashboard/", "/visits/"])
    def test_the_ended_device_lands_on_login_saying_why(self, user, page):
        laptop, phone = device(), device(IPHONE)
        laptop.post(f"/sessions/{key_hash(phone)}/end/")
        response = phone.get(page, follow=True)
        assert response.redirect_chain[-1][0].startswith("/login/")
        assert follow_messages(response) == [
            "Your session was ended from another device."
        ]

    def test_sign_out_all_others_keeps_only_this_session(self, user):
        laptop, phone, tablet = device(), device(IPHONE), device(ip="192.0.2.1")
        laptop.post("/sessions/end-others/")
        assert (session_exists(phone), session_exists(tablet)) == (False, False)
        assert session_exists(laptop)
        assert len(laptop.get("/dashboard/").context["sessions"]) == 1

    def test_a_forged_key_hash_of_another_user_ends_nothing(self, user):
        get_user_model().objects.create_user("bob", password=PASSWORD)
        bob = device(username="bob")
        mallory = device()
        response = mallory.post(f"/sessions/{key_hash(bob)}/end/", follow=True)
        assert session_exists(bob)
        assert follow_messages(response) == [
            "That session was not found; it may have ended already."
        ]

    def test_ending_needs_a_post(self, user):
        laptop, phone = device(), device(IPHONE)
        response = laptop.get(f"/sessions/{key_hash(phone)}/end/")
        assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
        assert session_exists(phone)


class TestPasswordChange:
    def change(self, client: Client):
        return client.post(
            "/password/",
            {
                "old_password": PASSWORD,
                "new_password1": "a brand new passphrase 9",
                "new_password2": "a brand new passphrase 9",
            },
        )

    def test_other_sessions_are_deleted_from_redis_at_once(self, user, redis_client):
        laptop, phone = device(), device(IPHONE)
        phone_redis_key = session_redis_key(phone.cookies[COOKIE].value)
        assert self.change(laptop).status_code == HTTPStatus.FOUND
        assert redis_client.exists(phone_redis_key) == 0

    def test_this_session_goes_on_under_a_new_key(self, user):
        laptop = device()
        old = laptop.cookies[COOKIE].value
        self.change(laptop)
        assert laptop.cookies[COOKIE].value != old
        assert laptop.get("/dashboard/").status_code == HTTPStatus.OK
        assert not SessionStore().exists(old)

    def test_the_page_is_linked_from_the_dashboard(self, user):
        assert 'href="/password/"' in device().get("/dashboard/").content.decode()


def deactivate(user) -> None:
    user.is_active = False
    user.save()


def delete(user) -> None:
    user.delete()


class TestUsersWhoLeave:
    @pytest.mark.parametrize("leave", [deactivate, delete])
    def test_their_sessions_end_once_the_change_is_committed(
        self, user, leave, django_capture_on_commit_callbacks
    ):
        laptop, phone = device(), device(IPHONE)
        with django_capture_on_commit_callbacks(execute=True):
            leave(user)
            assert (session_exists(laptop), session_exists(phone)) == (True, True)
        assert (session_exists(laptop), session_exists(phone)) == (False, False)

    @pytest.mark.parametrize("leave", [deactivate, delete])
    def test_a_redis_outage_keeps_the_change_and_is_logged(
        self, user, leave, django_capture_on_commit_callbacks, settings, caplog
    ):
        original, user_id = settings.CACHES, user.pk
        device()
        caplog.clear()
        settings.CACHES = caches_for(f"redis://127.0.0.1:{free_port()}/0")
        with django_capture_on_commit_callbacks(execute=True):
            leave(user)
        settings.CACHES = original
        assert not get_user_model().objects.filter(is_active=True).exists()
        logged = [r.getMessage() for r in caplog.records if r.name == "accounts.auth"]
        assert logged == [
            f"could not end the sessions of user id={user_id} (they are refused "
            "until they expire): Redis is unavailable"
        ]

    @pytest.mark.parametrize("leave", [deactivate, delete])
    def test_sessions_left_by_an_outage_are_refused(
        self, user, leave, django_capture_on_commit_callbacks, settings
    ):
        original = settings.CACHES
        laptop = device()
        settings.CACHES = caches_for(f"redis://127.0.0.1:{free_port()}/0")
        with django_capture_on_commit_callbacks(execute=True):
            leave(user)
        settings.CACHES = original
        assert session_exists(laptop)
        response = laptop.get("/dashboard/")
        assert response.status_code == HTTPStatus.FOUND
        assert response["Location"].startswith("/login/")


class TestTimeouts:
    def test_the_absolute_lifetime_ends_an_active_session(self, user, monkeypatch):
        laptop = device()
        later = services.clock() + settings.SESSION_ABSOLUTE_LIFETIME + 1
        monkeypatch.setattr(services, "clock", lambda: later)
        response = laptop.get("/dashboard/", follow=True)
        assert response.redirect_chain[-1][0].startswith("/login/")
        assert follow_messages(response) == [
            "Your session expired. Please sign in again."
        ]
        assert not session_exists(laptop)

    def test_activity_does_not_extend_the_absolute_lifetime(self, user, monkeypatch):
        laptop = device()
        start = services.clock()
        for hour in range(1, 13):
            monkeypatch.setattr(services, "clock", lambda h=hour: start + h * 3600 - 60)
            assert laptop.get("/dashboard/").status_code == HTTPStatus.OK
        monkeypatch.setattr(services, "clock", lambda: start + 12 * 3600 + 1)
        assert laptop.get("/dashboard/").status_code == HTTPStatus.FOUND

    def test_a_login_by_any_path_records_when_it_signed_in(self, client, user):
        client.force_login(user)
        assert session_data.SIGNED_IN_AT in client.session

    def test_the_absolute_lifetime_ends_a_session_logged_in_by_any_path(
        self, client, user, monkeypatch
    ):
        client.force_login(user)
        later = services.clock() + settings.SESSION_ABSOLUTE_LIFETIME + 1
        monkeypatch.setattr(services, "clock", lambda: later)
        assert client.get("/dashboard/").status_code == HTTPStatus.FOUND
        assert not session_exists(client)

    def test_a_signed_in_session_that_does_not_say_when_has_expired(
        self, user, redis_client
    ):
        laptop = device()
        redis_key = session_redis_key(laptop.cookies[COOKIE].value)
        redis_client.hdel(redis_key, "d:" + session_data.SIGNED_IN_AT)
        response = laptop.get("/dashboard/", follow=True)
        assert follow_messages(response) == [
            "Your session expired. Please sign in again."
        ]
        assert not session_exists(laptop)

    def test_an_idle_session_that_redis_expired_lands_on_login_saying_so(
        self, user, redis_client
    ):
        laptop = device()
        redis_client.delete(session_redis_key(laptop.cookies[COOKIE].value))
        response = laptop.get("/dashboard/", follow=True)
        assert follow_messages(response) == [
            "Your session expired. Please sign in again."
        ]

    def test_activity_refreshes_the_idle_ttl_at_most_once_a_minute(
        self, user, redis_client, monkeypatch
    ):
        laptop = device()
        redis_key = session_redis_key(laptop.cookies[COOKIE].value)
        start = services.clock()
        redis_client.expire(redis_key, 100)
        monkeypatch.setattr(services, "clock", lambda: start + 30)
        laptop.get("/")
        assert redis_client.ttl(redis_key) <= 100
        monkeypatch.setattr(services, "clock", lambda: start + 61)
        laptop.get("/")
        assert redis_client.ttl(redis_key) > 1790

    def test_last_active_is_shown_as_it_was_noted(self, user, monkeypatch):
        laptop = device()
        start = services.clock()
        monkeypatch.setattr(services, "clock", lambda: start + 120)
        laptop.get("/")
        (entry,) = laptop.get("/dashboard/").context["sessions"]
        assert int(entry.last_active.timestamp()) == int(start + 120)


def two_devices_under_a_cap_of_two(settings, monkeypatch) -> tuple[Client, Client]:
    """Sign in on two devices a second apart, then let another second pass."""
    settings.SESSION_MAX_PER_USER = 2
    start = services.clock()
    monkeypatch.setattr(services, "clock", lambda: start)
    first = device()
    monkeypatch.setattr(services, "clock", lambda: start + 1)
    second = device(IPHONE)
    monkeypatch.setattr(services, "clock", lambda: start + 2)
    return first, second


def test_the_cap_ends_the_oldest_session(user, settings, monkeypatch):
    first, second = two_devices_under_a_cap_of_two(settings, monkeypatch)
    third = device(ip="192.0.2.1")
    assert [session_exists(c) for c in (first, second, third)] == [False, True, True]


def sign_in_again(client: Client) -> None:
    response = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND


@pytest.mark.parametrize("again", ["oldest", "newest"])
def test_signing_in_again_under_the_cap_ends_no_other_session(
    user, settings, monkeypatch, again
):
    first, second = two_devices_under_a_cap_of_two(settings, monkeypatch)
    sign_in_again(first if again == "oldest" else second)
    assert [session_exists(c) for c in (first, second)] == [True, True]
    assert len(users.sessions_of(user.pk)) == 2


def test_an_index_member_that_is_no_key_hash_fails_no_page(user, redis_client):
    laptop, phone = device(), device(IPHONE)
    redis_client.rename(
        session_redis_key(phone.cookies[COOKIE].value), keys.names().session("a/b")
    )
    redis_client.zadd(user_index(user.pk), {"a/b": 9_999_999_999})
    response = laptop.get("/dashboard/")
    assert response.status_code == HTTPStatus.OK
    assert [s.key_hash for s in users.sessions_of(user.pk)] == [key_hash(laptop)]


def test_a_session_of_the_user_turned_into_another_type_fails_no_page(
    user, redis_client
):
    laptop, phone = device(), device(IPHONE)
    redis_key = session_redis_key(phone.cookies[COOKIE].value)
    redis_client.delete(redis_key)
    redis_client.set(redis_key, "not a session")
    assert laptop.get("/dashboard/").status_code == HTTPStatus.OK
    assert laptop.post("/sessions/end-others/").status_code == HTTPStatus.FOUND


class TestCommand:
    def run(self, *args: str) -> str:
        out = StringIO()
        call_command("sessions", *args, stdout=out)
        return out.getvalue()

    def test_count_counts_every_session(self, user):
        device(), device(IPHONE)
        Client().get("/visits/")
        assert self.run("count") == "3\n"

    def test_list_shows_a_table_of_the_users_sessions(self, user):
        laptop = device()
        lines = self.run("list", "--user", "ada").splitlines()
        assert lines[0].split()[:3] == ["KEY", "HASH", "DEVICE"]
        assert lines[1].startswith(key_hash(laptop))
        assert "Firefox 128 on Linux" in lines[1]
        assert "203.0.113.7" in lines[1]

    def test_revoke_a_user_except_one(self, user):
        laptop, phone = device(), device(IPHONE)
        out = self.run(
            "revoke", "--user", "ada", f"--except-key-hash={key_hash(laptop)}"
        )
        assert out == "Ended 1 session(s) of ada.\n"
        assert (session_exists(laptop), session_exists(phone)) == (True, False)

    def test_revoke_one_by_key_hash(self, user):
        laptop = device()
        assert self.run("revoke", f"--key-hash={key_hash(laptop)}") == (
            f"Ended session {key_hash(laptop)}.\n"
        )
        assert not session_exists(laptop)

    def test_revoke_by_key_hash_ends_a_session_that_its_index_lost(
        self, user, redis_client
    ):
        laptop = device()
        redis_client.delete(user_index(user.pk))
        self.run("revoke", f"--key-hash={key_hash(laptop)}")
        assert not session_exists(laptop)

    def test_revoke_by_key_hash_never_says_it_ended_what_it_did_not(
        self, user, redis_client
    ):
        laptop = device()
        # A hash that names the user and holds no session: nothing to end.
        redis_key = session_redis_key(laptop.cookies[COOKIE].value)
        redis_client.hdel(redis_key, "m:created")
        with pytest.raises(CommandError, match="No logged-in session"):
            self.run("revoke", f"--key-hash={key_hash(laptop)}")
        assert redis_client.exists(redis_key)

    @pytest.mark.parametrize(
        "name",
        ["another type", "user:{pk}", "\udcff"],
        ids=["another-type", "an-index", "not-utf8"],
    )
    def test_revoke_by_a_key_hash_of_no_session_is_an_error_not_a_traceback(
        self, user, redis_client, name
    ):
        laptop = device()
        redis_key = session_redis_key(laptop.cookies[COOKIE].value)
        if name == "another type":
            redis_client.delete(redis_key)
            redis_client.set(redis_key, "not a session")
            name = key_hash(laptop)
        with pytest.raises(CommandError, match="No logged-in session"):
            self.run("revoke", f"--key-hash={name.format(pk=user.pk)}")

    def test_an_empty_key_hash_is_an_unknown_one(self, user):
        with pytest.raises(CommandError, match="No logged-in session"):
            self.run("revoke", "--key-hash=")

    def test_a_key_hash_that_starts_with_a_dash_is_accepted(self, user, redis_client):
        laptop = device()
        dashed = "-" + key_hash(laptop)[1:]
        redis_client.rename(
            keys.names().session(key_hash(laptop)), keys.names().session(dashed)
        )
        redis_client.zadd(user_index(user.pk), {dashed: 9_999_999_999})
        assert (
            self.run("revoke", f"--key-hash={dashed}") == f"Ended session {dashed}.\n"
        )
        assert redis_client.exists(keys.names().session(dashed)) == 0

    def test_an_unknown_user_is_an_error(self, user):
        with pytest.raises(CommandError, match="No user named 'nobody'"):
            self.run("list", "--user", "nobody")

    def test_an_unknown_key_hash_is_an_error(self, user):
        with pytest.raises(CommandError, match="No logged-in session"):
            self.run("revoke", "--key-hash", "no-such-session")

    def test_a_redis_that_does_not_answer_is_an_error_not_a_traceback(self, settings):
        settings.CACHES = caches_for(f"redis://127.0.0.1:{free_port()}/0")
        with pytest.raises(CommandError, match="The session store did not answer"):
            self.run("count")
