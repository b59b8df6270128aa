"""WSGI entry point, for gunicorn: ``gunicorn sessionsite.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessionsite.settings")

application = get_wsgi_application()
