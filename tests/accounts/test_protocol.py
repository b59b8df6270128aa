"""HTTP details: form charsets."""

from __future__ import annotations

import logging
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict_client() -> Client:
    """A client with a CSRF cookie that sends its token, as a browser does."""
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    return client


def post_form(client: Client, path: str, charset: str, **fields: str):
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    body = urlencode({"csrfmiddlewaretoken": token, **fields})
    return client.post(
        path,
        body,
        content_type=f"application/x-www-form-urlencoded; charset={charset}",
    )


@pytest.mark.parametrize("path", ["/healthz", "/login/", "/logout/"])
@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "ascii"])
def test_a_form_in_another_charset_is_400(strict_client, path, charset):
    response = post_form(strict_client, path, charset, username="ada")
    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_a_form_in_another_charset_logs_one_line(strict_client, caplog):
    with caplog.at_level(logging.INFO):
        post_form(strict_client, "/login/", "latin-1", username="ada")
    assert [(r.name, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("django.request", "Bad Request: /login/", None)
    ]


@pytest.mark.parametrize("charset", ["utf8", "UTF-8"])
def test_a_form_in_a_spelling_of_utf8_is_read(strict_client, user, charset):
    response = post_form(
        strict_client, "/login/", charset, username="ada", password=PASSWORD
    )
    assert response.status_code == HTTPStatus.FOUND
