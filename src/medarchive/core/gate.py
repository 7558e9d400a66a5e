"""Limits before work: a request body is judged on its headers, before a byte of it is read.

Two rules, applied by `refusal` to the method, path, headers and declared length:

* **Size.** Upload routes (a record with its files, a submission, a tus piece, FHIR) take bodies up
  to `upload_limit` — MEDARCHIVE_MAX_UPLOAD_BYTES plus the multipart framing and form fields around
  the file; every other route up to `form_limit` (Django's DATA_UPLOAD_MAX_MEMORY_SIZE plus framing).
  Larger is 413.
* **Who.** A body larger than `ANONYMOUS_BODY` (a login form is far smaller), or one of unknown length
  (chunked), is read only for a caller whose bearer token or session is valid: anyone else gets 401
  before the server stores anything of it.

The refusal is rendered for where it was aimed: a Problem under /api/v1/, an OperationOutcome under
/fhir/r4/, a short page for the web. Two places apply it: `BodyGateMiddleware` (any WSGI server:
Django reads a body only when a view asks) and the waitress parser of `medarchive serve`
(`cli/server.py`), which would otherwise receive and spool the whole body before the application runs.
"""

from __future__ import annotations

import html
import json
import logging
import time
from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from importlib import import_module

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy

from medarchive.core.apierrors import too_large, unauthenticated
from medarchive.core.errors import MedarchiveError, PayloadTooLarge

log = logging.getLogger(__name__)

ANONYMOUS_BODY = 64 * 1024
# Multipart framing per part (boundary, headers) times the most parts Django accepts, plus the
# non-file fields (manifest, register, description) which Django holds in memory up to its limit.
PART_OVERHEAD = 1024
API, FHIR = "/api/v1/", "/fhir/r4/"
_UPLOADS = (
    ("POST", "/api/v1/records"),
    ("POST", "/api/v1/submissions"),
    ("PATCH", "/api/v1/uploads/"),
    ("POST", FHIR),
    ("PUT", FHIR),
    ("POST", "/records/new/"),
)


def framing() -> int:
    """Bytes a multipart body may carry around its files."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + PART_OVERHEAD * (
        settings.DATA_UPLOAD_MAX_NUMBER_FILES + settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    )


def upload_limit() -> int:
    """The largest body of an upload route: the largest file with its framing, or a FHIR JSON body
    carrying the largest inline attachment (base64), whichever is larger."""
    from medarchive.capture.fhir.services import body_limit  # noqa: PLC0415 - capture builds on core

    return max(settings.CONFIG.max_upload_bytes + framing(), body_limit())


def form_limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + PART_OVERHEAD * settings.DATA_UPLOAD_MAX_NUMBER_FIELDS


def is_upload(method: str, path: str) -> bool:
    return any(method == m and (path == p or (p.endswith("/") and path.startswith(p))) for m, p in _UPLOADS)


def route_limit(method: str, path: str) -> int:
    return upload_limit() if is_upload(method, path) else form_limit()


def refusal(method: str, path: str, header: Callable[[str], str | None], length: int | None) -> MedarchiveError | None:
    """Why a request must not have its body read (None: read it). `header` looks a header up by its
    name (`Authorization`, `Cookie`); `length` is the declared Content-Length, None when chunked."""
    if (length is None or length > ANONYMOUS_BODY) and not _authenticated(header):
        return unauthenticated()  # first: a stranger learns nothing of the limits
    limit = route_limit(method, path)
    if length is not None and length > limit:
        return too_large(limit)
    return None


def _authenticated(header: Callable[[str], str | None]) -> bool:
    from medarchive.security.services import token_is_valid  # noqa: PLC0415 - security builds on core

    try:
        authorization = (header("Authorization") or "").strip()
        if authorization:
            scheme, _, raw = authorization.partition(" ")
            return scheme.lower() == "bearer" and token_is_valid(raw.strip())
        return _session_is_valid(header("Cookie") or "")
    except Exception:  # a database that cannot answer: Django refuses the request itself, after reading it
        log.exception("the body gate could not check the caller's credentials")
        return True


def _session_is_valid(cookies: str) -> bool:
    from django.contrib.auth import SESSION_KEY  # noqa: PLC0415

    from medarchive.security.middleware import LAST_SEEN  # noqa: PLC0415
    from medarchive.security.models import User  # noqa: PLC0415

    try:
        jar = SimpleCookie(cookies)
    except CookieError:
        return False
    morsel = jar.get(settings.SESSION_COOKIE_NAME)
    if morsel is None or not morsel.value:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=morsel.value)
    data = store.load()
    user_id, last = data.get(SESSION_KEY), data.get(LAST_SEEN)
    if user_id is None or (last is not None and time.time() - float(last) > settings.MEDARCHIVE_SESSION_IDLE_SECONDS):
        return False
    return User.objects.filter(pk=user_id, is_active=True).exists()


def render(error: MedarchiveError, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a refusal, in the form the route speaks."""
    headers = [("Cache-Control", "no-store")]
    if error.status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="medarchive"'))
    if path.startswith(FHIR):
        from medarchive.capture.fhir.outcome import from_domain  # noqa: PLC0415

        body = json.dumps(from_domain(error).outcome(), ensure_ascii=False).encode()
        return error.status, [("Content-Type", "application/fhir+json; charset=utf-8"), *headers], body
    if path.startswith(API) or not path.startswith("/"):
        body = json.dumps(error.as_problem(), ensure_ascii=False).encode()
        return error.status, [("Content-Type", "application/json; charset=utf-8"), *headers], body
    title = gettext_lazy("The file is too large") if isinstance(error, PayloadTooLarge) else gettext_lazy("Log in")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(str(title))}</title></head>"
        f"<body><h1>{html.escape(str(title))}</h1><p>{html.escape(error.message)}</p></body></html>"
    )
    return error.status, [("Content-Type", "text/html; charset=utf-8"), *headers], page.encode()


def declared_length(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else 0
    except ValueError:
        return None


class BodyGateMiddleware:
    """The gate for any WSGI server: the refusal is answered before a view reads the body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta: Mapping[str, str] = request.META
        chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        length = None if chunked else declared_length(meta.get("CONTENT_LENGTH"))
        if length == 0 and not chunked:
            return self.get_response(request)
        error = refusal(request.method or "", request.path, request.headers.get, length)
        if error is None:
            return self.get_response(request)
        status, headers, body = render(error, request.path)
        response = HttpResponse(body, status=status)
        for name, value in headers:
            response[name] = value
        return response
