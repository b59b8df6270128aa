"""
Serve each view's async twin under ASGI and the view itself under WSGI.

A page that touches the session has two forms: a sync view, and an async
twin that awaits the engine on the event loop. Django calls an async view
under WSGI through async_to_sync, which starts an event loop in a new
thread for every request, and with it a new Redis connection; a sync view
under ASGI runs in a thread. So each server gets the form made for it:
twin_of() marks the twin, and TwinsMiddleware, under ASGI only, resolves
the request against the same URL patterns with every marked view replaced
by its twin. Names, reverse() and decorators are unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, URLResolver, get_resolver

from .on_the_loop import DualMode

View = Callable[..., Any]
AsyncView = Callable[..., Awaitable[HttpResponseBase]]


def twin_of(view: View) -> Callable[[AsyncView], AsyncView]:
    """Mark the decorated async view as what serves view's URLs under ASGI."""

    def mark(twin: AsyncView) -> AsyncView:
        if not iscoroutinefunction(twin):
            raise TypeError(f"The twin of {view.__name__} must be async.")
        view.async_twin = twin  # type: ignore[attr-defined]
        return twin

    return mark


def _with_twins(
    patterns: list[URLPattern | URLResolver],
) -> list[URLPattern | URLResolver]:
    twinned: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            twinned.append(
                URLResolver(
                    pattern.pattern,
                    _with_twins(pattern.url_patterns),
                    pattern.default_kwargs,
                    pattern.app_name,
                    pattern.namespace,
                )
            )
            continue
        twin = getattr(pattern.callback, "async_twin", None)
        if twin is None:
            twinned.append(pattern)
        else:
            twinned.append(
                URLPattern(pattern.pattern, twin, pattern.default_args, pattern.name)
            )
    return twinned


@functools.cache
def async_urlconf(urlconf: str) -> type:
    """Return urlconf's patterns with each marked view replaced by its twin."""
    patterns = _with_twins(get_resolver(urlconf).url_patterns)
    # A class: Django's resolver cache needs a hashable URLconf.
    return type("AsyncURLconf", (), {"urlpatterns": patterns})


class TwinsMiddleware(DualMode):
    """Under ASGI, resolve requests to the async twins of the views."""

    def handle(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        # Django takes a URLconf object here as well as a module's name.
        request.urlconf = async_urlconf(settings.ROOT_URLCONF)  # type: ignore[assignment]
        response: HttpResponse = await self.get_response(request)
        return response
