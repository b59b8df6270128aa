"""
The benchmark's workload: the same four views for every engine.

The login skips password hashing (identical for every engine, and far
slower than any session store); it logs in the one benchmark user.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model, login
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.services import count_visit, log_out

USERNAME = "bench"


@csrf_exempt
@require_POST
def log_in(request: HttpRequest) -> HttpResponse:
    """Log in the benchmark user, or the one ?as= names (made if need be)."""
    username = request.GET.get("as", USERNAME)
    user, _ = get_user_model().objects.get_or_create(username=username)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponse("in")


@require_GET
def read_and_change(request: HttpRequest) -> HttpResponse:
    """
    Count a visit in the session, then read who is logged in.

    The site's counter (accounts.services.count_visit), first, as the
    site's visits page counts: with our engine the count loads the session
    in the same round trip; the other engines load, then save.
    """
    count = count_visit(session=request.session)
    if not request.user.is_authenticated:
        return HttpResponse("anonymous", status=403)
    return HttpResponse(str(count))


@require_GET
def anonymous_visit(request: HttpRequest) -> HttpResponse:
    """Give an anonymous visitor a session with data, as a visit counter does."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(str(request.session["visits"]))


@require_GET
def read_only(request: HttpRequest) -> HttpResponse:
    """Read the session and change nothing."""
    return HttpResponse(str(request.session.get("_auth_user_id")))


@csrf_exempt
@require_POST
def log_out_view(request: HttpRequest) -> HttpResponse:
    log_out(request=request)
    return HttpResponse("out")
