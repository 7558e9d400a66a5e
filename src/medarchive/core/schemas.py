"""API schemas shared by several routers."""

from __future__ import annotations

from typing import Any

from ninja import Schema


class Problem(Schema):
    code: str
    message: str
    field: str | None = None
    details: dict[str, Any] | None = None


class FileOut(Schema):
    sequence: int
    role: str
    filename: str
    size: int
    mime_type: str
    format_name: str  # as identified and stored (stable)
    format_label: str = ""  # as people read it, in the request's language
    format_version: str
    sha256: str
    sm3: str
    created: str | None = None
    creating_application: str = ""


class HistoryOut(Schema):
    action: str
    state: str
    at: str
    actor: str
    basis: str
    description: str


class RecordOut(Schema):
    id: str
    electronic_no: str
    archival_code: str | None
    item_number: int | None
    fonds: str
    class_code: str
    class_name: str
    department: str
    department_name: str
    state: str
    title: str
    responsible: str
    date: str
    year: int
    doc_number: str
    security_level: str
    retention: str
    open_status: str
    organization: str
    metadata: dict[str, Any]
    metadata_schema: str
    created_at: str
    archived_at: str | None
    files: list[FileOut] = []
    history: list[HistoryOut] = []

    @classmethod
    def from_description(cls, data: dict[str, Any]) -> RecordOut:
        return cls(**{("class_code" if k == "class" else k): v for k, v in data.items()})


ERRORS: dict[int, type[Problem]] = {
    400: Problem,
    401: Problem,
    403: Problem,
    404: Problem,
    409: Problem,
    413: Problem,
    422: Problem,
}
