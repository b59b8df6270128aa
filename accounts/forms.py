from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator

GENERIC_LOGIN_ERROR = "Invalid username or password."
# Longer passwords are refused before any hashing work is spent on them.
PASSWORD_MAX_LENGTH = 4096


class LoginForm(AuthenticationForm):
    """Django's login form, with one message for every failed login."""

    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=PASSWORD_MAX_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    error_messages = {  # noqa: RUF012  (Django reads it from the class)
        "invalid_login": GENERIC_LOGIN_ERROR,
        "inactive": GENERIC_LOGIN_ERROR,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # AuthenticationForm sets max_length after the field is built, so no
        # validator enforces it; without one an oversized username reaches
        # the database.
        username = self.fields["username"]
        assert isinstance(username, forms.CharField)
        if username.max_length is not None:
            username.validators.append(MaxLengthValidator(username.max_length))
