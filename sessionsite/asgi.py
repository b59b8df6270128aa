"""ASGI entry point; the session engine and middleware are natively async."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessionsite.settings")

application = get_asgi_application()
