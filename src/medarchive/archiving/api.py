"""Editing drafts and moving records through their lifecycle."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Schema
from pydantic import ValidationError as PydanticError

from medarchive.access.queries import describe
from medarchive.archiving import services
from medarchive.capture import review
from medarchive.capture.services import update_draft
from medarchive.core.errors import ValidationError
from medarchive.core.routers import records
from medarchive.core.schemas import ERRORS, RecordOut
from medarchive.security.api_auth import actor_of


class DraftChanges(Schema):
    title: str | None = None
    responsible: str | None = None
    doc_number: str | None = None
    date: dt.date | None = None
    security_level: str | None = None
    retention: str | None = None
    open_status: str | None = None
    organization: str | None = None
    metadata: dict[str, Any] | None = None


class HoldIn(Schema):
    reason: str


class AcceptIn(Schema):
    comment: str = ""
    override: bool = False  # accept despite errors found at the door; needs a comment


def _accept_body(request: HttpRequest) -> AcceptIn:
    """The body is optional, which django-ninja's body parameters are not."""
    if request.content_type != "application/json" or not request.body.strip():
        return AcceptIn()
    try:
        return AcceptIn.model_validate_json(request.body)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ValidationError(f"{where or 'body'}: {first.get('msg', 'invalid')}", field=where or "body") from None


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
    "/{record_id}/accept", tags=["archiving"], response={200: RecordOut, **ERRORS}, summary="Accept a submitted record"
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
