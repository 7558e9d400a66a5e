"""WSGI entry point (used by `medarchive serve` and any WSGI server)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medarchive.settings")
application = get_wsgi_application()
