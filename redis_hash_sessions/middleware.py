"""Session middleware for the Redis engine."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Literal, cast

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import (
    SessionMiddleware as DjangoSessionMiddleware,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import resolve_url
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import http_date

from .exceptions import SessionStoreUnavailable

RETRY_AFTER_SECONDS = 5
INTERRUPTED = (
    "The request's session was deleted before the request completed. "
    "The user may have logged out in a concurrent request, for example."
)


class SessionMiddleware(DjangoSessionMiddleware):
    """
    Django's SessionMiddleware, plus what the Redis engine needs.

    It keeps every behaviour of the original (Vary: Cookie, deleting the
    cookie of an emptied session, no save on 5xx, 400 on SessionInterrupted)
    and adds: an async path that awaits asave() instead of running save() in
    a thread; a 503 with Retry-After, cookie untouched, when Redis is
    unavailable; and a fresh cookie for a session key that was signed with a
    key from SECRET_KEY_FALLBACKS.
    """

    sync_capable = True
    async_capable = True

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        self.process_request(request)
        response = await cast(Awaitable[HttpResponse], self.get_response(request))
        return await self.aprocess_response(request, response)

    def process_response(
        self, request: HttpRequest, response: HttpResponse
    ) -> HttpResponse:
        session = getattr(request, "session", None)
        if not isinstance(session, SessionBase):
            return response
        action = self._action(request, response, session)
        max_age = None
        if action == "save":
            try:
                if not session.get_expire_at_browser_close():
                    max_age = session.get_expiry_age()
                if session.is_empty():
                    action = "delete"
                else:
                    session.save()
            except SessionStoreUnavailable as exc:
                return session_store_unavailable(request, exc)
            except UpdateError as exc:
                raise SessionInterrupted(INTERRUPTED) from exc
        return self._finish(request, response, session, action, max_age)

    async def aprocess_response(
        self, request: HttpRequest, response: HttpResponse
    ) -> HttpResponse:
        session = getattr(request, "session", None)
        if not isinstance(session, SessionBase):
            return response
        action = self._action(request, response, session)
        max_age = None
        if action == "save":
            try:
                if not await session.aget_expire_at_browser_close():
                    max_age = await session.aget_expiry_age()
                if session.is_empty():
                    action = "delete"
                else:
                    await session.asave()
            except SessionStoreUnavailable as exc:
                return session_store_unavailable(request, exc)
            except UpdateError as exc:
                raise SessionInterrupted(INTERRUPTED) from exc
        return self._finish(request, response, session, action, max_age)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if isinstance(exception, SessionStoreUnavailable):
            return session_store_unavailable(request, exception)
        if isinstance(exception, UpdateError):
            raise SessionInterrupted(INTERRUPTED) from exception
        return None

    def _action(
        self, request: HttpRequest, response: HttpResponse, session: SessionBase
    ) -> Literal["delete", "save", "none"]:
        """Decide, without touching Redis, what to do with the cookie."""
        cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if cookie is not None and session.is_empty():
            # A session a parallel request just renamed: that request's
            # response carries the new cookie, which this one must not undo.
            return "none" if getattr(session, "moved", False) else "delete"
        resign = cookie is not None and session.session_key not in (None, cookie)
        wanted = session.modified or settings.SESSION_SAVE_EVERY_REQUEST or resign
        if wanted and not session.is_empty() and response.status_code < 500:
            return "save"
        return "none"

    def _finish(
        self,
        request: HttpRequest,
        response: HttpResponse,
        session: SessionBase,
        action: str,
        max_age: int | None,
    ) -> HttpResponse:
        if action == "delete":
            if settings.SESSION_COOKIE_NAME in request.COOKIES:
                response.delete_cookie(
                    settings.SESSION_COOKIE_NAME,
                    path=settings.SESSION_COOKIE_PATH,
                    domain=settings.SESSION_COOKIE_DOMAIN,
                    samesite=settings.SESSION_COOKIE_SAMESITE,
                )
        elif action == "save":
            response.set_cookie(
                settings.SESSION_COOKIE_NAME,
                session.session_key or "",
                max_age=max_age,
                expires=None if max_age is None else http_date(time.time() + max_age),
                domain=settings.SESSION_COOKIE_DOMAIN,
                path=settings.SESSION_COOKIE_PATH,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=settings.SESSION_COOKIE_HTTPONLY,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
        if action != "none" or session.accessed:
            patch_vary_headers(response, ("Cookie",))
        return response


def session_store_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Answer 503, leaving the session cookie as it is."""
    signing_in = request.method == "POST" and request.path == resolve_url(
        settings.LOGIN_URL
    )
    response: HttpResponse
    if request.get_preferred_type(["text/html", "application/json"]) == (
        "application/json"
    ):
        response = JsonResponse({"error": "session_store_unavailable"}, status=503)
    else:
        context = {
            "retry_after": RETRY_AFTER_SECONDS,
            "signing_in": signing_in,
            "signed_in": settings.SESSION_COOKIE_NAME in request.COOKIES,
        }
        html = render_to_string("redis_hash_sessions/unavailable.html", context)
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    add_never_cache_headers(response)
    patch_vary_headers(response, ("Cookie",))
    # The outage is logged once when it starts (connection.outage), not
    # once per request by django.request.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
