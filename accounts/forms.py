from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator

GENERIC_LOGIN_ERROR = "Invalid username or password."
# Longer passwords are refused before any hashing work is spent on them.
PASSWORD_MAX_LENGTH = 4096


class BoundedCredentials(forms.Form):
    """Refuse an oversized username or password before any query or hashing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # AuthenticationForm sets the username's max_length after the field
        # is built, so no validator enforces it; without one an oversized
        # username reaches the database. Its password has no limit at all.
        username, password = self.fields["username"], self.fields["password"]
        assert isinstance(username, forms.CharField)
        assert isinstance(password, forms.CharField)
        password.max_length = PASSWORD_MAX_LENGTH
        for field in (username, password):
            if field.max_length is not None:
                field.validators.append(MaxLengthValidator(field.max_length))


class LoginForm(BoundedCredentials, AuthenticationForm):
    """Django's login form, with one message for every failed login."""

    error_messages = {  # noqa: RUF012  (Django reads it from the class)
        "invalid_login": GENERIC_LOGIN_ERROR,
        "inactive": GENERIC_LOGIN_ERROR,
    }


class AdminLoginForm(BoundedCredentials, AdminAuthenticationForm):
    """Django's admin login form, with the same limits as the site's."""
