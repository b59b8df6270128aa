"""gunicorn settings for the container; the environment can change each one."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# One worker per core; each login hashes with Argon2id (about 100 MiB for a
# moment), so workers x threads bounds the memory that logins can take.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
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
