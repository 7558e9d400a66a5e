"""The REST API root: /api/v1/. Routers live in each stage's `api.py`; errors are mapped here once.

Every error answers with the one `Problem` body (`MedarchiveError.as_problem()`): domain errors,
request validation, authentication, unparseable or non-object JSON, bodies that are too large,
unknown routes and methods (`ProblemMiddleware`) and unexpected failures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext_lazy
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from medarchive import __version__, readiness
from medarchive.access import api as access_api  # noqa: F401  (adds its operations to the records router)
from medarchive.archiving import api as archiving_api  # noqa: F401
from medarchive.capture import api as capture_api
from medarchive.capture import submissions_api
from medarchive.capture.duties.api import router as duties_router
from medarchive.core.api import router as departments_router
from medarchive.core.apierrors import (
    BadRequest,
    MethodNotAllowed,
    body_problem,
    load_object,
    too_large,
    unauthenticated,
)
from medarchive.core.errors import (
    InternalError,
    MedarchiveError,
    NotFound,
    PermissionDenied,
    Problems,
    Unavailable,
    ValidationError,
)
from medarchive.core.routers import records
from medarchive.core.schemas import ERRORS, HealthOut, Problem, ReadyOut
from medarchive.preservation import durability
from medarchive.preservation.api import router as preservation_router
from medarchive.security import audit
from medarchive.security.api import router as security_router
from medarchive.security.api_auth import BearerToken, Session, require_authenticated

log = logging.getLogger(__name__)
PREFIX = "/api/v1/"
_SOURCES = frozenset({"body", "query", "path", "form", "file", "header", "cookie"})


class ObjectParser(Parser):
    """JSON bodies are objects: an array, a string or a number where an object is expected is refused
    (django-ninja would otherwise read it as an object without fields and apply the defaults)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        return load_object(request.body)


api = NinjaAPI(
    title="medarchive API",
    version=__version__,
    description="Hospital archive management. Authenticate with `Authorization: Bearer <token>` "
    "(create one with `medarchive token create USERNAME`). Every error answers with a `Problem`: "
    "`code` (stable), `message` (in the caller's language), `field` (the input it names, or empty), "
    "and `errors` when one input has several problems.",
    auth=[BearerToken(), Session()],
    docs_decorator=require_authenticated,
    urls_namespace="api-v1",
    parser=ObjectParser(),
)


def problem_response(exc: MedarchiveError, **headers: str) -> JsonResponse:
    """A `Problem` answer outside django-ninja (middleware, the body gate)."""
    response = JsonResponse(exc.as_problem(), status=exc.status, json_dumps_params={"ensure_ascii": False})
    for name, value in headers.items():
        response[name] = value
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="medarchive"'
    return response


def _respond(request: HttpRequest, exc: MedarchiveError) -> HttpResponse:
    response = api.create_response(request, exc.as_problem(), status=exc.status)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="medarchive"'
    return response


@api.exception_handler(MedarchiveError)
def domain_error(request: HttpRequest, exc: MedarchiveError) -> HttpResponse:
    if isinstance(exc, PermissionDenied):
        audit.record_refusal(exc)
    if exc.status >= 500:
        log.error("%s %s: %s", request.method, request.path, exc.message)
    return _respond(request, exc)


def _field(loc: list[Any]) -> str:
    """`("body", "body", "title")` → `title`; `("query", "page_size")` → `page_size`."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in _SOURCES:
        source, parts = parts[0], parts[1:]
        if source == "body" and len(parts) > 1:
            parts = parts[1:]  # the name of the body parameter itself
    return ".".join(parts)


@api.exception_handler(NinjaValidationError)
def request_invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    problems: list[MedarchiveError] = [_schema_problem(err) for err in exc.errors]
    if not problems:
        problems.append(ValidationError(gettext_lazy("The request is not valid."), code="invalid_request", field=""))
    return _respond(request, Problems(problems))


# What the document declares (pydantic's error types), said in the caller's language with a stable code.
_SCHEMA_PROBLEMS: dict[str, tuple[str, Any]] = {
    "missing": ("required", gettext_lazy("%(name)s is required.")),
    "string_too_long": ("too_long", gettext_lazy("%(name)s is longer than %(max_length)s characters.")),
    "string_too_short": ("too_short", gettext_lazy("%(name)s is shorter than %(min_length)s characters.")),
    "string_pattern_mismatch": ("bad_format", gettext_lazy("%(name)s holds a character or form that is not allowed.")),
    "enum": ("not_a_choice", gettext_lazy("%(name)s must be one of: %(expected)s.")),
    "literal_error": ("not_a_choice", gettext_lazy("%(name)s must be one of: %(expected)s.")),
    "int_parsing": ("not_an_integer", gettext_lazy("%(name)s must be a whole number.")),
    "int_type": ("not_an_integer", gettext_lazy("%(name)s must be a whole number.")),
    "greater_than_equal": ("out_of_range", gettext_lazy("%(name)s must be at least %(ge)s.")),
    "less_than_equal": ("out_of_range", gettext_lazy("%(name)s must be at most %(le)s.")),
    "bool_parsing": ("not_a_boolean", gettext_lazy("%(name)s must be true or false.")),
    "bool_type": ("not_a_boolean", gettext_lazy("%(name)s must be true or false.")),
    "string_type": ("not_a_string", gettext_lazy("%(name)s must be text.")),
    "date_from_datetime_parsing": ("not_a_date", gettext_lazy("%(name)s must be a date (YYYY-MM-DD).")),
    "date_parsing": ("not_a_date", gettext_lazy("%(name)s must be a date (YYYY-MM-DD).")),
}


def _schema_problem(err: dict[str, Any]) -> MedarchiveError:
    where = _field(list(err.get("loc", ())))
    kind = str(err.get("type", ""))
    ctx = {k: str(v) for k, v in (err.get("ctx") or {}).items()}
    if kind in _SCHEMA_PROBLEMS:
        code, template = _SCHEMA_PROBLEMS[kind]
        return ValidationError(template, code=code, field=where, **{**ctx, "name": where or "body"})
    # Anything else the document declares: pydantic's own words (English), under a stable code.
    text = str(err.get("msg", "invalid"))
    return ValidationError(f"{where}: {text}" if where else text, code=f"schema_{kind or 'invalid'}", field=where)


@api.exception_handler(AuthenticationError)
def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _respond(request, unauthenticated())


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400 and "parse request body" in str(exc.message):
        return _respond(request, body_problem(exc.__cause__))
    if exc.status_code == 403 and "CSRF" in str(exc.message):  # a browser session without its CSRF token
        refused = PermissionDenied(
            gettext_lazy("CSRF check failed: a browser session sends the X-CSRFToken header; systems use a token."),
            code="csrf_failed",
            field="X-CSRFToken",
        )
        return _respond(request, refused)
    error = MedarchiveError(str(exc.message), code="http_error")
    error.status = exc.status_code
    return _respond(request, error)


@api.exception_handler(RequestDataTooBig)
def data_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _respond(request, too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))


@api.exception_handler(SuspiciousOperation)
def suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    """Too many form fields or files, a malformed multipart body: the request, not the server, is wrong."""
    return _respond(
        request,
        ValidationError(
            gettext_lazy("The request cannot be read: %(reason)s"),
            code="unreadable_body",
            field="body",
            reason=str(exc),
        ),
    )


@api.exception_handler(MultiPartParserError)
def multipart_invalid(request: HttpRequest, exc: MultiPartParserError) -> HttpResponse:
    return _respond(
        request,
        BadRequest(
            gettext_lazy("The multipart body cannot be read: %(reason)s"),
            code="invalid_multipart",
            field="body",
            reason=str(exc),
        ),
    )


@api.exception_handler(Exception)
def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("%s %s failed", request.method, request.path)
    return _respond(request, InternalError(gettext_lazy("Internal error; the request was not processed.")))


@api.get("/health", auth=None, tags=["system"], response={200: HealthOut, **ERRORS})
def health(request: HttpRequest) -> dict[str, Any]:
    """Liveness for load balancers; the only endpoint that needs no authentication. `durable` is
    false when the database could lose acknowledged commits in a power cut (the server log and
    `medarchive init` say why)."""
    return {"status": "ok", "version": __version__, "durable": not durability.problems()}


@api.get(
    "/ready",
    auth=None,
    tags=["system"],
    response={200: ReadyOut, **ERRORS, 503: Problem},
    summary="Readiness: database, store, audit sealer, jobs",
)
def ready(request: HttpRequest) -> dict[str, Any]:
    """For load balancers and orchestrators: 200 when this process can serve, else a 503 Problem naming
    what fails (`details.checks`). Only a stable word per check, nothing about the data."""
    found = readiness.checks()
    checks = {c.name: c.state for c in found}
    if not readiness.ready(found):
        failing = [f"{c.name} ({c.state})" for c in found if c.required and not c.ok]
        raise Unavailable(
            gettext_lazy("This server is not ready: %(failing)s."), field="", failing=failing, checks=checks
        )
    return {"status": "ready", "checks": checks}


api.add_router("/records", records)
api.add_router("/submissions", submissions_api.router)
api.add_router("/uploads", submissions_api.uploads)
api.add_router("/review", capture_api.review_router)
api.add_router("/duties", duties_router, tags=["duties"])
api.add_router("/preservation", preservation_router, tags=["preservation"])
api.add_router("/audit", security_router, tags=["security"])
api.add_router("/departments", departments_router, tags=["departments"])


class ProblemMiddleware:
    """Under /api/v1/, an answer that did not come from an operation — an unknown route (404) or method
    (405), a request Django refused before any view ran (400, 413), a crash outside django-ninja (500) —
    is a Problem too, never an HTML page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        return problem_response(_problem_for(request, response), **_kept_headers(response))


def _problem_for(request: HttpRequest, response: HttpResponse) -> MedarchiveError:
    status = response.status_code
    if status == 404:
        return NotFound(gettext_lazy("%(path)s is not an API operation."), code="no_such_operation", path=request.path)
    if status == 405:
        return MethodNotAllowed(
            gettext_lazy("%(method)s is not allowed here; use %(allowed)s."),
            method=request.method or "",
            allowed=response.get("Allow", ""),
        )
    if status == 413:
        return too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if status >= 500:
        return InternalError(gettext_lazy("Internal error; the request was not processed."))
    error = BadRequest(
        gettext_lazy("The request cannot be read: %(reason)s"), field="", reason=HTTPStatus(status).phrase
    )
    error.status = status
    return error


def _kept_headers(response: HttpResponse) -> dict[str, str]:
    return {name: response[name] for name in ("Allow", "WWW-Authenticate", "Retry-After") if name in response}
