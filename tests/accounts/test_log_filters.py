"""The log: client errors on one warning line each, every line printed once."""

from __future__ import annotations

import pytest

from tests.accounts.test_security import manage, production_environment

HOST = "sessions.example.com"
FORM = "application/x-www-form-urlencoded"
REQUESTS = {
    "bad host": "c.get('/login/', secure=True, headers={'host': 'evil.example'})",
    "3 MB body": (
        f"c.post('/login/', 'a=' + 'x' * 3_000_000, content_type='{FORM}', "
        f"secure=True, headers={{'host': '{HOST}'}})"
    ),
    "1,100 fields": (
        "c.post('/login/', '&'.join(f'f{i}=1' for i in range(1100)), "
        f"content_type='{FORM}', secure=True, headers={{'host': '{HOST}'}})"
    ),
    "multipart without boundary": (
        "c.post('/login/', 'abc', content_type='multipart/form-data', "
        f"secure=True, headers={{'host': '{HOST}'}})"
    ),
}
EXPECTED = {
    "bad host": "WARNING django.security.DisallowedHost: Invalid HTTP_HOST header",
    "3 MB body": "WARNING django.security.RequestDataTooBig: Request body exceeded",
    "1,100 fields": "WARNING django.security.TooManyFieldsSent: The number of",
    "multipart without boundary": "WARNING django.request: Bad request (Unable to",
}


@pytest.mark.parametrize("case", REQUESTS)
def test_a_client_error_is_one_warning_line_without_a_traceback(case):
    script = (
        "from django.test import Client; "
        "c = Client(raise_request_exception=False); "
        f"print({REQUESTS[case]}.status_code)"
    )
    # tests.settings: production settings, static files found without
    # collectstatic.
    environment = production_environment(DJANGO_SETTINGS_MODULE="tests.settings")
    result = manage("shell", "--no-imports", "-c", script, env=environment)
    assert result.stdout == "400\n", result.stderr
    (line,) = result.stderr.splitlines()
    assert EXPECTED[case] in line


@pytest.mark.parametrize("debug", ["1", "0"])
def test_a_django_log_line_is_printed_once(debug):
    script = "import logging; logging.getLogger('django.request').warning('probe')"
    environment = production_environment(
        DJANGO_SETTINGS_MODULE="tests.settings", DJANGO_DEBUG=debug
    )
    result = manage("shell", "--no-imports", "-c", script, env=environment)
    assert result.stderr.count("probe") == 1, result.stderr
