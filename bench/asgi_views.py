"""Async twins of the benchmark's views, served under ASGI (sessionsite.twins)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from accounts.services import acount_visit
from sessionsite.twins import twin_of

from . import views


@twin_of(views.read_and_change)
@require_GET
async def aread_and_change(request: HttpRequest) -> HttpResponse:
    """Count a visit in the session, then read who is logged in."""
    count = await acount_visit(session=request.session)
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse("anonymous", status=403)
    return HttpResponse(str(count))


@twin_of(views.read_only)
@require_GET
async def aread_only(request: HttpRequest) -> HttpResponse:
    """Read the session and change nothing."""
    return HttpResponse(str(await request.session.aget("_auth_user_id")))
