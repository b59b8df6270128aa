from __future__ import annotations

from django.apps import AppConfig


class RedisSessionsConfig(AppConfig):
    name = "redis_hash_sessions"
    label = "redis_hash_sessions"
    verbose_name = "Redis sessions"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
