"""Exceptions of the Redis session engine."""

from __future__ import annotations


class SessionStoreUnavailable(Exception):
    """Redis could not be reached or refused to serve the session."""
