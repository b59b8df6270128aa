"""The ASGI worker that gunicorn runs when SITE_INTERFACE=asgi."""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker as _UvicornWorker


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]
    """
    uvicorn-worker's worker, leaving X-Forwarded-For to the site.

    uvicorn would otherwise take the client's address from X-Forwarded-For
    for every connection from FORWARDED_ALLOW_IPS (loopback by default), so
    that a client could pick the address the login lockout counts against.
    accounts.services.client_ip() reads that header, and only behind the
    proxy that DJANGO_BEHIND_TLS_PROXY declares; gunicorn's own workers
    never rewrite the address either.
    """

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **_UvicornWorker.CONFIG_KWARGS,
        "proxy_headers": False,
    }
