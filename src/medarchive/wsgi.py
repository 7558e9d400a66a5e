"""WSGI entry point (used by `medarchive serve` and any WSGI server).

A server process audits reads without sealing them in the request (ADR 0020): the first request a
process answers starts its read-log writer (group commit of audited reads) and its sealer thread,
after any fork the server did (a thread does not survive a fork).
"""

import os
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medarchive.settings")
_django = get_wsgi_application()


def application(environ: dict[str, Any], start_response: Any) -> Any:
    from medarchive.security import audit, readlog, sealer  # noqa: PLC0415 - after Django is set up

    if not sealer.running():
        from django.conf import settings  # noqa: PLC0415

        readlog.start()
        sealer.start(settings.CONFIG.audit_seal_ms / 1000, audit.seal_pending)
    return _django(environ, start_response)
