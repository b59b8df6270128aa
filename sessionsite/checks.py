"""System checks for the site's own settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured


@register(Tags.security)
def check_secret_key(**kwargs: Any) -> list[CheckMessage]:
    """Require DJANGO_SECRET_KEY when debug is off."""
    try:
        if settings.SECRET_KEY:
            return []
    except ImproperlyConfigured:
        pass
    return [
        Error(
            "DJANGO_SECRET_KEY is not set.",
            hint="Set DJANGO_SECRET_KEY to a long random value, for example "
            "the output of: python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'. For local development, "
            "set DJANGO_DEBUG=1 instead.",
            id="sessionsite.E001",
        )
    ]


@register()
def check_demo_user(**kwargs: Any) -> list[CheckMessage]:
    """Require DEMO_USERNAME and DEMO_PASSWORD to be set together."""
    if bool(settings.DEMO_USERNAME) == bool(settings.DEMO_PASSWORD):
        return []
    return [
        Error(
            "Only one of DEMO_USERNAME and DEMO_PASSWORD is set.",
            hint="Set both to have `manage.py ensure_demo_user` create the "
            "demo user, or neither.",
            id="sessionsite.E002",
        )
    ]


LOGIN_LIMITS = (
    "LOGIN_FAILURE_LIMIT",
    "LOGIN_IP_FAILURE_LIMIT",
    "LOGIN_USERNAME_FAILURE_LIMIT",
)


@register(Tags.security)
def check_login_limits(**kwargs: Any) -> list[CheckMessage]:
    """Require every failed-login limit to be at least 1."""
    return [
        Error(
            f"{name} is {getattr(settings, name)}; it must be at least 1.",
            hint="Set it to how many failed logins lock; the README lists "
            "the defaults.",
            id="sessionsite.E003",
        )
        for name in LOGIN_LIMITS
        if getattr(settings, name) < 1
    ]
