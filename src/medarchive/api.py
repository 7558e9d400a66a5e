"""The REST API root: /api/v1/. Routers live in each stage's `api.py`; errors are mapped here once."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as NinjaValidationError

from medarchive import __version__
from medarchive.access.api import router as access_router
from medarchive.archiving.api import router as archiving_router
from medarchive.capture.api import router as capture_router
from medarchive.core.errors import MedarchiveError, PermissionDenied
from medarchive.preservation.api import router as preservation_router
from medarchive.security import audit
from medarchive.security.api import router as security_router
from medarchive.security.api_auth import BearerToken, Session, require_authenticated

api = NinjaAPI(
    title="medarchive API",
    version=__version__,
    description="Hospital archive management. Authenticate with `Authorization: Bearer <token>` "
    "(create one with `medarchive token create USERNAME`).",
    auth=[BearerToken(), Session()],
    docs_decorator=require_authenticated,
    urls_namespace="api-v1",
)


@api.exception_handler(MedarchiveError)
def domain_error(request: HttpRequest, exc: MedarchiveError) -> HttpResponse:
    if isinstance(exc, PermissionDenied):
        user = getattr(request, "user", None)
        audit.record_denial(exc.details.get("action", ""), actor=user if user and user.is_authenticated else None,
                            object_type="record", object_id=str(exc.details.get("object_id", "")),
                            reason=exc.message)
    return api.create_response(request, exc.as_problem(), status=exc.status)


@api.exception_handler(NinjaValidationError)
def request_invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    for err in exc.errors:
        loc = [str(part) for part in err.get("loc", []) if part not in {"body", "query", "path", "form", "payload"}]
        errors.append({"field": ".".join(loc), "message": err.get("msg", "invalid")})
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    problem = {"code": "validation_error", "message": f"{first['field']}: {first['message']}".lstrip(": "),
               "field": first["field"], "errors": errors}
    return api.create_response(request, problem, status=422)


@api.exception_handler(AuthenticationError)
def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"code": "not_authenticated", "message": "authentication required: send "
                                         "Authorization: Bearer <token>"}, status=401)


@api.get("/health", auth=None, tags=["system"])
def health(request: HttpRequest) -> dict[str, str]:
    """Liveness for load balancers; the only endpoint that needs no authentication."""
    return {"status": "ok", "version": __version__}


api.add_router("/records", capture_router, tags=["capture"])
api.add_router("/records", archiving_router, tags=["archiving"])
api.add_router("/records", access_router, tags=["access"])
api.add_router("/preservation", preservation_router, tags=["preservation"])
api.add_router("/audit", security_router, tags=["security"])
