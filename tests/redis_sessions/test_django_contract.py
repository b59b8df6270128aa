"""Django's own session contract, run against the engine whole (sync and async)."""

from __future__ import annotations

from django.test import SimpleTestCase
from sessions_tests.tests import SessionTestsMixin

from sessionsite.redis_sessions.engine import SessionStore


class RedisSessionContractTests(SessionTestsMixin, SimpleTestCase):
    backend = SessionStore
