"""Session lifetimes, corrupt data, and saying why a session ended."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url

from redis_hash_sessions import users
from redis_hash_sessions.exceptions import SessionStoreUnavailable
from redis_hash_sessions.middleware import session_store_unavailable
from sessionsite.on_the_loop import DualMode

from . import services

ENDED_ELSEWHERE = "Your session was ended from another device."
EXPIRED = "Your session expired. Please sign in again."
# Paths that never load the session here: they need none, or (logout) read
# it in the same round trip that deletes it.
UNLOADED = ("/healthz", "/readyz", "/static/", "/logout/")
# Paths that must answer as they are, whatever became of the session.
PASSING = (*UNLOADED, "/login/")


class SessionLifetimeMiddleware(DualMode):
    """
    End sessions past their absolute lifetime, note activity, and explain.

    A request whose signed cookie names a session that is gone lands on the
    login page saying why: ended from another device (the engine left a
    mark), or expired (on its way to a page that needs a login). Under ASGI
    it awaits the engine on the event loop.
    """

    def handle(self, request: HttpRequest) -> Any:
        if request.path.startswith(UNLOADED):
            return self.get_response(request)
        try:
            # The store keeps a key only from a validly signed cookie, and
            # drops it when loading finds the session gone.
            signed = request.session.session_key is not None
            # Before anything reads the session: counting loads it then.
            services.count_visit_first(request=request)
            ended = signed and self._session_gone(request)
            if request.session.session_key is not None:
                services.discard_if_corrupt(session=request.session)
            if request.path.startswith(PASSING):
                return self.get_response(request)
            early = self._before_view(request, ended)
        except SessionStoreUnavailable as exc:
            # Raised here, outside any view, it would never reach the session
            # middleware's process_exception: Django would answer 500.
            return session_store_unavailable(request, exc)
        if early is not None:
            return early
        response = self.get_response(request)
        if ended and _redirects_to_login(response):
            messages.info(request, EXPIRED)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        get_response = cast(
            Callable[[HttpRequest], Awaitable[HttpResponse]], self.get_response
        )
        if request.path.startswith(UNLOADED):
            return await get_response(request)
        try:
            signed = request.session.session_key is not None
            await services.acount_visit_first(request=request)
            ended = signed and await self._asession_gone(request)
            if request.session.session_key is not None:
                await services.adiscard_if_corrupt(session=request.session)
            # Sync code after this (templates, Django's middleware) reads
            # request.user: loaded here, it costs it no database query.
            request.user = await request.auser()
            if request.path.startswith(PASSING):
                return await get_response(request)
            early = await self._abefore_view(request, ended)
        except SessionStoreUnavailable as exc:
            return session_store_unavailable(request, exc)
        if early is not None:
            return early
        response = await get_response(request)
        if ended and _redirects_to_login(response):
            messages.info(request, EXPIRED)
        return response

    @staticmethod
    def _before_view(request: HttpRequest, ended: bool) -> HttpResponse | None:
        if ended and users.was_ended(request.COOKIES[settings.SESSION_COOKIE_NAME]):
            messages.info(request, ENDED_ELSEWHERE)
            return redirect_to_login(request.get_full_path())
        if request.user.is_authenticated:
            if services.lifetime_is_over(session=request.session):
                services.log_out(request=request)
                messages.info(request, EXPIRED)
                return redirect_to_login(request.get_full_path())
            services.note_activity(session=request.session)
        return None

    @staticmethod
    async def _abefore_view(request: HttpRequest, ended: bool) -> HttpResponse | None:
        cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if ended and cookie is not None and await users.awas_ended(cookie):
            messages.info(request, ENDED_ELSEWHERE)
            return redirect_to_login(request.get_full_path())
        if request.user.is_authenticated:
            if services.lifetime_is_over(session=request.session):
                await services.alog_out(request=request)
                messages.info(request, EXPIRED)
                return redirect_to_login(request.get_full_path())
            services.note_activity(session=request.session)
        return None

    @staticmethod
    async def _asession_gone(request: HttpRequest) -> bool:
        await request.session.akeys()
        return request.session.session_key is None

    @staticmethod
    def _session_gone(request: HttpRequest) -> bool:
        """Load the session a signed cookie names; return True if it is gone."""
        request.session.keys()
        return request.session.session_key is None


def _redirects_to_login(response: HttpResponse) -> bool:
    location = response.get("Location", "")
    return response.status_code == 302 and location.startswith(
        resolve_url(settings.LOGIN_URL)
    )
