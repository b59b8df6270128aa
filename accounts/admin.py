"""Django's admin for users, with each user's sessions and a way to end them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from . import services
from .forms import AdminLoginForm

if TYPE_CHECKING:
    BaseUserAdmin = UserAdmin[User]
else:  # UserAdmin is generic only in django-stubs.
    BaseUserAdmin = UserAdmin

admin.site.unregister(User)
admin.site.login_form = AdminLoginForm


@admin.register(User)
class UserWithSessionsAdmin(BaseUserAdmin):
    """Django's user admin; each user's change page lists their sessions."""

    change_form_template = "admin/auth/user/change_form_with_sessions.html"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<id>/end-sessions/",
                self.admin_site.admin_view(require_POST(self.end_sessions_view)),
                name="auth_user_end_sessions",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        user = self.get_object(request, unquote(object_id))
        if user is not None and self.has_view_or_change_permission(request, user):
            extra_context = {
                **(extra_context or {}),
                "user_sessions": services.list_sessions(
                    user_id=user.pk, session=request.session
                ),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def end_sessions_view(self, request: HttpRequest, id: str) -> HttpResponse:
        """End every session of the user (a POST from their change page)."""
        user = self.get_object(request, unquote(id))
        if user is None or not self.has_change_permission(request, user):
            raise Http404
        ended = services.end_sessions_by_staff(request=request, user=user)
        messages.success(
            request,
            f"Ended {ended} session{pluralize(ended)} of {user.get_username()}.",
        )
        return HttpResponseRedirect(reverse("admin:auth_user_change", args=[user.pk]))
