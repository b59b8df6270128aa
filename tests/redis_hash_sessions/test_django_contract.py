"""
Django's own session contract, run against the engine whole (sync and async).

Each of ``SessionTestsMixin``'s tests is one pytest test here, run by
unittest as Django runs it, so that it runs on every topology of the
engine's tests (pytest cannot give a unittest class fixture parameters).
"""

from __future__ import annotations

import unittest

import pytest
from django.test import SimpleTestCase
from sessions_tests.tests import SessionTestsMixin

from redis_hash_sessions.engine import SessionStore


class RedisSessionContractTests(SessionTestsMixin, SimpleTestCase):
    backend = SessionStore
    __test__ = False  # run one test at a time below


CONTRACT = sorted(
    name
    for name in unittest.defaultTestLoader.getTestCaseNames(RedisSessionContractTests)
)


def test_the_contract_is_found_in_djangos_tests() -> None:
    assert {"test_cycle", "test_actual_expiry", "test_default_expiry"} <= {*CONTRACT}


@pytest.mark.parametrize("name", CONTRACT)
def test_djangos_session_contract(name: str) -> None:
    result = unittest.TestResult()
    # A suite, as Django's runner uses: it sets up the class and cleans up
    # after it, and runs an async test in an event loop of its own.
    unittest.TestSuite([RedisSessionContractTests(name)]).run(result)
    assert not result.skipped
    assert result.wasSuccessful(), "\n".join(
        trace for _, trace in [*result.errors, *result.failures]
    )
