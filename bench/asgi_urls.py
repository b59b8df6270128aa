"""The benchmark's URLs, with the async twins of its views marked."""

from . import asgi_views  # noqa: F401  (marks the twins)
from .urls import urlpatterns

__all__ = ["urlpatterns"]
