"""Quality rules at the door (CAP-02, CAP-03, CAP-05): pure functions over what was submitted.

Each rule returns findings; an `error` keeps the record out of the archive until it is fixed,
returned or explicitly overridden; a `warning` asks for a human look. The class's
`intake_rules` (shipped with the classification scheme, versioned with it) say which formats,
sizes and date orders are acceptable and whether a clean record is accepted without review.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

ERROR, WARNING = "error", "warning"
OLDEST_PLAUSIBLE_YEARS = 100


@dataclass(frozen=True)
class Finding:
    rule: str  # mandatory | format | convert | size | date | duplicate | near_duplicate | identifier_reused
    severity: str
    message: str
    field: str = ""
    params: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["params"] = dict(self.params)
        return data


@dataclass(frozen=True)
class FileFacts:
    name: str
    size: int
    mime: str
    format_name: str


def _p(**params: Any) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(v)) for k, v in params.items())


def mandatory(missing: list[str]) -> list[Finding]:
    return [
        Finding("mandatory", ERROR, f"mandatory item {name} is empty", field=name, params=_p(item=name))
        for name in missing
    ]


def formats(rules: dict[str, Any], class_code: str, files: list[FileFacts]) -> list[Finding]:
    allowed, convert = set(rules.get("formats", [])), set(rules.get("convert", []))
    if not allowed:
        return []
    found = []
    for f in files:
        if f.mime in allowed:
            continue
        if f.mime in convert:
            found.append(
                Finding(
                    "convert",
                    WARNING,
                    f"{f.name}: {f.format_name} is not an archival format; it needs an archival rendition",
                    field="files",
                    params=_p(file=f.name, format=f.format_name),
                )
            )
        else:
            found.append(
                Finding(
                    "format",
                    ERROR,
                    f"{f.name}: {f.format_name} ({f.mime}) is not accepted for class {class_code}",
                    field="files",
                    params=_p(file=f.name, format=f.format_name, mime=f.mime, **{"class": class_code}),
                )
            )
    return found


def sizes(rules: dict[str, Any], files: list[FileFacts]) -> list[Finding]:
    limit = rules.get("max_bytes")
    if not limit:
        return []
    return [
        Finding(
            "size",
            ERROR,
            f"{f.name}: {f.size} bytes is more than the class allows ({limit})",
            field="files",
            params=_p(file=f.name, size=f.size, limit=limit),
        )
        for f in files
        if f.size > int(limit)
    ]


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def dates(rules: dict[str, Any], date: dt.date, metadata: dict[str, Any], today: dt.date) -> list[Finding]:
    found = []
    if date.year < today.year - OLDEST_PLAUSIBLE_YEARS:
        found.append(
            Finding("date", WARNING, f"date {date} is more than a century old", field="date", params=_p(date=date))
        )
    for key, value in metadata.items():
        if not key.endswith("_date") or value in (None, ""):
            continue
        parsed = _as_date(value)
        if parsed is None:
            found.append(
                Finding(
                    "date",
                    ERROR,
                    f"metadata.{key} is not a date: {value!r}",
                    field=f"metadata.{key}",
                    params=_p(key=key),
                )
            )
        elif parsed > today:
            found.append(
                Finding(
                    "date",
                    ERROR,
                    f"metadata.{key} {parsed} is in the future",
                    field=f"metadata.{key}",
                    params=_p(key=key, date=parsed),
                )
            )
    for earlier, later in rules.get("date_order", []):
        first, second = _as_date(metadata.get(earlier)), _as_date(metadata.get(later))
        if first and second and second < first:
            found.append(
                Finding(
                    "date",
                    ERROR,
                    f"metadata.{later} {second} is before metadata.{earlier} {first}",
                    field=f"metadata.{later}",
                    params=_p(earlier=earlier, later=later),
                )
            )
    return found


def identifier_reused(key: str, record_no: str, record_id: str) -> Finding:
    """Content kept although its identifier was used before for other content: the sender had
    already been told it was stored (a DICOM Success), so it waits here for a person to decide."""
    return Finding(
        "identifier_reused",
        ERROR,
        f"the identifier {key} was already used for record {record_no} with other content",
        field="idempotency_key",
        params=_p(key=key, record=record_no, record_id=record_id),
    )


def auto_accepts(rules: dict[str, Any], findings: list[Finding]) -> bool:
    return bool(rules.get("auto_accept")) and not findings
