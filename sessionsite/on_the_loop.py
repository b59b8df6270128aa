"""
Middleware that runs on the event loop under ASGI.

DualMode is the base of this project's own middleware with a sync and an
async path. The rest is Django's middleware, with its hooks run on the loop.

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

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.http import HttpRequest
from django.middleware import common
from django.utils.deprecation import MiddlewareMixin


class DualMode:
    """
    A middleware with a sync path, handle(), and an async one, __acall__().

    Django picks one when it builds the chain, by the next middleware's kind,
    as its own middleware does (MiddlewareMixin).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return self.handle(request)

    def handle(self, request: HttpRequest) -> Any:
        raise NotImplementedError

    async def __acall__(self, request: HttpRequest) -> Any:
        raise NotImplementedError


class OnTheLoop(MiddlewareMixin):
    """MiddlewareMixin whose hooks run on the event loop under ASGI."""

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
