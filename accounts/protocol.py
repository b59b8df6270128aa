"""HTTP details that Django leaves to the server: form charsets, HEAD."""

from __future__ import annotations

import codecs

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from sessionsite.on_the_loop import OnTheLoop

FORM = "application/x-www-form-urlencoded"


class FormCharsetMiddleware(OnTheLoop):
    """
    Answer 400 to a form body that declares a charset other than UTF-8.

    Django refuses such a body when request.POST is first read, but does not
    remember the refusal: its error views read request.POST again (through
    the CSRF check), fail again, and end in a bare 500 with a chain of
    tracebacks. Refused here, before anything reads the body, it costs one
    "Bad Request" line in the log. Spellings of UTF-8 ("utf8") are accepted.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if request.content_type != FORM or request.encoding is None:
            return None
        if codecs.lookup(request.encoding).name != "utf-8":
            return HttpResponseBadRequest(
                "Form data must be UTF-8.", content_type="text/plain"
            )
        request.encoding = "utf-8"
        return None


class HeadWithoutBodyMiddleware(OnTheLoop):
    """
    Send no body in answer to HEAD, keeping the headers of the GET.

    Django's views render the body and leave it to the server to drop it;
    gunicorn does, with a warning in the log for every HEAD request.
    """

    def process_response(
        self, request: HttpRequest, response: HttpResponse
    ) -> HttpResponse:
        if request.method == "HEAD" and not response.streaming:
            response.content = b""
        return response
