"""Key names come from the cache entry's key function: two sites never meet."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.core import signing
from django.test import override_settings

from redis_hash_sessions import keys, users
from redis_hash_sessions.engine import SessionStore
from tests.topologies import Topology


def site(topology: Topology, **entry: Any) -> Any:
    caches = topology.caches()
    caches["default"].update(entry)
    return override_settings(CACHES=caches)


def signed_in(user_id: str) -> str:
    session = SessionStore()
    session[SESSION_KEY] = user_id
    session.save()
    assert session.session_key is not None
    return session.session_key


@pytest.mark.parametrize(
    ("site_a", "site_b"),
    [
        ({"KEY_PREFIX": "a"}, {"KEY_PREFIX": "b"}),
        ({"VERSION": 1}, {"VERSION": 2}),
    ],
    ids=["key prefix", "version"],
)
def test_two_sites_on_one_redis_never_see_each_others_sessions(
    redis_topology, site_a, site_b
):
    with site(redis_topology, **site_a):
        key = signed_in("1")
    with site(redis_topology, **site_b):
        assert users.sessions_of("1") == []
        assert users.end_sessions("1") == 0
        assert users.count_sessions() == 0
        assert SessionStore(key).load() == {}
    with site(redis_topology, **site_a):
        assert [s.key_hash for s in users.sessions_of("1")] == [
            SessionStore(key).key_hash
        ]


def test_the_key_function_names_every_key(redis_topology, redis_client):
    def key_function(key: str, key_prefix: str, version: int) -> str:
        return f"custom|{key}"

    with site(redis_topology, KEY_FUNCTION=key_function):
        signed_in("1")
    names = sorted(name.decode() for name in redis_client.scan_iter())
    assert len(names) == 2
    assert all(name.startswith("custom|session:") for name in names)


def test_a_cookie_signed_before_the_engine_moved_packages_still_verifies():
    # The signatures' salt is a format constant: browsers hold cookies signed
    # with it, under the engine's first module name.
    signer = signing.Signer(salt="sessionsite.redis_sessions", algorithm="sha256")
    cookie = signer.sign("a" * keys.ID_LENGTH)
    assert keys.verify(cookie) == cookie


def test_a_new_key_carries_djangos_signature_of_its_id():
    key = keys.new_session_key()
    signer = signing.Signer(salt="sessionsite.redis_sessions", algorithm="sha256")
    assert signer.unsign(key) == key[: keys.ID_LENGTH]
    assert signer.sign(key[: keys.ID_LENGTH]) == key


def test_a_cookie_signed_with_a_fallback_secret_verifies_re_signed(settings):
    old = signing.Signer(
        key="the-old-secret", salt="sessionsite.redis_sessions", algorithm="sha256"
    ).sign("b" * keys.ID_LENGTH)
    settings.SECRET_KEY_FALLBACKS = ["another-old-secret", "the-old-secret"]
    current = signing.Signer(salt="sessionsite.redis_sessions", algorithm="sha256")
    assert keys.verify(old) == current.sign("b" * keys.ID_LENGTH)


def test_a_changed_secret_key_signs_and_verifies_from_then_on(settings):
    before = keys.new_session_key()
    settings.SECRET_KEY = "a-rotated-secret"
    after = keys.new_session_key()
    assert keys.verify(before) is None
    signer = signing.Signer(salt="sessionsite.redis_sessions", algorithm="sha256")
    assert signer.unsign(after) == after[: keys.ID_LENGTH]


@pytest.mark.parametrize(
    "secret",
    ["x" * 200, "ünïcödé-sëcret-☃", b"bytes-secret\x00\xff", "s"],
    ids=["long", "non-ascii", "bytes", "one-character"],
)
def test_signatures_are_djangos_under_any_secret(settings, secret):
    settings.SECRET_KEY = secret
    signer = signing.Signer(salt="sessionsite.redis_sessions", algorithm="sha256")
    key = keys.new_session_key()
    assert signer.sign(key[: keys.ID_LENGTH]) == key
    assert keys.verify(signer.sign("e" * keys.ID_LENGTH)) is not None


def test_a_cookie_of_a_fallback_secret_since_removed_does_not_verify(settings):
    old = signing.Signer(
        key="the-old-secret", salt="sessionsite.redis_sessions", algorithm="sha256"
    ).sign("f" * keys.ID_LENGTH)
    settings.SECRET_KEY_FALLBACKS = ["the-old-secret"]
    assert keys.verify(old) is not None
    settings.SECRET_KEY_FALLBACKS = []
    assert keys.verify(old) is None


def test_a_secret_changed_while_a_thread_keys_its_hmacs_is_the_one_used(
    settings, monkeypatch
):
    # The thread read the old SECRET_KEY just before it changed; what it
    # keys from it must not outlive the change.
    keying, changed = threading.Event(), threading.Event()
    mac = keys._Mac

    def slow_mac(secret: str | bytes) -> keys._Mac:
        if not keying.is_set():
            keying.set()
            changed.wait(timeout=10)
        return mac(secret)

    monkeypatch.setattr(keys, "_Mac", slow_mac)
    keys._macs.forget()
    thread = threading.Thread(target=keys._macs)
    thread.start()
    assert keying.wait(timeout=10)
    settings.SECRET_KEY = "changed-while-a-thread-keyed"
    changed.set()
    thread.join(timeout=10)
    signer = signing.Signer(salt="sessionsite.redis_sessions", algorithm="sha256")
    key = keys.new_session_key()
    assert signer.sign(key[: keys.ID_LENGTH]) == key


def test_a_cookie_signed_with_an_unknown_secret_does_not_verify(settings):
    forged = signing.Signer(
        key="not-our-secret", salt="sessionsite.redis_sessions", algorithm="sha256"
    ).sign("c" * keys.ID_LENGTH)
    settings.SECRET_KEY_FALLBACKS = ["the-old-secret"]
    assert keys.verify(forged) is None


def test_new_session_ids_draw_every_character_evenly_at_every_place():
    ids = [keys.new_session_key()[: keys.ID_LENGTH] for _ in range(10_000)]
    alphabet = set(VALID_KEY_CHARS)
    # More than five standard deviations from the mean fails, a chance of
    # about one in a million per run; a skewed draw (a modulo of too few
    # random bits, say) is off by far more at its first or last place.
    overall = Counter("".join(ids))
    assert set(overall) == alphabet
    assert all(abs(n - 320_000 / 36) < 533 for n in overall.values())
    for place in (0, keys.ID_LENGTH - 1):
        counts = Counter(session_id[place] for session_id in ids)
        assert set(counts) == alphabet
        assert all(abs(n - 10_000 / 36) < 100 for n in counts.values())


@pytest.mark.parametrize(
    ("empty", "as_bytes"), [("", b""), (None, b"None")], ids=["empty-string", "none"]
)
def test_an_empty_fallback_secret_signs_nothing_of_its_own(settings, empty, as_bytes):
    # Django's Signer takes an empty fallback for SECRET_KEY itself, so a
    # signature made with the empty secret (or its bytes) is no signature.
    settings.SECRET_KEY_FALLBACKS = [empty]
    session_id = "d" * keys.ID_LENGTH
    signature = signing.base64_hmac(
        "sessionsite.redis_sessions" + "signer", session_id, as_bytes, "sha256"
    )
    assert keys.verify(f"{session_id}:{signature}") is None
