"""
Django's middleware, with its hooks run on the event loop under ASGI.

Django's MiddlewareMixin runs process_request, process_view and
process_response in a thread under ASGI, since a hook may block. These
middlewares' hooks only read the request and set headers (the messages live
in a signed cookie, MESSAGE_STORAGE), so a thread per hook buys nothing:
here they run on the loop. Only the middleware that Django's checks find
by subclass is replaced: the security, CSP, CSRF and clickjacking ones are
found by their exact names, and a subclass would turn their deploy checks
off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.http import HttpRequest
from django.middleware import common
from django.utils.deprecation import MiddlewareMixin


class OnTheLoop(MiddlewareMixin):
    """MiddlewareMixin whose hooks run on the event loop under ASGI."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        sync_hook = getattr(self, "process_view", None)
        if self.async_mode and sync_hook is not None:
            # Django runs a sync process_view in a thread, an async one inline.
            async def process_view(*args: Any) -> Any:
                return sync_hook(*args)

            self.process_view = process_view

    async def __acall__(self, request: HttpRequest) -> Any:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)  # type: ignore[misc]
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class CommonMiddleware(OnTheLoop, common.CommonMiddleware):
    pass


class AuthenticationMiddleware(OnTheLoop, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(OnTheLoop, messages.MessageMiddleware):
    pass
