from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import aupdate_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.views import LoginView, PasswordChangeView
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST, require_safe
from django.views.generic.edit import FormView

from sessionsite.twins import twin_of

from . import services
from .forms import LoginForm

logger = logging.getLogger(__name__)

LOGGED_OUT = "logged_out"
CHANGE_NOTICE = "Your password was changed; your other sessions were signed out."


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard" if request.user.is_authenticated else "login")


class SignInView(LoginView):
    # Not PUT, which LoginView answers like GET, with the form.
    http_method_names = ("get", "head", "post", "options")
    form_class = LoginForm
    template_name = "accounts/login.html"

    def form_valid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]
        services.log_in(request=self.request, user=form.get_user())
        return HttpResponseRedirect(self.get_success_url())

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if LOGGED_OUT in request.GET:
            messages.info(request, "You have been logged out.")
        return super().get(request, *args, **kwargs)

    def get_redirect_url(self, request: HttpRequest | None = None) -> str:
        # Django's check (same host, allowed scheme) and then ours: nothing
        # but a plain absolute path on this site.
        url = super().get_redirect_url(request)
        return url if services.is_local_path(url) else ""

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        context = super().get_context_data(**kwargs)
        if settings.DEBUG and settings.DEMO_USERNAME:
            context["demo_username"] = settings.DEMO_USERNAME
            context["demo_password"] = settings.DEMO_PASSWORD
        return context


sign_in = SignInView.as_view()


@twin_of(sign_in)
@sensitive_post_parameters()
@csrf_protect
@never_cache
async def asign_in(request: HttpRequest) -> HttpResponseBase:
    """
    Serve SignInView under ASGI, logging in on the event loop.

    The form's check of the credentials (the login throttle's queries, the
    user's, and the password hash, which takes tens of milliseconds of CPU
    by design) runs in one thread, on purpose: Django's aauthenticate()
    would run the same in three (the throttle has no async backend, the
    async ORM and acheck_password() both use threads). The session's part,
    alog_in(), runs on the loop. Other methods touch no session.
    """
    view = SignInView()
    form, response = await _valid_post(view, request)
    if response is not None:
        return response
    await services.alog_in(request=request, user=form.get_user())
    return HttpResponseRedirect(view.get_success_url())


async def _valid_post(
    view: FormView[Any], request: HttpRequest
) -> tuple[Any, HttpResponseBase | None]:
    """
    Return a form view's valid posted form, or the response to send instead.

    Other methods are the view's own (they touch no session); the form's
    check runs in one thread.
    """
    view.setup(request)
    if request.method != "POST":
        return None, view.dispatch(request)
    form = view.get_form()
    if not await sync_to_async(form.is_valid)():
        return None, view.form_invalid(form)
    return form, None


@never_cache
@login_required
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    visits = services.record_visit(request=request)
    context = {
        "visits": visits,
        "facts": services.session_facts(session=request.session),
        "sessions": services.list_sessions(
            user_id=request.user.pk, session=request.session
        ),
    }
    return render(request, "accounts/dashboard.html", context)


@twin_of(dashboard)
@never_cache
@login_required
@require_safe
async def adashboard(request: HttpRequest) -> HttpResponse:
    visits = await services.arecord_visit(request=request)
    user = await request.auser()
    context = {
        "visits": visits,
        "facts": services.session_facts(session=request.session),
        "sessions": await services.alist_sessions(
            user_id=user.pk, session=request.session
        ),
    }
    return render(request, "accounts/dashboard.html", context)


@never_cache
@require_POST
@login_required
def end_session(request: HttpRequest, key_hash: str) -> HttpResponse:
    """Sign out one of the user's other sessions."""
    if key_hash == services.current_key_hash(request.session):
        return _ended_this_one(request)
    ended = services.end_session_elsewhere(
        user_id=request.user.pk, session=request.session, key_hash=key_hash
    )
    return _ended_elsewhere(request, ended=ended)


@twin_of(end_session)
@never_cache
@require_POST
@login_required
async def aend_session(request: HttpRequest, key_hash: str) -> HttpResponse:
    if key_hash == services.current_key_hash(request.session):
        return _ended_this_one(request)
    user = await request.auser()
    ended = await services.aend_session_elsewhere(
        user_id=user.pk, session=request.session, key_hash=key_hash
    )
    return _ended_elsewhere(request, ended=ended)


def _ended_this_one(request: HttpRequest) -> HttpResponse:
    messages.error(request, "To end this session, log out.")
    return redirect("dashboard")


def _ended_elsewhere(request: HttpRequest, *, ended: bool) -> HttpResponse:
    if ended:
        messages.info(request, "That session was signed out.")
    else:
        messages.error(
            request, "That session was not found; it may have ended already."
        )
    return redirect("dashboard")


@never_cache
@require_POST
@login_required
def end_other_sessions(request: HttpRequest) -> HttpResponse:
    """Sign out every session of the user but this one."""
    ended = services.end_other_sessions(
        user_id=request.user.pk, session=request.session
    )
    return _ended_others(request, ended=ended)


@twin_of(end_other_sessions)
@never_cache
@require_POST
@login_required
async def aend_other_sessions(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    ended = await services.aend_other_sessions(user_id=user.pk, session=request.session)
    return _ended_others(request, ended=ended)


def _ended_others(request: HttpRequest, *, ended: int) -> HttpResponse:
    messages.info(request, f"Signed out {ended} other session{pluralize(ended)}.")
    return redirect("dashboard")


@method_decorator(never_cache, name="dispatch")
class ChangePasswordView(PasswordChangeView):
    # Not PUT, which PasswordChangeView answers like GET, with the form.
    http_method_names = ("get", "head", "post", "options")
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("dashboard")

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        # Every other session ends now, not at its next request; this one
        # goes on under a new key (update_session_auth_hash in super()).
        services.end_other_sessions(
            user_id=self.request.user.pk, session=self.request.session
        )
        response = super().form_valid(form)
        messages.info(self.request, CHANGE_NOTICE)
        return response


change_password = ChangePasswordView.as_view()


@twin_of(change_password)
@sensitive_post_parameters()
@csrf_protect
@never_cache
@login_required
async def achange_password(request: HttpRequest) -> HttpResponseBase:
    """
    Serve ChangePasswordView under ASGI, the session's part on the event loop.

    In the sync view's order: the form's check, ending the other sessions,
    then the new password's save and this session's new key. A Redis
    outage while the others are ended (503) leaves the password as it was;
    one after the save answers 503 with the password changed, as the sync
    view does, and the user signs in again with it. The check (the old
    password's hash) and the save (the new one's, and the ORM) each run in
    a thread, on purpose: tens of milliseconds of CPU by design. Ending the
    other sessions and aupdate_session_auth_hash run on the loop. Once the
    form is valid the steps are shielded: a client that disconnects (Django
    then cancels the view) cannot leave the change half done.
    """
    request.user = await request.auser()
    view = ChangePasswordView()
    form, response = await _valid_post(view, request)
    if response is not None:
        return response
    change = asyncio.ensure_future(_achange_password(request, form))
    _changing.add(change)  # asyncio keeps only a weak reference to a task
    change.add_done_callback(_changing.discard)
    try:
        await asyncio.shield(change)
    except asyncio.CancelledError:
        # The client left, and Django cancelled the view; the change goes on
        # (its old cookie then meets the moved mark, 400, for up to 30 s,
        # and is signed out after that: the password did change).
        change.add_done_callback(_log_if_failed)
        raise
    messages.info(request, CHANGE_NOTICE)
    return HttpResponseRedirect(view.get_success_url())


_changing: set[asyncio.Task[None]] = set()


def _log_if_failed(change: asyncio.Task[None]) -> None:
    if not change.cancelled() and (exc := change.exception()) is not None:
        logger.error("A password change whose client left failed: %r", exc)


async def _achange_password(request: HttpRequest, form: PasswordChangeForm) -> None:
    await services.aend_other_sessions(user_id=form.user.pk, session=request.session)
    await sync_to_async(form.save)()
    await aupdate_session_auth_hash(request, form.user)


@services.counts_visits_first
@never_cache
@require_safe
def visits(request: HttpRequest) -> HttpResponse:
    count = services.record_visit(request=request)
    user = request.user
    username = user.get_username() if user.is_authenticated else None
    return _visits_page(request, count=count, username=username)


@twin_of(visits)
@never_cache
@require_safe
async def avisits(request: HttpRequest) -> HttpResponse:
    count = await services.arecord_visit(request=request)
    user = await request.auser()
    username = user.get_username() if user.is_authenticated else None
    return _visits_page(request, count=count, username=username)


def _visits_page(
    request: HttpRequest, *, count: int, username: str | None
) -> HttpResponse:
    response: HttpResponse
    if (
        request.get_preferred_type(["text/html", "application/json"])
        == "application/json"
    ):
        response = JsonResponse({"visits": count, "username": username})
    else:
        response = render(
            request, "accounts/visits.html", {"visits": count, "username": username}
        )
    patch_vary_headers(response, ("Accept",))
    return response


@never_cache
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    services.log_out(request=request)
    # No Clear-Site-Data: it would clear every cookie of the registrable
    # domain, sibling sites' included; the session cookie is deleted by name.
    return HttpResponseRedirect(f"{reverse('login')}?{LOGGED_OUT}=1")


@twin_of(logout)
@never_cache
@require_POST
async def alogout(request: HttpRequest) -> HttpResponse:
    await services.alog_out(request=request)
    return HttpResponseRedirect(f"{reverse('login')}?{LOGGED_OUT}=1")


def locked_out(
    request: HttpRequest,
    response: HttpResponse | None = None,
    credentials: dict[str, object] | None = None,
) -> HttpResponse:
    """Answer a locked-out login: 429, when to try again, nothing about the password."""
    cool_off = settings.AXES_COOLOFF_TIME
    retry_after = int(cool_off.total_seconds())
    context = {"minutes": retry_after // 60, "until": timezone.now() + cool_off}
    locked = render(request, "accounts/locked_out.html", context, status=429)
    locked["Retry-After"] = str(retry_after)
    add_never_cache_headers(locked)
    return locked
