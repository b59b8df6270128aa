"""Exceptions of the Redis session engine."""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted


class SessionStoreUnavailable(Exception):
    """Redis could not be reached or refused to serve the session."""


class SessionStoreRefused(SessionStoreUnavailable):
    """
    Redis is set up so that the engine cannot work with it: not an outage.

    state: "unsupported" (older than the engine needs) or "refused" (an ACL,
    a command renamed away, protected mode).
    """

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


class RotationInterrupted(UpdateError, SessionInterrupted):
    """A signed-in session was gone when its key was to change: Django answers 400."""
