"""Exceptions of the Redis session engine."""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted


class SessionStoreUnavailable(Exception):
    """Redis could not be reached or refused to serve the session."""


class RotationInterrupted(UpdateError, SessionInterrupted):
    """A signed-in session was gone when its key was to change: Django answers 400."""
