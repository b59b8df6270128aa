"""Liveness and readiness endpoints for load balancers and orchestrators."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from redis_hash_sessions import connection as redis_connection
from redis_hash_sessions.exceptions import SessionStoreUnavailable


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Answer that the process serves requests; touch neither Redis nor the database."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Answer 200 if Redis and the database answer, else 503 naming what failed."""
    checks = {"redis": _redis_answers(), "database": _database_answers()}
    ready = all(checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        **{name: "ok" if ok else "unavailable" for name, ok in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)


def _redis_answers() -> bool:
    try:
        with redis_connection.unavailable_on_error():
            redis_connection.get_connection().ping()
    except SessionStoreUnavailable:
        return False
    return True


def _database_answers() -> bool:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True
