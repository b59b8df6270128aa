"""whitenoise's middleware, made async-capable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware as SyncWhiteNoiseMiddleware


class WhiteNoiseMiddleware(SyncWhiteNoiseMiddleware):  # type: ignore[misc]
    """
    whitenoise's middleware, with an async path under ASGI.

    whitenoise's own is sync only: under ASGI, Django would run it, and so
    every request, through a thread. Finding a file is a dict lookup (a
    stat with autorefresh, in debug only); the file itself is streamed by
    the server.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any], **kwargs: Any):
        super().__init__(get_response, **kwargs)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if self.autorefresh:
            static_file = self.find_file(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return cast(HttpResponse, self.serve(static_file, request))
        get_response = cast(
            Callable[[HttpRequest], Awaitable[HttpResponse]], self.get_response
        )
        return await get_response(request)
