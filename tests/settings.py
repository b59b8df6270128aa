"""The site's settings, with what the tests need on top."""

import os
import sys
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key")

from sessionsite.settings import *  # noqa: F403
from tests.django_suite import django_tests_dir

# Django's own session tests (tests/redis_hash_sessions/test_django_contract.py)
# import a model from their package, which must be an installed app.
sys.path.append(str(django_tests_dir()))
INSTALLED_APPS = [*INSTALLED_APPS, "sessions_tests"]  # noqa: F405

ROOT_URLCONF = "tests.urls"
# Fast hashing: the tests log in hundreds of times. Argon2 stays listed so
# that the tests of hashing can switch to it.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
# Close the database connection after each request: the tests run requests
# in short-lived threads (the live server's, the concurrency tests'), whose
# leftover sqlite connections Python 3.13 reports as unclosed. Django never
# closes a connection to an in-memory database, so the test database is a
# file.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(
            tempfile.gettempdir(), f"sessionsite-test-{os.getpid()}.sqlite3"
        )
    }

# The tests speak plain HTTP to Django's test client and to gunicorn; every
# other production setting stays as it is.
SECURE_SSL_REDIRECT = False
# Collected, hashed static files exist only after collectstatic, which the
# tests do not run; Django's test servers find the files in static/ instead.
STATIC_ROOT = None  # type: ignore[assignment]  # the site always has a Path
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
