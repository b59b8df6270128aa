"""The types of the session fields that the site reads, and a check of them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

VISITS = "visits"
SIGNED_IN_AT = "signed_in_at"
LAST_ACTIVE = "last_active"
IP = "ip"
DEVICE = "device"
EXPIRY = "_session_expiry"

# A count nobody could reach by visiting, far from where Redis's signed 64-bit
# increment overflows; Unix times end with the year 9999.
_COUNT_RANGE = range(0, 2**53)
_UNIX_TIME_RANGE = range(0, 253_402_300_800)
CLOCK_SKEW = timedelta(minutes=5)
# set_expiry() seconds: 0 (the default age) up to ten years.
_EXPIRY_RANGE = range(0, 10 * 366 * 24 * 3600)


def _integer_in(allowed: range) -> Callable[[Any], bool]:
    return lambda value: type(value) is int and value in allowed


def _aware_time(value: Any) -> datetime | None:
    """Return value as an aware time that UTC can hold, or None."""
    # With USE_TZ, Django and the site write aware times; a naive one cannot
    # be compared with them, and one at the edge of datetime's range cannot
    # be moved to UTC.
    if not isinstance(value, str):
        return None
    try:
        time = datetime.fromisoformat(value)
        return time.astimezone(UTC) if time.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _aware_iso_time(value: Any) -> bool:
    return _aware_time(value) is not None


def _past_time(value: Any) -> bool:
    # A sign-in time in the future would keep the absolute lifetime from
    # ever running out; a few minutes ahead are app servers' clocks apart.
    time = _aware_time(value)
    return time is not None and time <= datetime.now(UTC) + CLOCK_SKEW


def _backend(value: Any) -> bool:
    # get_user() imports it and calls its get_user(): an unknown one, or one
    # without get_user (django-axes' backend), would fail on every request.
    return isinstance(value, str) and _usable_backend(value)


@functools.cache
def _usable_backend(path: str) -> bool:
    return path in settings.AUTHENTICATION_BACKENDS and hasattr(
        import_string(path), "get_user"
    )


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _user_id(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        return False
    return True


CHECKS: dict[str, Callable[[Any], bool]] = {
    VISITS: _integer_in(_COUNT_RANGE),
    LAST_ACTIVE: _integer_in(_UNIX_TIME_RANGE),
    SIGNED_IN_AT: _past_time,
    IP: lambda value: value is None or isinstance(value, str),
    DEVICE: _text,
    EXPIRY: lambda value: _integer_in(_EXPIRY_RANGE)(value) or _aware_iso_time(value),
    SESSION_KEY: _user_id,
    BACKEND_SESSION_KEY: _backend,
    HASH_SESSION_KEY: _text,
}


def wrong_fields(data: Mapping[str, Any]) -> list[str]:
    """Return the names of the fields in data that the site reads and cannot."""
    return [
        name for name, check in CHECKS.items() if name in data and not check(data[name])
    ]
