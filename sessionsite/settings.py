"""
Settings for sessionsite, read from the environment.

Every variable is listed, with its default, in README.md. Mistakes are
reported by system checks (``python manage.py check``), each with its own ID.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from redis_hash_sessions.caches import behind_sentinels, in_cluster

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0 (or true/false), not {value!r}.")


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be a number of seconds, not {value!r}."
        ) from None


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be a whole number, not {value!r}."
        ) from None


def env_list(name: str, default: str) -> list[str]:
    return [
        item.strip()
        for item in os.environ.get(name, default).split(",")
        if item.strip()
    ]


def env_addresses(name: str) -> list[tuple[str, int]]:
    """Parse "host:port,host:port" (IPv6 hosts in brackets) into pairs."""
    addresses = []
    for item in env_list(name, ""):
        host, _, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"{name} must list host:port pairs separated by commas, "
                f"such as 10.0.0.1:26379,10.0.0.2:26379; {item!r} is not one."
            )
        addresses.append((host, int(port)))
    return addresses


DEBUG = env_bool("DJANGO_DEBUG")

# Without DJANGO_SECRET_KEY and with debug off this stays empty, and the
# system check sessionsite.E001 says what to set.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "django-insecure-local-development-only"
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", "")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "sessionsite",
    "redis_hash_sessions",
    "axes",
    "accounts",
]

MIDDLEWARE = [
    # Under ASGI, the pages that touch the session are served by their async
    # twins (sessionsite/twins.py). Django's common, authentication and
    # messages middleware are their subclasses in sessionsite.on_the_loop,
    # with the hooks on the event loop; the others keep Django's names, by
    # which Django's deploy checks find them, and their hooks run in threads.
    "sessionsite.twins.TwinsMiddleware",
    # First, so that it empties the body after CommonMiddleware has set
    # Content-Length from it, as a GET would have it.
    "accounts.protocol.HeadWithoutBodyMiddleware",
    # Before anything that may read a form body in a charset Django refuses.
    "accounts.protocol.FormCharsetMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "sessionsite.static_files.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "redis_hash_sessions.middleware.SessionMiddleware",
    "sessionsite.on_the_loop.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "sessionsite.on_the_loop.AuthenticationMiddleware",
    "sessionsite.on_the_loop.MessageMiddleware",
    "accounts.middleware.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "sessionsite.urls"
WSGI_APPLICATION = "sessionsite.wsgi.application"
ASGI_APPLICATION = "sessionsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # Under ASGI each request's queries run in a thread of their own, and
        # a kept connection would outlive it: Django's docs say to disable
        # persistent connections there (a review saw one leak per request).
        conn_max_age=0 if os.environ.get("SITE_INTERFACE") == "asgi" else 600,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis, configured once: sessions use this django-redis entry. Short
# timeouts and no retries, so that a Redis that is down or hung costs a
# request well under two seconds instead of hanging it. A blocking pool
# caps each process's connections and lets a thread wait briefly for a free
# one, where redis-py's default pool fails at once past 100 connections.
REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        # Every key of this site, sessions included, starts with it: another
        # site on the same Redis database never meets this one's.
        "KEY_PREFIX": os.environ.get("REDIS_KEY_PREFIX", "sessionsite"),
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": env_float("REDIS_CONNECT_TIMEOUT", 0.5),
            "SOCKET_TIMEOUT": env_float("REDIS_TIMEOUT", 0.5),
            "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
            "CONNECTION_POOL_KWARGS": {
                "max_connections": env_int("REDIS_MAX_CONNECTIONS", 50),
                "timeout": env_float("REDIS_POOL_TIMEOUT", 0.5),
            },
        },
    }
}


# Behind Redis Sentinel: REDIS_SENTINELS lists the sentinels, and REDIS_URL's
# host is the name they watch the primary under ("sentinel monitor NAME"),
# as in redis://:password@mymaster/0.
REDIS_SENTINELS = env_addresses("REDIS_SENTINELS")
if REDIS_SENTINELS:
    CACHES["default"] = behind_sentinels(
        CACHES["default"],
        REDIS_SENTINELS,
        os.environ.get("REDIS_SENTINEL_PASSWORD") or None,
    )


# On Redis Cluster: REDIS_CLUSTER_NODES lists some of its nodes, and
# REDIS_URL's scheme and credentials apply to all, as in redis://:password@/0.
REDIS_CLUSTER_NODES = env_addresses("REDIS_CLUSTER_NODES")
if REDIS_CLUSTER_NODES:
    CACHES["default"] = in_cluster(CACHES["default"], REDIS_CLUSTER_NODES)

SESSION_ENGINE = "redis_hash_sessions.engine"
SESSION_CACHE_ALIAS = "default"
SESSION_REDIS_KEY_PREFIX = os.environ.get("SESSION_REDIS_KEY_PREFIX", "session")
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 30 * 60)
# Idle expiry of a session that holds no user (seconds): shorter, so that
# under memory pressure Redis (maxmemory-policy volatile-ttl) evicts these
# first, and a flood of them cannot outlive signed-in sessions.
SESSION_ANONYMOUS_AGE = env_int("SESSION_ANONYMOUS_AGE", 5 * 60)
# A session ends this long after sign-in, however active (seconds).
SESSION_ABSOLUTE_LIFETIME = env_int("SESSION_ABSOLUTE_LIFETIME", 12 * 3600)
# "Last active" (and with it the idle TTL) is written at most this often.
SESSION_ACTIVITY_INTERVAL = 60
# At most this many sessions per user, the oldest ending first; 0: no cap.
SESSION_MAX_PER_USER = env_int("SESSION_MAX_PER_USER", 0)

# Writes that sign a user in or out (or, with "writes", every write) wait
# until this many replicas have them, in the same round trip, and answer
# 503 if they do not within the timeout (seconds): 0 waits for none. Behind
# Sentinel and on a cluster one, so that a failover never loses a login or
# undoes a logout.
SESSION_REDIS_WAIT_REPLICAS = env_int(
    "REDIS_WAIT_REPLICAS", 1 if REDIS_SENTINELS or REDIS_CLUSTER_NODES else 0
)
SESSION_REDIS_WAIT_FOR = os.environ.get("REDIS_WAIT_FOR", "logins")
SESSION_REDIS_WAIT_TIMEOUT = env_float("REDIS_WAIT_TIMEOUT", 0.2)

# Messages travel in a signed cookie, so that showing one never needs Redis.
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out login never reaches the password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Argon2id first; hashes made by the others are upgraded at the next login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

# Brute-force protection (django-axes, database handler; accounts.lockout
# gives each parameter its own limit). 5 failures of one username from one
# IP lock that pair; 20 from one IP, whatever the usernames, lock the IP; 20
# for one username, from any IPs, lock the username. A lockout lasts 15
# minutes. A success forgives only the failures of that username from that
# IP, and attempts refused by a lockout are not counted.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_IP_FAILURE_LIMIT = env_int("LOGIN_IP_FAILURE_LIMIT", 4 * LOGIN_FAILURE_LIMIT)
LOGIN_USERNAME_FAILURE_LIMIT = env_int(
    "LOGIN_USERNAME_FAILURE_LIMIT", 4 * LOGIN_FAILURE_LIMIT
)
AXES_HANDLER = "accounts.lockout.LoginThrottle"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
# Otherwise each refused attempt counts too, and one IP that keeps trying
# after its pair is locked could run the username up to its own limit.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_CLIENT_IP_CALLABLE = "accounts.services.client_ip"
AXES_VERBOSE = False
# accounts.signals logs every login and logout; axes keeps only failures.
AXES_DISABLE_ACCESS_LOG = True

_VALIDATION = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATION}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATION}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATION}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATION}.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"

# The demo user that `manage.py ensure_demo_user` creates; with debug on it
# defaults to the seed's admin / secret and the login page shows it.
DEMO_USERNAME = os.environ.get("DEMO_USERNAME", "admin" if DEBUG else "")
DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "secret" if DEBUG else "")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# whitenoise serves the collected files, compressed and with hashed names.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Security. With debug off these are the production defaults; each one that
# depends on the deployment can be changed through the environment.
PRODUCTION = not DEBUG
SESSION_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True  # and SameSite=Lax, Django's default
# "__Host-": the browser only accepts it Secure, on Path=/, without Domain.
SESSION_COOKIE_NAME = "__Host-sessionid" if PRODUCTION else "sessionid"
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
# Health checks come over plain HTTP from inside the container's network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
# Only behind a proxy that terminates TLS and sets X-Forwarded-Proto (and
# X-Forwarded-For, which the login throttle and the logs then trust).
BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY")
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload is a commitment of the domain's owner, made on
    # hstspreload.org; the header is not ours to promise.
    "security.W021",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"},
    },
    "filters": {
        "client_errors": {"()": "accounts.log_filters.ClientErrorsOnOneLine"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["client_errors"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Without its own handlers: Django's default console handler (debug
        # only) printed every django.* line a second time, beside the root's.
        "django": {"handlers": [], "level": "INFO"},
        "sessionsite": {"level": "INFO"},
        "redis_hash_sessions": {"level": "INFO"},
        "accounts": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}
