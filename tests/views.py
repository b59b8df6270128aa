"""Views that exist only in the tests' URLconf, to drive the engine over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseServerError,
    JsonResponse,
)


def set_key(request: HttpRequest, name: str) -> HttpResponse:
    """Set one session key of the caller's choosing."""
    request.session[name] = True
    return HttpResponse("ok")


def read_session(request: HttpRequest) -> JsonResponse:
    """Answer with the session's data; never write it."""
    return JsonResponse(dict(request.session.items()))


def fail_after_write(request: HttpRequest) -> HttpResponse:
    """Change the session, then answer 500."""
    request.session["failed"] = True
    return HttpResponseServerError("failed")


def paused_write(request: HttpRequest) -> HttpResponse:
    """
    Load the session and change it, then wait before the save.

    The view creates the file named by ?loaded= once the session is loaded,
    then waits until the file named by ?release= exists: a test can run a
    logout in between, across threads or processes, without sleeping.
    """
    request.session["paused"] = True
    Path(request.GET["loaded"]).touch()
    release = Path(request.GET["release"])
    deadline = time.monotonic() + 10
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    return HttpResponse("saved")
