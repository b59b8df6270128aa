"""The embedded server that manage.py starts when REDIS_URL is unset."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.site_process import ROOT

SCRIPT = """
from asgiref.sync import async_to_sync
from django.conf import settings
from redis_hash_sessions.engine import SessionStore
session = SessionStore()
session["visits"] = 1
session.save()
print(settings.CACHES["default"]["LOCATION"])
print(SessionStore(session.session_key).load())
print(async_to_sync(SessionStore(session.session_key).aload)())
session.delete()
"""


def test_manage_py_serves_sessions_from_an_embedded_server_on_a_unix_socket():
    environment = {
        **{name: value for name, value in os.environ.items() if name != "REDIS_URL"},
        "DJANGO_SECRET_KEY": "tests-only-secret-key",
        "DJANGO_SETTINGS_MODULE": "sessionsite.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", SCRIPT],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    location, loaded, aloaded = result.stdout.split("\n")[:3]
    assert location == f"unix://{ROOT / '.redis' / 'valkey.sock'}?db=0"
    assert loaded == aloaded == "{'visits': 1}"
