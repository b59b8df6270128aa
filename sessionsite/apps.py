from __future__ import annotations

from django.apps import AppConfig


class SessionsiteConfig(AppConfig):
    name = "sessionsite"
    verbose_name = "sessionsite"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
