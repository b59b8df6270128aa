"""The types of the session fields that the site reads, and a check of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.core.exceptions import ValidationError

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
# set_expiry() seconds: 0 (the default age) up to ten years.
_EXPIRY_RANGE = range(0, 10 * 366 * 24 * 3600)


def _integer_in(allowed: range) -> Callable[[Any], bool]:
    return lambda value: type(value) is int and value in allowed


def _aware_iso_time(value: Any) -> bool:
    # With USE_TZ, Django and the site write aware times; a naive one cannot
    # be compared with them.
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


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
    SIGNED_IN_AT: _aware_iso_time,
    IP: lambda value: value is None or isinstance(value, str),
    DEVICE: _text,
    EXPIRY: lambda value: _integer_in(_EXPIRY_RANGE)(value) or _aware_iso_time(value),
    SESSION_KEY: _user_id,
    BACKEND_SESSION_KEY: _text,
    HASH_SESSION_KEY: _text,
}


def wrong_fields(data: Mapping[str, Any]) -> list[str]:
    """Return the names of the fields in data that the site reads and cannot."""
    return [
        name for name, check in CHECKS.items() if name in data and not check(data[name])
    ]
