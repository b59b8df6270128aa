"""Filters for the site's log handlers."""

from __future__ import annotations

import logging


class ClientErrorsOnOneLine(logging.Filter):
    """
    Log a client's error (a 4xx answer) as one warning line, without a traceback.

    Django logs a bad Host, an oversized body or too many fields at ERROR
    with the exception's traceback: that is the client's mistake, not the
    site's, and anyone could fill the log with it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
