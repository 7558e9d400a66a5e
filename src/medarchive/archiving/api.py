"""Editing drafts and moving records through their lifecycle."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Schema
from ninja.errors import ValidationError as RequestInvalid
from pydantic import ValidationError as PydanticError

from medarchive.access.queries import describe
from medarchive.archiving import services
from medarchive.archiving.metadata import schema as metadata_schema
from medarchive.archiving.models import OPEN_STATUSES, SECURITY_LEVELS
from medarchive.archiving.services import HOLD_REASON_LIMIT
from medarchive.capture import review
from medarchive.capture.review import COMMENT_LIMIT
from medarchive.capture.services import update_draft
from medarchive.core.apierrors import parse_object
from medarchive.core.routers import records
from medarchive.core.schemas import (
    ERRORS,
    IsoDate,
    RecordOut,
    StrictBool,
    absent,
    closed_set,
    multi_line,
    one_line,
    shipped_retention_codes,
)
from medarchive.security.api_auth import actor_of

SecurityLevel = closed_set(tuple(SECURITY_LEVELS))
OpenStatus = closed_set(tuple(OPEN_STATUSES))
Retention = closed_set(shipped_retention_codes())


def metadata_document() -> dict[str, Any]:
    """The record metadata schema (versioned data), declared as it is validated."""
    return {k: v for k, v in metadata_schema().items() if k not in {"$schema", "$id", "title"}}


class DraftChanges(Schema):
    """Only the fields sent change; a field sent as null is refused (send the value instead)."""

    title: Annotated[str, one_line(500, required=True)] = absent(examples=["关于召开年度工作会议的通知（修订）"])
    responsible: Annotated[str, one_line(200)] = absent(description="empty: the department's name")
    doc_number: Annotated[str, one_line(100)] = absent()
    date: IsoDate = absent(description="YYYY-MM-DD, from 1900 to today")
    security_level: SecurityLevel = absent()  # type: ignore[valid-type]
    retention: Retention = absent()  # type: ignore[valid-type]
    open_status: OpenStatus = absent()  # type: ignore[valid-type]
    organization: Annotated[str, one_line(64)] = absent(description="empty: the department's code")
    metadata: dict[str, Any] = absent(json_schema_extra=metadata_document())


class HoldIn(Schema):
    reason: Annotated[str, one_line(HOLD_REASON_LIMIT, required=True, examples=["诉讼保全"])]


class AcceptIn(Schema):
    comment: Annotated[str, multi_line(COMMENT_LIMIT, description="required with override")] = ""
    override: StrictBool = False  # accept despite errors found at the door; needs a comment


def _accept_body(request: HttpRequest) -> AcceptIn:
    """The body is optional, which django-ninja's body parameters are not."""
    if request.content_type != "application/json" or not request.body.strip():
        return AcceptIn()
    data = parse_object(request.body)
    try:
        return AcceptIn.model_validate(data)
    except PydanticError as exc:
        # Answered as any body django-ninja reads is (`medarchive.api.request_invalid`): each problem
        # under its stable code (`too_long`, `not_a_boolean` ...), in the caller's language, its field named.
        # The location is a body parameter's, as django-ninja gives it: ("body", <parameter>, field ...).
        raise RequestInvalid(
            [{**error, "loc": ("body", "body", *error.get("loc", ()))} for error in exc.errors(include_url=False)]
        ) from None


@records.patch(
    "/{record_id}", tags=["archiving"], response={200: RecordOut, **ERRORS}, summary="Change a draft's description"
)
def patch_record(request: HttpRequest, record_id: UUID, changes: DraftChanges) -> RecordOut:
    record = update_draft(record_id, changes.dict(exclude_unset=True), actor=actor_of(request))
    return RecordOut.from_description(describe(record, actor_of(request)))


@records.post(
    "/{record_id}/submit",
    tags=["archiving"],
    response={200: RecordOut, **ERRORS},
    summary="Submit (or resubmit) a draft to the archive: it is checked at the door",
)
def submit(request: HttpRequest, record_id: UUID) -> RecordOut:
    record = review.submit(record_id, actor=actor_of(request))
    return RecordOut.from_description(describe(record, actor_of(request)))


@records.post(
    "/{record_id}/accept",
    tags=["archiving"],
    response={200: RecordOut, **ERRORS},
    summary="Accept a submitted record",
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": AcceptIn.model_json_schema()}},
        }
    },
)
def accept(request: HttpRequest, record_id: UUID) -> RecordOut:
    """Optional JSON body `{"comment": "...", "override": true}`: accept despite errors found at the
    door (the comment is required then and kept as the 行为依据)."""
    body = _accept_body(request)
    record = review.accept(record_id, actor=actor_of(request), comment=body.comment, override=body.override)
    return RecordOut.from_description(describe(record, actor_of(request)))


@records.post(
    "/{record_id}/archive", tags=["archiving"], response={200: RecordOut, **ERRORS}, summary="Archive: assign the 档号"
)
def archive(request: HttpRequest, record_id: UUID) -> RecordOut:
    record = services.archive_record(record_id, actor=actor_of(request))
    return RecordOut.from_description(describe(record, actor_of(request)))


@records.post(
    "/{record_id}/hold",
    tags=["archiving"],
    response={200: RecordOut, **ERRORS},
    summary="Put an archived record on hold",
)
def hold(request: HttpRequest, record_id: UUID, body: HoldIn) -> RecordOut:
    record = services.hold_record(record_id, actor=actor_of(request), reason=body.reason)
    return RecordOut.from_description(describe(record, actor_of(request)))
