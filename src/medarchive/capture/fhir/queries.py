"""FHIR reads: search and read of DocumentReference, read of a file as Binary.

Every query starts from `visible_to(actor)` (through `access.queries`); a search by patient
only matches records whose patient identifiers the actor may read, so the search itself
cannot tell a masked reader which records belong to whom. Lists and reads are audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy

from medarchive.access import queries as access
from medarchive.access.services import ContentStream, read_content
from medarchive.archiving.models import Record
from medarchive.capture.fhir import valueset as vs
from medarchive.capture.fhir.outcome import NOT_SUPPORTED, VALUE, FhirError
from medarchive.core.errors import NotFound
from medarchive.core.ids import parse_uuid
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import require, visible_to
from medarchive.security.roles import Action

DEFAULT_COUNT = 20
SEARCH_PARAMS = ("patient", "subject", "identifier", "_count", "_page")
IGNORED_PARAMS = ("_format",)  # JSON is the only format; `_format=json` is accepted and ignored
_PATIENT = re.compile(r"(?:Patient/)?([^/|]{1,64})")
_BINARY_ID = re.compile(r"([0-9a-fA-F-]{36})\.(\d{1,4})")


@dataclass(frozen=True)
class SearchPage:
    records: list[Record]
    total: int
    page: int
    count: int
    params: dict[str, str]  # the search as understood, for the paging links


def _single(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name, [])
    if len(values) > 1:
        raise FhirError.of(400, NOT_SUPPORTED, f"search parameter {name} may be given once")
    value = values[0].strip() if values else ""
    if values and not value:
        raise FhirError.of(400, VALUE, f"search parameter {name} is empty")
    if any(ord(c) < 32 for c in value) or len(value) > 300:
        raise FhirError.of(400, VALUE, f"search parameter {name} must be one line of at most 300 characters")
    return value


def _number(params: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    raw = _single(params, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FhirError.of(400, VALUE, f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise FhirError.of(400, VALUE, f"{name} must be between {low} and {high}")
    return value


def _identifier(value: str) -> Q:
    system, sep, code = value.rpartition("|")
    if not sep:
        return (
            Q(electronic_no=code)
            | Q(archival_code=code)
            | Q(metadata__external_id=code)
            | Q(metadata__external_id__endswith=f"|{code}")
        )
    if system == vs.ELECTRONIC_NO_SYSTEM:
        return Q(electronic_no=code)
    if system == vs.ARCHIVAL_CODE_SYSTEM:
        return Q(archival_code=code)
    if system == vs.RECORD_ID_SYSTEM:
        try:
            return Q(pk=parse_uuid(code.removeprefix("urn:uuid:")))
        except NotFound:
            return Q(pk__in=[])
    return Q(metadata__external_id=value) if system else Q(metadata__external_id=code)


def search(actor: User, params: dict[str, list[str]]) -> SearchPage:
    """GET DocumentReference?patient=…: a page of the records the actor may see, audited."""
    require(actor, Action.RECORD_LIST)
    unknown = sorted(set(params) - set(SEARCH_PARAMS) - set(IGNORED_PARAMS))
    if unknown:
        raise FhirError.of(
            400,
            NOT_SUPPORTED,
            f"unknown search parameter {', '.join(unknown)}; supported: {', '.join(SEARCH_PARAMS)}",
        )
    count = _number(params, "_count", DEFAULT_COUNT, 1, access.MAX_PAGE_SIZE)
    page = _number(params, "_page", 1, 1, 100_000)
    qs: QuerySet[Record] = access.visible_records(actor)
    understood: dict[str, str] = {}
    patient = _single(params, "patient")
    subject = _single(params, "subject")
    if patient and subject and patient != subject:
        raise FhirError.of(400, VALUE, "patient and subject name different patients")
    who = patient or subject
    if who:
        match = _PATIENT.fullmatch(who)
        if match is None or (subject and not who.startswith("Patient/")):
            raise FhirError.of(400, VALUE, "patient must be Patient/<id> or the patient id")
        qs = qs.filter(visible_to(actor, Action.RECORD_PATIENT_READ), metadata__patient_id=match.group(1))
        understood["patient"] = match.group(1)
    identifier = _single(params, "identifier")
    if identifier:
        qs = qs.filter(_identifier(identifier))
        understood["identifier"] = identifier
    total = qs.count()
    start = (page - 1) * count
    records = list(qs.order_by("-created_at", "pk").prefetch_related("components")[start : start + count])
    audit.record_read(
        Action.RECORD_LIST,
        actor=actor,
        object_type="record",
        details={
            "filters": {"channel": "fhir", **understood},
            "shown": [str(r.pk) for r in records],
            "page": page,
            "total": total,
        },
    )
    return SearchPage(records=records, total=total, page=page, count=count, params=understood)


def read(actor: User, record_id: str) -> Record:
    """GET DocumentReference/<id>: NotFound for anything the actor may not see; audited."""
    record = access.get_record(actor, record_id)
    access.audit_metadata_read(actor, record)
    return record


def read_binary(actor: User, binary_id: str) -> ContentStream:
    """GET Binary/<record id>.<file sequence>: the file's bytes, an audited content read."""
    match = _BINARY_ID.fullmatch(binary_id)
    if match is None:
        raise NotFound(gettext_lazy("There is no Binary %(binary)s."), code="binary_not_found", binary=binary_id)
    return read_content(actor, match.group(1), sequence=int(match.group(2)))


def links(base: str, result: SearchPage) -> dict[str, str]:
    def url(page: int) -> str:
        query = urlencode({**result.params, "_count": result.count, "_page": page})
        return f"{base}DocumentReference?{query}"

    last = max(1, -(-result.total // result.count))
    out = {"self": url(result.page), "first": url(1), "last": url(last)}
    if result.page < last:
        out["next"] = url(result.page + 1)
    if result.page > 1:
        out["previous"] = url(min(result.page - 1, last))
    return out
