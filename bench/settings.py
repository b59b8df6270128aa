"""
The site's settings, serving the benchmark's views with one session engine.

BENCH_ENGINE picks it. Everything else is identical for every engine: the
same views, the same two middleware, the same Redis, the same database.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key")

from sessionsite.settings import *  # noqa: F403

DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
ENGINES = {
    "ours": (
        "redis_hash_sessions.engine",
        "redis_hash_sessions.middleware.SessionMiddleware",
    ),
    # The same engine, its REDIS_URL a unix:// one (bench.run sets it).
    "ours, Redis on a Unix socket": (
        "redis_hash_sessions.engine",
        "redis_hash_sessions.middleware.SessionMiddleware",
    ),
    "django cache (django-redis)": (
        "django.contrib.sessions.backends.cache",
        DJANGO_MIDDLEWARE,
    ),
    "django-redis-sessions": ("redis_sessions.session", DJANGO_MIDDLEWARE),
    "django db": ("django.contrib.sessions.backends.db", DJANGO_MIDDLEWARE),
    "django signed_cookies": (
        "django.contrib.sessions.backends.signed_cookies",
        DJANGO_MIDDLEWARE,
    ),
}
BENCH_ENGINE = os.environ.get("BENCH_ENGINE", "ours")
SESSION_ENGINE, _session_middleware = ENGINES[BENCH_ENGINE]
MIDDLEWARE = [
    _session_middleware,
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
INSTALLED_APPS = [
    app
    for app in INSTALLED_APPS  # noqa: F405
    if app not in {"axes", "accounts", "django.contrib.admin"}
]
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
ROOT_URLCONF = "bench.urls"
# The benchmark runs no collectstatic: its pages (the 503 page, when Redis
# times out under load) name static files as they are, without the
# collected manifest, which would make them fail with a 500.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
SESSION_COOKIE_NAME = "sessionid"
# django-redis-sessions reads its own setting; same Redis, same timeout.
SESSION_REDIS = {"url": REDIS_URL, "prefix": "session", "socket_timeout": 0.5}  # noqa: F405
# The db engine writes on every request: WAL and immediate transactions
# keep SQLite from refusing concurrent writers.
DATABASES["default"]["OPTIONS"] = {  # noqa: F405
    "init_command": "PRAGMA journal_mode=WAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
