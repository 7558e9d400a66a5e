"""Capture on /api/v1/records (a record with its files; its review at the door) and /api/v1/review."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from medarchive.access.queries import audit_metadata_read, describe, get_record
from medarchive.capture import findings, queries, review, services
from medarchive.capture.models import Intake
from medarchive.core.errors import NotFound, ValidationError
from medarchive.core.routers import records
from medarchive.core.schemas import ERRORS, RecordOut
from medarchive.security.api_auth import actor_of
from medarchive.security.models import User

MAX_BULK = 500


def _metadata(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"metadata is not valid JSON: {exc.msg} at position {exc.pos}", field="metadata"
        ) from None
    if not isinstance(value, dict):
        raise ValidationError("metadata must be a JSON object", field="metadata")
    return value


@records.post("", tags=["capture"], response={201: RecordOut, **ERRORS}, summary="Capture a record with its files")
def create_record(
    request: HttpRequest,
    class_code: Form[str],
    department: Form[str],
    title: Form[str],
    date: Form[str],
    files: File[list[UploadedFile]],
    responsible: Form[str] = "",
    doc_number: Form[str] = "",
    security_level: Form[str] = "内部",
    retention: Form[str] = "",
    open_status: Form[str] = "未审核",
    organization: Form[str] = "",
    metadata: Form[str] = "",
) -> Status:
    """Files stream straight into the encrypted store. Send an `Idempotency-Key` header so a
    retried request cannot create the record twice (a repeat answers 409 naming the record)."""
    desc = services.Description(
        class_code=class_code,
        department_code=department,
        title=title,
        date=date,
        responsible=responsible,
        doc_number=doc_number,
        security_level=security_level,
        retention=retention or None,
        open_status=open_status,
        organization=organization or None,
        metadata=_metadata(metadata),
    )
    incoming = [services.IncomingFile.from_upload(f) for f in files]
    record = services.create_record(
        desc,
        incoming,
        actor=actor_of(request),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return Status(201, RecordOut.from_description(describe(record, actor_of(request))))


class CommentIn(Schema):
    comment: str


class ReasonIn(Schema):
    reason: str


class IntakeOut(Schema):
    record_id: str
    electronic_no: str
    title: str
    class_code: str
    department: str
    state: str  # pending | returned | accepted | withdrawn
    channel: str
    submission_id: str
    label: str
    errors: int
    warnings: int
    findings: list[dict[str, Any]]
    comment: str
    rounds: int
    checked_at: str | None

    @staticmethod
    def of(intake: Intake, actor: User) -> IntakeOut:
        record = intake.record
        return IntakeOut(
            record_id=str(record.pk),
            electronic_no=record.electronic_no,
            title=record.title,
            class_code=record.archive_class.code,
            department=record.department.code,
            state=intake.state,
            channel=intake.submission.channel,
            submission_id=str(intake.submission_id),
            label=intake.label,
            errors=intake.errors,
            warnings=intake.warnings,
            findings=findings.for_viewer(intake.findings, actor),
            comment=intake.comment,
            rounds=intake.rounds,
            checked_at=intake.checked_at.isoformat() if intake.checked_at else None,
        )


def _intake(request: HttpRequest, record_id: UUID) -> IntakeOut:
    record = get_record(actor_of(request), record_id)
    found = Intake.objects.filter(record=record).select_related("record", "submission").first()
    if found is None:
        raise NotFound(f"record {record.electronic_no} has not been submitted to the archive")
    audit_metadata_read(actor_of(request), record)
    return IntakeOut.of(found, actor_of(request))


@records.get("/{record_id}/intake", tags=["capture"], response={200: IntakeOut, **ERRORS}, summary="Review state")
def get_intake(request: HttpRequest, record_id: UUID) -> IntakeOut:
    """What the checks at the door found, and where the record stands in the review."""
    return _intake(request, record_id)


@records.post(
    "/{record_id}/return", tags=["capture"], response={200: IntakeOut, **ERRORS}, summary="Return to the department"
)
def return_record(request: HttpRequest, record_id: UUID, body: CommentIn) -> IntakeOut:
    review.return_to_department(record_id, actor=actor_of(request), comment=body.comment)
    return _intake(request, record_id)


@records.post(
    "/{record_id}/withdraw", tags=["capture"], response={200: IntakeOut, **ERRORS}, summary="Withdraw a submission"
)
def withdraw_record(request: HttpRequest, record_id: UUID, body: ReasonIn) -> IntakeOut:
    review.withdraw(record_id, actor=actor_of(request), reason=body.reason)
    return _intake(request, record_id)


@records.post("/{record_id}/recheck", tags=["capture"], response={200: IntakeOut, **ERRORS}, summary="Check again")
def recheck_record(request: HttpRequest, record_id: UUID) -> IntakeOut:
    review.recheck(record_id, actor=actor_of(request))
    return _intake(request, record_id)


review_router = Router(tags=["capture"])


class IntakePageOut(Schema):
    items: list[IntakeOut]
    total: int
    page: int
    pages: int


class BulkIn(Schema):
    record_ids: list[str]


class BulkOut(Schema):
    record_id: str
    ok: bool
    message: str


@review_router.get("/queue", response={200: IntakePageOut, **ERRORS}, summary="The review queue")
def queue(
    request: HttpRequest,
    state: str = "pending",
    class_code: str = "",
    department: str = "",
    channel: str = "",
    errors_only: bool = False,
    page: int = 1,
    page_size: int = 25,
) -> IntakePageOut:
    found = queries.review_queue(
        actor_of(request),
        state=state,
        class_code=class_code,
        department_code=department,
        channel=channel,
        errors_only=errors_only,
        page=page,
        page_size=page_size,
    )
    return IntakePageOut(
        items=[IntakeOut.of(i, actor_of(request)) for i in found.items],
        total=found.total,
        page=found.page,
        pages=found.pages,
    )


@review_router.get("/returned", response={200: IntakePageOut, **ERRORS}, summary="Returned to my department")
def returned(request: HttpRequest, page: int = 1, page_size: int = 25) -> IntakePageOut:
    found = queries.returned_inbox(actor_of(request), page=page, page_size=page_size)
    return IntakePageOut(
        items=[IntakeOut.of(i, actor_of(request)) for i in found.items],
        total=found.total,
        page=found.page,
        pages=found.pages,
    )


@review_router.post("/accept", response={200: list[BulkOut], **ERRORS}, summary="Accept many records")
def accept_many(request: HttpRequest, body: BulkIn) -> list[BulkOut]:
    """Each record is accepted on its own; those with errors (or already handled) say why."""
    if not body.record_ids or len(body.record_ids) > MAX_BULK:
        raise ValidationError(f"send between 1 and {MAX_BULK} record ids", field="record_ids")
    return [BulkOut(**vars(o)) for o in review.accept_many(body.record_ids, actor=actor_of(request))]
