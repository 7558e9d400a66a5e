"""API schemas shared by several routers, and the constrained types the OpenAPI document declares.

What the document declares the server enforces (pydantic validates every parameter and body
against the same types), so a client reads the limits from the document instead of learning
them from refusals: lengths, patterns for one-line text and codes, enums for closed sets.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BeforeValidator, Field, Strict, WithJsonSchema

# One line of text: no control characters (the services refuse them; PostgreSQL refuses NUL).
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
# The same, with at least one character that is not white space (the services strip, then require).
NOT_BLANK = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
# Text that may span lines (comments, descriptions): tabs and line breaks, no other control characters.
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
TEXT_NOT_BLANK = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# A code (department, class): letters, digits, _ and - only.
CODE = r"^[\w-]*$"
# A bare file name: no separators, no control characters, no space at either end (the rest: filenames.py).
FILENAME = r"^[^\x00-\x1f\x7f-\x9f/\\\s]([^\x00-\x1f\x7f-\x9f/\\]*[^\x00-\x1f\x7f-\x9f/\\\s])?$"
MAX_PAGE_SIZE = 200
MAX_INT = 2**31 - 1  # every integer parameter fits a database integer


def one_line(max_length: int, *, required: bool = False, **extra: Any) -> Any:
    """Constraints of a one-line text of at most `max_length` characters (`required`: not blank)."""
    pattern = NOT_BLANK if required else ONE_LINE
    return Field(max_length=max_length, min_length=1 if required else 0, pattern=pattern, **extra)


def multi_line(max_length: int, *, required: bool = False, **extra: Any) -> Any:
    pattern = TEXT_NOT_BLANK if required else TEXT
    return Field(max_length=max_length, min_length=1 if required else 0, pattern=pattern, **extra)


def absent(**extra: Any) -> Any:
    """The default of an optional field that, when sent, must hold a value (null is refused)."""
    return Field(None, **extra)


def a_code(max_length: int = 32, **extra: Any) -> Any:
    return Field(max_length=max_length, pattern=CODE, **extra)


def _iso_date(value: Any) -> Any:
    """Only YYYY-MM-DD: pydantic alone would read `0` as 1970-01-01."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise ValueError("must be a date YYYY-MM-DD")


def _aware_datetime(value: Any) -> Any:
    """An ISO 8601 date and time with its offset, as text (pydantic alone would read a number as one)."""
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    raise ValueError("must be a date and time with its offset, e.g. 2025-03-01T08:00:00+08:00")


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    return value  # 3.0 is an integer in JSON; 3.5 is refused by the int that follows


# In JSON bodies numbers and booleans are what they say: `true` is not 1 and "5" is not 5.
StrictInt = Annotated[int, BeforeValidator(_json_integer)]
StrictBool = Annotated[bool, Strict()]
AwareDateTime = Annotated[
    dt.datetime, BeforeValidator(_aware_datetime), WithJsonSchema({"type": "string", "format": "date-time"})
]
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})]
Page = Annotated[int, Field(ge=1, le=MAX_INT, description="1 is the first page; past the last page, the last one")]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]
Sequence = Annotated[int, Field(ge=1, le=MAX_INT)]


@cache
def _shipped(name: str) -> Any:
    return json.loads((Path(__file__).resolve().parent.parent / "archiving" / "data" / name).read_text("utf-8"))


def shipped_class_codes() -> tuple[str, ...]:
    """The classes of the shipped classification scheme: the closed set a record's class comes from."""
    return tuple(c["code"] for c in _shipped("classification-v1.json")["classes"])


def shipped_retention_codes() -> tuple[str, ...]:
    return tuple(r["code"] for r in _shipped("retention-v1.json")["rules"])


def closed_set(values: tuple[str, ...], *, empty: bool = False) -> Any:
    """A string from `values` (or empty, meaning "any", when `empty`)."""
    options = (*values, "") if empty else values
    return Literal[options]


class ProblemEntry(Schema):
    """One problem: a stable `code`, a `message` in the caller's language, the `field` it names ("" for none)."""

    code: str = Field(examples=["validation_error"])
    message: str = Field(examples=["title: String should have at least 1 character"])
    field: str = Field(examples=["title"])
    details: dict[str, Any] | None = Field(None, description="the values the message names, when there are any")


class Problem(ProblemEntry):
    """The one error body of the API (`MedarchiveError.as_problem()`): every 4xx and 5xx answers with it."""

    errors: list[ProblemEntry] | None = Field(None, description="every problem, when one input has several")


class HealthOut(Schema):
    status: str = Field(examples=["ok"])
    version: str
    durable: bool = Field(description="false when the database could lose acknowledged commits in a power cut")


class ReadyOut(Schema):
    status: str = Field(examples=["ready"])
    checks: dict[str, str] = Field(
        examples=[{"database": "ok", "store": "ok", "audit_sealer": "ok", "jobs": "idle"}],
        description="per check: ok, or unreachable | not_writable | lagging | idle; `jobs` never makes it not ready",
    )


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
    500: Problem,
}
"""The error answers every operation declares: the same `Problem` body for each."""
