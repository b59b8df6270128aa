"""gunicorn settings for the container; the environment can change each one."""

import logging
import multiprocessing
import os
from typing import Any

# SITE_INTERFACE=asgi: the same gunicorn (these settings, its signals, its
# worker management), each worker an event loop running uvicorn, serving
# sessionsite.asgi. WSGI stays the default.
interface = os.environ.get("SITE_INTERFACE", "wsgi")
if interface == "asgi":
    worker_class = "sessionsite.workers.UvicornWorker"
    wsgi_app = "sessionsite.asgi:application"
elif interface == "wsgi":
    wsgi_app = "sessionsite.wsgi:application"
else:
    raise SystemExit(f"SITE_INTERFACE must be wsgi or asgi, not {interface!r}.")

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# One worker per core; each login hashes with Argon2id (about 100 MiB for a
# moment), so workers x threads bounds the memory that logins can take.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
# Threads serve WSGI only: an ASGI worker serves its requests on its loop.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# docker compose's stop_grace_period is longer, so requests in flight end.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# A heartbeat file on tmpfs: Docker's overlay file system can stall it.
worker_tmp_dir = "/dev/shm"  # noqa: S108  (gunicorn's advice for containers)
accesslog = "-"
errorlog = "-"
# The path without its query string (%(U)s, not the request line %(r)s): a
# form sent with GET by mistake would put its password in the log.
# %(M)s: the request's duration in milliseconds.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


class _PathWithoutQuery(logging.Filter):
    """Drop the query string from uvicorn's access lines, as %(U)s does above."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: (client, method, path?query, version, status).
        if isinstance(record.args, tuple) and len(record.args) == 5:
            args = list(record.args)
            args[2] = str(args[2]).partition("?")[0]
            record.args = tuple(args)
        return True


def post_worker_init(worker: Any) -> None:
    # uvicorn logs its own access lines, with the full path: not a password.
    logging.getLogger("uvicorn.access").addFilter(_PathWithoutQuery())
