"""HTTP for /fhir/r4/: authentication, content negotiation, body limits, errors as OperationOutcome.

Plain Django views (no second NinjaAPI): FHIR bodies are resources, not pydantic schemas, and
every answer — errors included — must be `application/fhir+json`. Authentication is the API's:
`Authorization: Bearer <token>` (scoped tokens narrow what the caller may do), or the browser
session; the views are CSRF-exempt for token clients and check CSRF themselves for session
clients on unsafe methods, so a logged-in browser cannot be made to post.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from medarchive.archiving.models import Record
from medarchive.capture.fhir import parse, queries, render, services
from medarchive.capture.fhir.outcome import (
    EXCEPTION,
    LOGIN,
    NOT_FOUND,
    NOT_SUPPORTED,
    SECURITY,
    TOO_LONG,
    FhirError,
    from_domain,
)
from medarchive.core.errors import IntegrityFailure, MedarchiveError, PermissionDenied
from medarchive.security import audit, context
from medarchive.security.models import User
from medarchive.security.services import authenticate_token

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json; charset=utf-8"
JSON_TYPES = frozenset({"application/fhir+json", "application/json"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    user: User
    source: str  # the token's name: which system is calling


Handler = Callable[..., HttpResponseBase]


def respond(data: Any, status: int = 200, **headers: str) -> HttpResponse:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    response = HttpResponse(body, status=status, content_type=FHIR_JSON)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def error_response(exc: FhirError) -> HttpResponse:
    response = respond(exc.outcome(), exc.status)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="medarchive"'
    return response


def _authenticate(request: HttpRequest) -> Caller:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise FhirError.of(401, LOGIN, "the Authorization header must be 'Bearer <token>'")
        found = authenticate_token(raw.strip())
        if found is None:
            raise FhirError.of(401, LOGIN, "the bearer token is unknown, expired or revoked")
        user, token = found
        request.user = user
        context.token_scopes.set(frozenset(token.scopes))
        return Caller(user, token.name)
    session_user = getattr(request, "user", None)
    if isinstance(session_user, User) and session_user.is_authenticated:
        if request.method not in SAFE_METHODS and _csrf_refused(request):
            raise FhirError.of(
                403, SECURITY, "CSRF check failed: a session client sends the X-CSRFToken header; systems use a token"
            )
        return Caller(session_user, "web")
    raise FhirError.of(401, LOGIN, "authentication required: send Authorization: Bearer <token>")


def _csrf_refused(request: HttpRequest) -> bool:
    # The views are csrf_exempt (token clients have no cookie); a session is checked here.
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    return check.process_view(request, None, (), {}) is not None  # type: ignore[arg-type]


def endpoint(**handlers: Handler) -> Callable[..., HttpResponseBase]:
    """One URL: its handlers by method, all errors answered as OperationOutcome."""

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponseBase:
        handler = handlers.get(request.method or "")
        if handler is None:
            response = error_response(
                FhirError.of(405, NOT_SUPPORTED, f"{request.method} is not supported here; use {', '.join(handlers)}")
            )
            response["Allow"] = ", ".join(handlers)
            return response
        try:
            caller = _authenticate(request)
            return handler(request, caller, **kwargs)
        except FhirError as exc:
            return error_response(exc)
        except PermissionDenied as exc:
            audit.record_refusal(exc)
            return error_response(from_domain(exc))
        except MedarchiveError as exc:
            if exc.status >= 500:
                log.error("FHIR %s %s: %s", request.method, request.path, exc.message)
            return error_response(from_domain(exc))
        except Exception:
            log.exception("FHIR %s %s failed", request.method, request.path)
            return error_response(FhirError.of(500, EXCEPTION, "internal error; the request was not processed"))

    return view


# --- request helpers ---------------------------------------------------------------------------------


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("fhir-base"))


def _require_json(request: HttpRequest) -> None:
    kind = (request.content_type or "").lower()
    if kind not in JSON_TYPES:
        raise FhirError.of(415, NOT_SUPPORTED, f"send Content-Type: application/fhir+json (got {kind or 'none'})")
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    if charset not in {"utf-8", "utf8"}:
        raise FhirError.of(415, NOT_SUPPORTED, f"FHIR JSON is UTF-8; charset {charset} is not accepted")


def _declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _read_body(request: HttpRequest, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be too large (before reading it)."""
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise FhirError.of(
            413, TOO_LONG, f"the body has {declared} bytes; the limit is {limit} (post large files as a raw Binary)"
        )
    data = request.read(limit + 1)
    if len(data) > limit:
        raise FhirError.of(413, TOO_LONG, f"the body is larger than the limit of {limit} bytes")
    return data


def _prefer(request: HttpRequest) -> str:
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            return value.strip().strip('"')
    return "representation"


def _if_none_exist(request: HttpRequest) -> str:
    raw = request.headers.get("If-None-Exist", "").strip()
    if not raw:
        return ""
    name, sep, value = raw.partition("=")
    if name != "identifier" or not sep or not value:
        raise FhirError.of(400, NOT_SUPPORTED, "If-None-Exist supports identifier=system|value only")
    return value


def _documents(request: HttpRequest, records: list[Record], actor: User, *, backfill: bool) -> list[dict[str, Any]]:
    digests = services.digests_of(records)
    if backfill:
        for record in records:
            for component in record.components.all():
                if component.sha256 in digests:
                    continue
                try:
                    digests[component.sha256] = services.backfill_digest(component)
                except (IntegrityFailure, OSError) as exc:  # fixity will flag it; answer without hash
                    log.error("SHA-1 of %s not computed: %s", component.pk, exc)
    base = base_url(request)
    return [render.document_reference(r, actor=actor, digests=digests, base=base) for r in records]


# --- handlers -------------------------------------------------------------------------------------------


def _create_document(request: HttpRequest, caller: Caller) -> HttpResponse:
    _require_json(request)
    raw = parse.load_json(_read_body(request, services.body_limit()))
    draft = parse.parse_document(
        raw, expression="DocumentReference", tz=services.local_tz(), limit=services.inline_limit()
    )
    del raw  # the base64 text; the draft holds the decoded bytes
    key = services.idempotency_key(
        header=request.headers.get("Idempotency-Key", "").strip(),
        condition=_if_none_exist(request),
        master=draft.master_identifier,
    )
    captured = services.capture_document(draft, actor=caller.user, key=key, source=draft.source or caller.source)
    record = captured.record
    base = base_url(request)
    headers = {
        "Location": f"{base}DocumentReference/{record.pk}",
        "Last-Modified": render.instant(record.updated_at),
    }
    status = 201 if captured.created else 200
    prefer = _prefer(request)
    if prefer == "minimal":
        response = HttpResponse(status=status)
        for name, value in headers.items():
            response[name] = value
        return response
    if prefer == "OperationOutcome":
        return respond(render.review_outcome(captured.intake, caller.user), status, **headers)
    # The record as `receive` left it (class, department and fonds attached): only its files are read.
    [document] = _documents(request, [record], caller.user, backfill=False)
    return respond(document, status, **headers)


def _transaction(request: HttpRequest, caller: Caller) -> HttpResponse:
    _require_json(request)
    raw = parse.load_json(_read_body(request, services.body_limit()))
    raw_entries = raw.get("entry")
    entries: list[Any] = raw_entries if isinstance(raw_entries, list) else []
    tx = parse.parse_transaction(raw, tz=services.local_tz(), limit=services.inline_limit())
    del raw
    header = request.headers.get("Idempotency-Key", "").strip()
    key = services.bundle_key(header=header, identifier=tx.identifier)
    captured = services.capture_transaction(tx, actor=caller.user, key=key, source=caller.source)
    responses: list[dict[str, Any]] = [{} for _ in entries]
    for item in captured:
        record = item.record
        responses[item.draft.entry] = {
            "status": "201 Created" if item.created else "200 OK",
            "location": f"DocumentReference/{record.pk}",
            "lastModified": render.instant(record.updated_at),
            "outcome": render.review_outcome(item.intake, caller.user),
        }
        for sequence, att in enumerate(item.draft.attachments, start=1):
            entry = next((b.entry for b in tx.binaries if b.full_url == att.entry_url), None) if att.entry_url else None
            if entry is not None and not responses[entry]:
                responses[entry] = {
                    "status": "201 Created" if item.created else "200 OK",
                    "location": f"Binary/{record.pk}.{sequence}",
                }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": r} for r in responses],
    }
    return respond(bundle, 200)


def _search(request: HttpRequest, caller: Caller) -> HttpResponse:
    params = {name: request.GET.getlist(name) for name in request.GET}
    result = queries.search(caller.user, params)
    base = base_url(request)
    resources = _documents(request, result.records, caller.user, backfill=False)
    return respond(render.searchset(resources, total=result.total, base=base, links=queries.links(base, result)))


def _read(request: HttpRequest, caller: Caller, resource_id: str) -> HttpResponse:
    record = queries.read(caller.user, resource_id)
    [document] = _documents(request, [record], caller.user, backfill=True)
    return respond(document, Last_Modified=render.instant(record.updated_at))


def _create_binary(request: HttpRequest, caller: Caller) -> HttpResponse:
    kind = (request.content_type or "").lower()
    if kind in JSON_TYPES:
        _require_json(request)
        draft = parse.parse_binary(
            parse.load_json(_read_body(request, services.body_limit())),
            expression="Binary",
            limit=services.inline_limit(),
        )
        row = services.store_binary(
            io.BytesIO(draft.content.data), draft.content_type, actor=caller.user, source=caller.source
        )
    else:
        if not kind:
            raise FhirError.of(415, NOT_SUPPORTED, "send the file's media type as Content-Type (or a Binary as JSON)")
        limit = settings.CONFIG.max_upload_bytes
        declared = _declared_length(request)
        if declared is not None and declared > limit:
            raise FhirError.of(413, TOO_LONG, f"the file has {declared} bytes; the limit is {limit}", "Binary.data")
        content_type = request.META.get("CONTENT_TYPE", "")
        row = services.store_binary(request, content_type, actor=caller.user, source=caller.source)  # type: ignore[arg-type]
    location = f"{base_url(request)}Binary/{row.pk}"
    body = {
        "resourceType": "Binary",
        "id": str(row.pk),
        "meta": {"lastUpdated": render.instant(row.created_at)},
        "contentType": row.content_type,
    }
    return respond(body, 201, Location=location)


def _read_binary(request: HttpRequest, caller: Caller, resource_id: str) -> HttpResponseBase:
    content = queries.read_binary(caller.user, resource_id)
    component = content.component
    response = StreamingHttpResponse(content.chunks, content_type=component.mime_type)
    response["Content-Length"] = str(component.size)
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(component.filename)}"
    response["X-Content-SHA256"] = component.sha256
    response["Cache-Control"] = "no-store"
    return response


def _capabilities(request: HttpRequest, caller: Caller) -> HttpResponse:
    return respond(render.capability_statement(base_url(request)))


def _not_found(request: HttpRequest, caller: Caller, **kwargs: Any) -> HttpResponse:
    raise FhirError.of(404, NOT_FOUND, f"{request.path} names no resource type this server has")


base = endpoint(POST=_transaction)
metadata = endpoint(GET=_capabilities)
document_reference_type = endpoint(GET=_search, POST=_create_document)
document_reference_instance = endpoint(GET=_read)
binary_type = endpoint(POST=_create_binary)
binary_instance = endpoint(GET=_read_binary)
unknown = endpoint(GET=_not_found, POST=_not_found)
