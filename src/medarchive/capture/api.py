"""POST /api/v1/records: a record with its files, as multipart/form-data."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from ninja import File, Form, Status
from ninja.files import UploadedFile

from medarchive.access.queries import describe
from medarchive.capture import services
from medarchive.core.errors import ValidationError
from medarchive.core.routers import records
from medarchive.core.schemas import ERRORS, RecordOut
from medarchive.security.api_auth import actor_of


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
