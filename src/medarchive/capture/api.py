"""Capture on /api/v1/records (a record with its files; its review at the door) and /api/v1/review."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from django.http import HttpRequest
from django.utils.translation import gettext_lazy
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from medarchive.access.queries import audit_metadata_read, describe, get_record
from medarchive.archiving.api import OpenStatus, SecurityLevel
from medarchive.capture import findings, queries, review, services
from medarchive.capture.models import Channel, Intake, ReviewState
from medarchive.capture.review import COMMENT_LIMIT
from medarchive.core.apierrors import load_json_field
from medarchive.core.errors import NotFound, ValidationError
from medarchive.core.routers import records
from medarchive.core.schemas import (
    CODE,
    ERRORS,
    NOT_BLANK,
    ONE_LINE,
    IsoDate,
    Page,
    PageSize,
    RecordOut,
    a_code,
    closed_set,
    multi_line,
    shipped_class_codes,
    shipped_retention_codes,
)
from medarchive.security.api_auth import actor_of
from medarchive.security.models import User

MAX_BULK = 500
MAX_METADATA = 64 * 1024
ReviewStateName = closed_set(tuple(ReviewState.values))
ChannelName = closed_set(tuple(Channel.values))
ClassCode = closed_set(shipped_class_codes())
RetentionOrDefault = closed_set(shipped_retention_codes(), empty=True)


def _metadata(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    value = load_json_field(
        raw,
        field="metadata",
        code="metadata_not_json",
        template=gettext_lazy("The metadata is not valid JSON: %(reason)s at position %(position)s."),
    )
    if not isinstance(value, dict):
        raise ValidationError(
            gettext_lazy('The metadata must be a JSON object, such as {"pages": 2}.'),
            code="metadata_not_an_object",
            field="metadata",
        )
    return value


@records.post("", tags=["capture"], response={201: RecordOut, **ERRORS}, summary="Capture a record with its files")
def create_record(
    request: HttpRequest,
    class_code: ClassCode = Form(..., examples=["WS"]),  # type: ignore[valid-type]
    department: str = Form(..., min_length=1, max_length=32, pattern=CODE, examples=["BGS"]),
    title: str = Form(..., max_length=500, pattern=NOT_BLANK, examples=["关于召开年度工作会议的通知"]),
    date: IsoDate = Form(..., description="YYYY-MM-DD, from 1900 to today", examples=["2025-03-01"]),
    files: list[UploadedFile] = File(..., description="one or more files; the first is the main one"),
    responsible: str = Form("", max_length=200, pattern=ONE_LINE, description="empty: the department's name"),
    doc_number: str = Form("", max_length=100, pattern=ONE_LINE),
    security_level: SecurityLevel = Form("内部"),
    retention: RetentionOrDefault = Form("", description="empty: the class's default"),  # type: ignore[valid-type]
    open_status: OpenStatus = Form("未审核", description="only the archive sets another"),
    organization: str = Form("", max_length=64, pattern=ONE_LINE, description="empty: the department's code"),
    metadata: str = Form(
        "", max_length=MAX_METADATA, description="a JSON object (the record metadata schema)", examples=['{"pages": 2}']
    ),
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
    comment: Annotated[
        str,
        multi_line(COMMENT_LIMIT, required=True, description="what the department must fix", examples=["请补充页数"]),
    ]


class ReasonIn(Schema):
    reason: Annotated[str, multi_line(COMMENT_LIMIT, required=True, examples=["重复提交"])]


class IntakeOut(Schema):
    record_id: str
    electronic_no: str
    title: str
    class_code: str
    department: str
    state: ReviewStateName  # type: ignore[valid-type]
    channel: ChannelName  # type: ignore[valid-type]
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
        raise NotFound(
            gettext_lazy("Record %(record)s has not been submitted to the archive yet, so it has no review."),
            code="record_not_submitted",
            record=record.electronic_no,
        )
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
    record_ids: list[UUID] = Field(min_length=1, max_length=MAX_BULK)


class QueueFilter(Schema):
    state: ReviewStateName = "pending"  # type: ignore[valid-type]
    class_code: closed_set(shipped_class_codes(), empty=True) = ""  # type: ignore[valid-type]
    department: Annotated[str, a_code()] = ""
    channel: closed_set(tuple(Channel.values), empty=True) = ""  # type: ignore[valid-type]
    errors_only: bool = False
    page: Page = 1
    page_size: PageSize = 25


class PageQuery(Schema):
    page: Page = 1
    page_size: PageSize = 25


class BulkOut(Schema):
    record_id: str
    ok: bool
    message: str


@review_router.get("/queue", response={200: IntakePageOut, **ERRORS}, summary="The review queue")
def queue(request: HttpRequest, filters: Query[QueueFilter]) -> IntakePageOut:
    found = queries.review_queue(
        actor_of(request),
        state=filters.state,
        class_code=filters.class_code,
        department_code=filters.department,
        channel=filters.channel,
        errors_only=filters.errors_only,
        page=filters.page,
        page_size=filters.page_size,
    )
    return IntakePageOut(
        items=[IntakeOut.of(i, actor_of(request)) for i in found.items],
        total=found.total,
        page=found.page,
        pages=found.pages,
    )


@review_router.get("/returned", response={200: IntakePageOut, **ERRORS}, summary="Returned to my department")
def returned(request: HttpRequest, paging: Query[PageQuery]) -> IntakePageOut:
    found = queries.returned_inbox(actor_of(request), page=paging.page, page_size=paging.page_size)
    return IntakePageOut(
        items=[IntakeOut.of(i, actor_of(request)) for i in found.items],
        total=found.total,
        page=found.page,
        pages=found.pages,
    )


@review_router.post("/accept", response={200: list[BulkOut], **ERRORS}, summary="Accept many records")
def accept_many(request: HttpRequest, body: BulkIn) -> list[BulkOut]:
    """Each record is accepted on its own; those with errors (or already handled) say why."""
    return [BulkOut(**vars(o)) for o in review.accept_many(body.record_ids, actor=actor_of(request))]
