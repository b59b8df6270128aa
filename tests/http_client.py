"""A small HTTP client that keeps cookies, for tests against a real server."""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Browser:
    """One visitor: a cookie jar, safe to share between threads.

    headers go with every request, as a proxy in front of the server adds them.
    """

    def __init__(
        self,
        port: int,
        *,
        timeout: float = 10,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.timeout = timeout
        self.headers = headers or {}
        self.cookies: dict[str, str] = {}
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        *,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        with self._lock:
            cookie = "; ".join(
                f"{name}={value}" for name, value in self.cookies.items()
            )
        sent = {"Cookie": cookie, **self.headers, **(headers or {})}
        body = None
        if data is not None:
            body = urlencode(data)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            sent["X-CSRFToken"] = self.cookies.get("csrftoken", "")
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=self.timeout
        )
        try:
            connection.request(method, path, body=body, headers=sent)
            raw = connection.getresponse()
            response = Response(raw.status, raw.headers, raw.read())
        finally:
            connection.close()
        with self._lock:
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    if morsel.value and morsel["max-age"] != "0":
                        self.cookies[name] = morsel.value
                    else:
                        self.cookies.pop(name, None)
        return response

    def at(self, port: int) -> Browser:
        """Return the same visitor (same cookie jar) talking to another server."""
        other = Browser(port, timeout=self.timeout, headers=self.headers)
        other.cookies, other._lock = self.cookies, self._lock
        return other

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(
        self, path: str, data: dict[str, str] | None = None, **kwargs: Any
    ) -> Response:
        if "csrftoken" not in self.cookies:
            self.get("/login/")
        return self.request("POST", path, data=data or {}, **kwargs)

    def log_in(self, username: str, password: str) -> Response:
        return self.post("/login/", {"username": username, "password": password})
