"""The site's settings, with what the tests need on top."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key")

from sessionsite.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls"
# Fast hashing: the tests log in hundreds of times.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
