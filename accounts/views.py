from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from . import services
from .forms import LoginForm


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard" if request.user.is_authenticated else "login")


class SignInView(LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"

    def form_valid(self, form: LoginForm) -> HttpResponse:  # type: ignore[override]
        services.log_in(request=self.request, user=form.get_user())
        return HttpResponseRedirect(self.get_success_url())

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        context = super().get_context_data(**kwargs)
        if settings.DEBUG and settings.DEMO_USERNAME:
            context["demo_username"] = settings.DEMO_USERNAME
            context["demo_password"] = settings.DEMO_PASSWORD
        return context


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    visits = services.count_visit(session=request.session)
    facts = services.session_facts(session=request.session)
    return render(
        request, "accounts/dashboard.html", {"visits": visits, "facts": facts}
    )


@require_GET
def visits(request: HttpRequest) -> HttpResponse:
    count = services.count_visit(session=request.session)
    user = request.user
    username = user.get_username() if user.is_authenticated else None
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


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    services.log_out(request=request)
    messages.info(request, "You have been logged out.")
    return redirect("login")
