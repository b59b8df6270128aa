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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # At SIGTERM uvicorn waits for every open connection before the
        # lifespan's shutdown (which closes the Redis clients). gunicorn kills
        # the worker at graceful_timeout, or at its heartbeat timeout, which
        # a worker that waits no longer beats: stop waiting before either.
        limits = [t for t in (self.cfg.graceful_timeout, self.cfg.timeout) if t > 0]
        if limits:
            bound = min(limits)
            self.config.timeout_graceful_shutdown = max(bound - 1, bound / 2)
