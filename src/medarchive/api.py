"""The REST API root: /api/v1/. Routers live in each stage's `api.py`; errors are mapped here once."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as NinjaValidationError

from medarchive import __version__
from medarchive.access import api as access_api  # noqa: F401  (adds its operations to the records router)
from medarchive.archiving import api as archiving_api  # noqa: F401
from medarchive.capture import api as capture_api
from medarchive.capture import submissions_api
from medarchive.capture.duties.api import router as duties_router
from medarchive.core.api import router as departments_router
from medarchive.core.errors import MedarchiveError, PermissionDenied
from medarchive.core.routers import records
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
        audit.record_refusal(exc)
    return api.create_response(request, exc.as_problem(), status=exc.status)


@api.exception_handler(NinjaValidationError)
def request_invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    for err in exc.errors:
        loc = [
            str(part) for part in err.get("loc", []) if part not in {"body", "query", "path", "form", "file", "payload"}
        ]
        errors.append({"field": ".".join(loc), "message": err.get("msg", "invalid")})
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    problem = {
        "code": "validation_error",
        "message": f"{first['field']}: {first['message']}".lstrip(": "),
        "field": first["field"],
        "errors": errors,
    }
    return api.create_response(request, problem, status=422)


@api.exception_handler(AuthenticationError)
def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request,
        {"code": "not_authenticated", "message": "authentication required: send Authorization: Bearer <token>"},
        status=401,
    )


@api.get("/health", auth=None, tags=["system"])
def health(request: HttpRequest) -> dict[str, str]:
    """Liveness for load balancers; the only endpoint that needs no authentication."""
    return {"status": "ok", "version": __version__}


api.add_router("/records", records)
api.add_router("/submissions", submissions_api.router)
api.add_router("/uploads", submissions_api.uploads)
api.add_router("/review", capture_api.review_router)
api.add_router("/duties", duties_router, tags=["duties"])
api.add_router("/preservation", preservation_router, tags=["preservation"])
api.add_router("/audit", security_router, tags=["security"])
api.add_router("/departments", departments_router, tags=["departments"])
