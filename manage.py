#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessionsite.settings")
    if sys.argv[1:2] == ["runserver"]:
        # The development server implies development settings.
        os.environ.setdefault("DJANGO_DEBUG", "1")

    from sessionsite.embedded_redis import ensure_redis_url

    ensure_redis_url()

    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
