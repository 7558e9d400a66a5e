"""Listing, reading and downloading records."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Schema
from pydantic import Field

from medarchive.access import queries
from medarchive.access.services import read_content
from medarchive.archiving.models import RecordState
from medarchive.core.routers import records
from medarchive.core.schemas import (
    ERRORS,
    IsoDate,
    Page,
    PageSize,
    RecordOut,
    Sequence,
    a_code,
    closed_set,
    one_line,
    shipped_class_codes,
)
from medarchive.security.api_auth import actor_of

ClassFilter = closed_set(shipped_class_codes(), empty=True)
StateFilter = closed_set(tuple(RecordState.values), empty=True)


class ListFilter(Schema):
    q: Annotated[
        str,
        one_line(queries.MAX_QUERY, description="words in the title, 文号, 档号, number or 责任者", examples=["通知"]),
    ] = ""
    class_code: ClassFilter = Field("", description="a class and its subclasses", examples=["WS"])  # type: ignore[valid-type]
    department: Annotated[str, a_code(description="a department code", examples=["BGS"])] = ""
    state: StateFilter = ""  # type: ignore[valid-type]
    year: Annotated[int, Field(ge=1, le=9999)] | None = None
    date_from: IsoDate | None = None
    date_to: IsoDate | None = None
    page: Page = 1
    page_size: PageSize = 25


class RecordPage(Schema):
    items: list[RecordOut]
    total: int
    page: int
    pages: int
    page_size: int


@records.get("", tags=["access"], response={200: RecordPage, **ERRORS}, summary="List records you may see")
def list_records(request: HttpRequest, filters: Query[ListFilter]) -> dict[str, Any]:
    flt = queries.RecordFilter(
        q=filters.q,
        class_code=filters.class_code,
        department_code=filters.department,
        state=filters.state,
        year=filters.year,
        date_from=filters.date_from,
        date_to=filters.date_to,
    )
    page = queries.list_records(actor_of(request), flt, page=filters.page, page_size=filters.page_size)
    return {
        "items": [
            RecordOut.from_description(queries.describe(r, actor_of(request), with_files=False)) for r in page.items
        ],
        "total": page.total,
        "page": page.page,
        "pages": page.pages,
        "page_size": page.page_size,
    }


@records.get(
    "/{record_id}", tags=["access"], response={200: RecordOut, **ERRORS}, summary="One record with files and history"
)
def get_record(request: HttpRequest, record_id: UUID) -> RecordOut:
    record = queries.get_record(actor_of(request), record_id)
    queries.audit_metadata_read(actor_of(request), record)
    return RecordOut.from_description(queries.describe(record, actor_of(request), with_history=True))


@records.get(
    "/{record_id}/files/{sequence}/content",
    tags=["access"],
    response={200: None, **ERRORS},
    summary="Download a file",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The decrypted file, as its own media type",
                "headers": {"X-Content-SHA256": {"schema": {"type": "string"}, "description": "SHA-256 of the file"}},
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def download(request: HttpRequest, record_id: UUID, sequence: Sequence) -> StreamingHttpResponse:
    """Streams the decrypted file. Every download is audited as `record:content:read`."""
    content = read_content(actor_of(request), record_id, sequence=sequence)
    response = StreamingHttpResponse(content.chunks, content_type=content.component.mime_type)
    response["Content-Length"] = str(content.component.size)
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(content.component.filename)}"
    response["X-Content-SHA256"] = content.component.sha256
    response["Cache-Control"] = "no-store"
    return response
