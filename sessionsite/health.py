"""Liveness and readiness endpoints for load balancers and orchestrators."""

from __future__ import annotations

import secrets

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from redis_hash_sessions import connection as redis_connection
from redis_hash_sessions import keys
from redis_hash_sessions.exceptions import SessionStoreRefused, SessionStoreUnavailable

# The user whose index the readiness check's probe reads (it may exist):
# the probe's keys all carry its tag, so that on a cluster they are in one
# slot, always the same.
PROBE_USER = "readyz"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Answer that the process serves requests; touch neither Redis nor the database."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """
    Answer 200 if Redis and the database serve, else 503 naming what failed.

    Redis is "unsupported" when it is older than the engine needs, and
    "refused" when it refuses the engine a kind of command it sends (an
    ACL, a command renamed away): a deployment on it must not go live.
    """
    checks = {"redis": _redis_state(), "database": _database_state()}
    ready = all(state == "ok" for state in checks.values())
    body = {"status": "ok" if ready else "unavailable", **checks}
    return JsonResponse(body, status=200 if ready else 503)


def _redis_state() -> str:
    try:
        with redis_connection.unavailable_on_error():
            redis_connection.get_connection().probe(_probe_keys())
    except SessionStoreRefused as exc:
        return exc.state
    except SessionStoreUnavailable:
        return "unavailable"
    return "ok"


def _probe_keys() -> list[str]:
    """Return random session and mark key names, and PROBE_USER's index's."""
    key_hash = keys.user_tag(PROBE_USER) + secrets.token_urlsafe(30)
    names = keys.names()
    return [names.session(key_hash), names.moved(key_hash), names.index(PROBE_USER)]


def _database_state() -> str:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return "unavailable"
    return "ok"
