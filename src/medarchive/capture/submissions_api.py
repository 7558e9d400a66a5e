"""/api/v1/submissions (CAP-07 push) and /api/v1/uploads (resumable uploads of large files).

A submission is one multipart request: `manifest` is a JSON document listing the records
(each with its description and the names of its files), `files` are the uploaded files, and
an optional `register` (归档登记表) declares the item count and total bytes. Files larger
than the resumable threshold are uploaded first through /uploads and referenced by id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy
from ninja import File, Form, Header, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from medarchive.capture import queries, resumable
from medarchive.capture.intake import Item, Register, SubmissionResult, receive, reused_request
from medarchive.capture.models import Channel, Submission
from medarchive.capture.services import Description, IncomingFile
from medarchive.core.apierrors import load_json_field
from medarchive.core.errors import ValidationError
from medarchive.core.schemas import ERRORS, FILENAME, ONE_LINE, Page, PageSize, Problem, StrictInt, closed_set
from medarchive.security.api_auth import actor_of

router = Router(tags=["capture"])
uploads = Router(tags=["capture"])
MAX_ITEMS = 1000
_DESCRIPTION_FIELDS = {
    "class_code",
    "department",
    "title",
    "date",
    "responsible",
    "doc_number",
    "security_level",
    "retention",
    "open_status",
    "organization",
    "metadata",
    "files",
    "key",
    "label",
}


class PageQuery(Schema):
    page: Page = 1
    page_size: PageSize = 25


class ItemOut(Schema):
    label: str
    status: closed_set(("received", "replayed", "rejected"))  # type: ignore[valid-type]  # rejected = 不合格
    record_id: str | None = None
    electronic_no: str | None = None
    review: str | None = None
    errors: int | None = None
    warnings: int | None = None
    problem: Problem | None = None


class SubmissionOut(Schema):
    id: str
    channel: closed_set(tuple(Channel.values))  # type: ignore[valid-type]
    state: closed_set((Submission.RECEIVED, Submission.REJECTED))  # type: ignore[valid-type]
    source: str
    declared_count: int | None
    declared_bytes: int | None
    received_count: int
    received_bytes: int
    failed_count: int
    created_at: str
    items: list[ItemOut]

    @staticmethod
    def of(submission: Submission) -> SubmissionOut:
        report = submission.report or {}
        return SubmissionOut(
            id=str(submission.pk),
            channel=submission.channel,
            state=submission.state,
            source=submission.source,
            declared_count=submission.declared_count,
            declared_bytes=submission.declared_bytes,
            received_count=submission.received_count,
            received_bytes=submission.received_bytes,
            failed_count=submission.failed_count,
            created_at=submission.created_at.isoformat(),
            items=[ItemOut(**item) for item in report.get("items", [])],
        )


def _manifest(raw: str) -> Any:
    return load_json_field(
        raw,
        field="manifest",
        code="manifest_not_json",
        template=gettext_lazy("The manifest is not valid JSON: %(reason)s at position %(position)s."),
    )


def _register(raw: str) -> Register | None:
    if not raw:
        return None
    value = load_json_field(
        raw,
        field="register",
        code="register_not_json",
        template=gettext_lazy("The register is not valid JSON: %(reason)s at position %(position)s."),
    )
    if not isinstance(value, dict) or set(value) - {"item_count", "total_bytes"}:
        raise ValidationError(
            gettext_lazy('The register must be a JSON object {"item_count": N, "total_bytes": N}.'),
            code="bad_register",
            field="register",
        )
    if _not_a_count(value.get("item_count")):
        raise ValidationError(
            gettext_lazy("The register's item count must be a whole number, 0 or more."),
            code="register_not_a_count",
            field="register.item_count",
        )
    if _not_a_count(value.get("total_bytes")):
        raise ValidationError(
            gettext_lazy("The register's total bytes must be a whole number, 0 or more."),
            code="register_not_a_count",
            field="register.total_bytes",
        )
    return Register(item_count=value.get("item_count"), total_bytes=value.get("total_bytes"))


def _not_a_count(value: Any) -> bool:
    return value is not None and (type(value) is not int or value < 0)


def _shown(ref: Any) -> str:
    """A file reference as the sender wrote it (JSON, never a Python repr)."""
    return ref if isinstance(ref, str) else json.dumps(ref, ensure_ascii=False)


def _parts(files: list[UploadedFile]) -> dict[str, UploadedFile]:
    parts: dict[str, UploadedFile] = {}
    for part in files:
        name = getattr(part, "client_name", None) or part.name or ""
        if name in parts:
            raise ValidationError(
                gettext_lazy("The file %(filename)s is uploaded twice: send each file once."),
                code="file_uploaded_twice",
                field="files",
                filename=name,
            )
        parts[name] = part
    return parts


def _files_of(
    index: int, names: Any, parts: dict[str, UploadedFile], *, used: set[str], actor: Any, reserved: list[Any]
) -> list[IncomingFile]:
    where = f"manifest[{index}].files"
    if not isinstance(names, list) or not names:
        raise ValidationError(
            gettext_lazy("Record %(number)s of the manifest lists no files: every record needs at least one file."),
            code="no_files_listed",
            field=where,
            number=index + 1,
        )
    incoming = []
    for ref in names:
        if isinstance(ref, dict) and set(ref) == {"upload"}:
            upload, stream = resumable.take(actor, ref["upload"])
            reserved.append(upload)
            incoming.append(IncomingFile(name=upload.filename, stream=stream))
            continue
        if not isinstance(ref, str) or ref not in parts:
            raise ValidationError(
                gettext_lazy(
                    "Record %(number)s of the manifest names the file %(filename)s, which was not uploaded "
                    "with the submission."
                ),
                code="file_not_uploaded",
                field=where,
                number=index + 1,
                filename=_shown(ref),
            )
        if ref in used:
            raise ValidationError(
                gettext_lazy("The file %(filename)s is listed for two records: a file belongs to one record."),
                code="file_listed_twice",
                field=where,
                filename=ref,
            )
        used.add(ref)
        incoming.append(IncomingFile.from_upload(parts[ref]))
    return incoming


def _description(index: int, entry: dict[str, Any]) -> Description:
    metadata = entry.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationError(
            gettext_lazy("The metadata of record %(number)s of the manifest must be a JSON object."),
            code="metadata_not_an_object",
            field=f"manifest[{index}].metadata",
            number=index + 1,
        )
    return Description(
        class_code=str(entry.get("class_code", "")),
        department_code=str(entry.get("department", "")),
        title=str(entry.get("title", "")),
        date=str(entry.get("date", "")),
        responsible=str(entry.get("responsible", "")),
        doc_number=str(entry.get("doc_number", "")),
        security_level=str(entry.get("security_level", "内部")),
        retention=entry.get("retention") or None,
        open_status=str(entry.get("open_status", "未审核")),
        organization=entry.get("organization") or None,
        metadata=metadata,
    )


def _items(
    request: HttpRequest, manifest: Any, files: list[UploadedFile], key: str | None, reserved: list[Any]
) -> list[Item]:
    """Match the manifest's file names to the uploaded parts; every part must be used exactly once."""
    if not isinstance(manifest, list) or not manifest:
        raise ValidationError(
            gettext_lazy("The manifest must be a JSON array with one object per record, and list at least one record."),
            code="bad_manifest",
            field="manifest",
        )
    if len(manifest) > MAX_ITEMS:
        raise ValidationError(
            gettext_lazy(
                "The manifest lists %(count)s records, but a submission holds at most %(limit)s: "
                "split it into several submissions."
            ),
            code="too_many_records",
            field="manifest",
            count=len(manifest),
            limit=MAX_ITEMS,
        )
    parts, used, items = _parts(files), set[str](), []
    actor = actor_of(request)
    for index, entry in enumerate(manifest):
        where = f"manifest[{index}]"
        if not isinstance(entry, dict):
            raise ValidationError(
                gettext_lazy("Record %(number)s of the manifest must be a JSON object."),
                code="record_not_an_object",
                field=where,
                number=index + 1,
            )
        unknown = sorted(set(entry) - _DESCRIPTION_FIELDS)
        if unknown:
            raise ValidationError(
                gettext_lazy("Record %(number)s of the manifest has fields the archive does not know: %(fields)s."),
                code="unknown_record_field",
                field=f"{where}.{unknown[0]}",
                number=index + 1,
                fields=unknown,
            )
        incoming = _files_of(index, entry.get("files"), parts, used=used, actor=actor, reserved=reserved)
        item_key = entry.get("key") or (f"{key}#{index}" if key else None)
        label = str(entry.get("label") or f"#{index + 1}")
        items.append(Item(_description(index, entry), incoming, key=item_key, label=label))
    unused = sorted(set(parts) - used)
    if unused:
        raise ValidationError(
            gettext_lazy(
                "These uploaded files are not listed in the manifest: %(filenames)s. "
                "List each file under its record, or leave it out of the submission."
            ),
            code="file_not_listed",
            field="files",
            filenames=unused,
        )
    return items


def _request_digest(manifest: str, register: str, source: str, files: list[UploadedFile]) -> str:
    """What makes a retry the same request: the manifest, register and source as sent and each
    part's name and SHA-256 (computed as the part streamed into the encrypted store)."""
    digest = hashlib.sha256()
    for text in (manifest, register, source):
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    for part in files:
        incoming = IncomingFile.from_upload(part)
        name = incoming.name.encode("utf-8")
        content = incoming.staged.sha256 if incoming.staged is not None else f"unstaged:{part.size}"
        digest.update(hashlib.sha256(name).digest() + content.encode("ascii"))
    return digest.hexdigest()


def _discard(files: list[UploadedFile]) -> None:
    for part in files:
        IncomingFile.from_upload(part).discard()


def _channel(request: HttpRequest) -> str:
    """A push with an API token is a system's (接口推送); one from the browser session is the web form's."""
    return Channel.REST if request.headers.get("Authorization", "").lower().startswith("bearer ") else Channel.WEB


@router.post(
    "",
    response={201: SubmissionOut, 207: SubmissionOut, 200: SubmissionOut, **ERRORS},
    summary="Push a submission: many records with their files and an optional register",
)
def create_submission(
    request: HttpRequest,
    manifest: str = Form(..., min_length=1, description="a JSON array of records (see above)"),
    files: File[list[UploadedFile]] = [],  # noqa: B006 - django-ninja reads the default, never mutates it
    register_: str = Form("", alias="register", description='{"item_count": N, "total_bytes": N}'),
    source: str = Form("", max_length=200, pattern=ONE_LINE, description="the sending system (default: you)"),
) -> Status:
    """`manifest`: JSON array, one object per record: `class_code`, `department`, `title`, `date`,
    optional `responsible`, `doc_number`, `security_level`, `retention`, `metadata`, `label`, `key`,
    and `files`: names of parts in `files`, or `{"upload": "<id>"}` for a finished resumable upload.
    `register`: `{"item_count": N, "total_bytes": N}`; a mismatch fails the whole submission (422).
    Send `Idempotency-Key`: a retry answers 200 with the same report and creates nothing twice; the
    same key with a different request (manifest, register, source or files) is 409
    `idempotency_key_reused`, nothing written.
    201 = all received; 207 = some records were rejected (不合格; each item says why)."""
    parts = list(files or [])
    actor = actor_of(request)
    key = request.headers.get("Idempotency-Key") or None
    entries = _manifest(manifest)
    digest = _request_digest(manifest, register_, source, parts) if key else ""
    earlier = Submission.objects.filter(created_by=actor, key=key).first() if key else None
    if earlier is not None and digest and earlier.digest and earlier.digest != digest:
        _discard(parts)  # the same key for another request: refused, never answered with the old report
        raise reused_request(earlier)
    if earlier is not None and isinstance(entries, list) and len(earlier.report.get("items", [])) == len(entries):
        _discard(parts)  # a retry of a submission that was fully received: the same report, nothing redone
        return Status(200, SubmissionOut.of(earlier))
    reserved: list[Any] = []
    try:
        items = _items(request, entries, parts, key, reserved)
        reg = _register(register_)
        result: SubmissionResult = receive(
            items,
            actor=actor,
            channel=_channel(request),
            source=source or actor.username,
            key=key,
            register=reg,
            digest=digest,
        )
    except BaseException:
        _discard(parts)
        for upload in reserved:
            resumable.release(upload)
        raise
    replay = earlier is not None
    for item, outcome in zip(items, result.outcomes, strict=True):
        for incoming in item.files:
            if isinstance(incoming.stream, resumable.UploadReader):
                # A refused record gives its upload back, so the corrected record can use it.
                done = outcome.ok and not outcome.replayed
                (resumable.finish if done else resumable.release)(incoming.stream.upload)
    body = SubmissionOut.of(result.submission)
    if replay:
        return Status(200, body)
    return Status(207 if result.rejected else 201, body)


@router.get("", response={200: list[SubmissionOut], **ERRORS}, summary="Your submissions (the archive sees all)")
def list_submissions(request: HttpRequest, paging: Query[PageQuery]) -> list[SubmissionOut]:
    items, _total, _number, _pages = queries.submissions(
        actor_of(request), page=paging.page, page_size=paging.page_size
    )
    return [SubmissionOut.of(s) for s in items]


@router.get("/{submission_id}", response={200: SubmissionOut, **ERRORS}, summary="A submission and its register")
def get_submission(request: HttpRequest, submission_id: UUID) -> SubmissionOut:
    return SubmissionOut.of(queries.get_submission(actor_of(request), submission_id))


class UploadIn(Schema):
    filename: str = Field(max_length=255, pattern=FILENAME, description="the bare file name", examples=["扫描件.pdf"])
    size: StrictInt = Field(ge=1, le=settings.CONFIG.max_upload_bytes, description="bytes", examples=[1024])


class UploadOut(Schema):
    id: str
    filename: str
    size: int
    offset: int
    complete: bool
    threshold: int


def _upload_out(upload: resumable.Upload) -> UploadOut:
    return UploadOut(
        id=str(upload.pk),
        filename=upload.filename,
        size=upload.size,
        offset=upload.offset,
        complete=upload.complete,
        threshold=settings.CONFIG.resumable_threshold_bytes,
    )


@uploads.post("", response={201: UploadOut, **ERRORS}, summary="Start a resumable upload")
def start_upload(request: HttpRequest, body: UploadIn) -> Status:
    upload = resumable.start(actor=actor_of(request), filename=body.filename, size=body.size)
    return Status(201, _upload_out(upload))


@uploads.get("/{upload_id}", response={200: UploadOut, **ERRORS}, summary="Where to resume an upload")
def get_upload(request: HttpRequest, upload_id: UUID) -> UploadOut:
    return _upload_out(resumable.get(actor_of(request), upload_id))


@uploads.patch(
    "/{upload_id}",
    response={200: UploadOut, **ERRORS},
    summary="Append a piece at Upload-Offset",
    openapi_extra={
        "requestBody": {
            "required": False,  # an empty piece changes nothing and tells where the upload stands
            "content": {
                "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
def append_upload(
    request: HttpRequest,
    upload_id: UUID,
    offset: int = Header(
        ..., alias="Upload-Offset", ge=0, le=settings.CONFIG.max_upload_bytes, description="byte offset"
    ),
) -> UploadOut:
    """Body: the raw bytes of the piece (`Content-Type: application/offset+octet-stream`), appended at
    `Upload-Offset` (which must be the offset the upload stands at: see GET)."""
    length = request.headers.get("Content-Length", "")
    upload = resumable.append(
        actor_of(request),
        upload_id,
        offset=offset,
        body=request,  # type: ignore[arg-type]
        length=int(length) if length.isdigit() else None,
    )
    return _upload_out(upload)
