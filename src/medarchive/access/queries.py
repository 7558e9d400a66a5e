"""Reading records. Every query starts from `visible_to(actor)`; nothing here writes except the read audit."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from medarchive.archiving import metadata as metadata_schema
from medarchive.archiving.models import ArchiveClass, BusinessEvent, Component, Record
from medarchive.capture.formats import format_label
from medarchive.core import fastsql, refcache
from medarchive.core.errors import Collector, ValidationError
from medarchive.core.ids import not_found, parse_uuid
from medarchive.core.models import Department, Fonds
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import can, require, visible_to
from medarchive.security.roles import Action

T = TypeVar("T", bound=Model)
MAX_PAGE_SIZE = 200
MAX_QUERY = 200


@dataclass(frozen=True)
class RecordFilter:
    q: str = ""
    class_code: str = ""
    department_code: str = ""
    state: str = ""
    year: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


@dataclass(frozen=True)
class Page:
    items: list[Record]
    total: int
    page: int
    pages: int
    page_size: int


def check_page(page: int, page_size: int) -> None:
    """Both paging parameters checked at once (every list uses them)."""
    problems = Collector()
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        problems.add(
            ValidationError(
                _("The page size must be between 1 and %(limit)s."),
                code="bad_page_size",
                field="page_size",
                limit=MAX_PAGE_SIZE,
            )
        )
    if page < 1:
        problems.add(ValidationError(_("The page number must be 1 or more."), code="bad_page", field="page"))
    problems.raise_if_any()


def visible_records(actor: User | None) -> QuerySet[Record]:
    return Record.objects.filter(visible_to(actor)).select_related("archive_class", "department", "fonds")


def list_records(actor: User, flt: RecordFilter, *, page: int = 1, page_size: int = 25) -> Page:
    require(actor, Action.RECORD_LIST)
    problems = Collector()
    with problems.check():
        check_page(page, page_size)
    if any(ord(c) < 32 for c in flt.q) or len(flt.q) > MAX_QUERY:
        problems.add(
            ValidationError(
                _("The search text must be one line of at most %(limit)s characters."),
                code="bad_search_text",
                field="q",
                limit=MAX_QUERY,
            )
        )
    problems.raise_if_any()
    qs = visible_records(actor)
    if flt.q:
        qs = qs.filter(
            Q(title__icontains=flt.q)
            | Q(doc_number__icontains=flt.q)
            | Q(archival_code__icontains=flt.q)
            | Q(electronic_no__icontains=flt.q)
            | Q(responsible__icontains=flt.q)
        )
    if flt.class_code:
        qs = qs.filter(Q(archive_class__code=flt.class_code) | Q(archive_class__parent__code=flt.class_code))
    if flt.department_code:
        qs = qs.filter(department__code=flt.department_code)
    if flt.state:
        qs = qs.filter(state=flt.state)
    if flt.year:
        qs = qs.filter(year=flt.year)
    if flt.date_from:
        qs = qs.filter(date__gte=flt.date_from)
    if flt.date_to:
        qs = qs.filter(date__lte=flt.date_to)
    paginator = Paginator(qs.order_by("-created_at", "pk"), page_size)
    number = min(page, max(paginator.num_pages, 1))
    items = list(paginator.page(number).object_list)
    filters = {k: str(v) for k, v in dataclasses.asdict(flt).items() if v not in ("", None)}
    _audit_listing(actor, items, filters=filters, page=number, total=paginator.count)
    return Page(items=items, total=paginator.count, page=number, pages=paginator.num_pages, page_size=page_size)


def recent_records(actor: User, *, limit: int) -> list[Record]:
    """The newest records the actor may see, for the dashboard; audited like any list."""
    require(actor, Action.RECORD_LIST)
    items = list(visible_records(actor).order_by("-created_at")[:limit])
    _audit_listing(actor, items, filters={"recent": str(limit)})
    return items


def _audit_listing(actor: User, items: list[Record], *, filters: dict[str, str], **extra: int) -> None:
    """A list shows titles: it is a read too (SEC-04). One entry per list, naming what was shown."""
    audit.record_read(
        Action.RECORD_LIST,
        actor=actor,
        object_type="record",
        details={"filters": filters, "shown": [str(r.pk) for r in items], **extra},
    )


audit_listing = _audit_listing  # for other stages' lists (review queue, inbox)


def get_record(actor: User, record_id: Any) -> Record:
    """A record the actor may see, else NotFound (never reveal that an invisible record exists).

    The hot read path (benchmarks/api.py): one prepared lookup by primary key, the list rule
    (`visible_to`) applied to that one row through `can`, its reference rows from the cache."""
    record = fastsql.get(Record, parse_uuid(record_id))
    if record is None or not can(actor, Action.RECORD_LIST, record):
        raise not_found("record", record_id)
    require(actor, Action.RECORD_METADATA_READ, record)
    record.fonds = _reference(Fonds, record.fonds_id)
    record.archive_class = _reference(ArchiveClass, record.archive_class_id)
    record.department = _reference(Department, record.department_id)
    return record


def _reference(model: type[T], pk: Any) -> T:
    found = refcache.row(model, pk)
    if found is None:  # a foreign key the database enforces: only a concurrent delete gets here
        raise not_found(model._meta.model_name or "row", pk)
    return found


def _components(record: Record) -> list[Component]:
    cache = getattr(record, "_prefetched_objects_cache", {})
    if "components" in cache:
        return list(cache["components"])
    return fastsql.select(Component, record_id=record.pk, order_by="sequence")


def _history(record: Record) -> list[dict[str, Any]]:
    events = fastsql.select(BusinessEvent, record_id=record.pk, order_by="at, id")
    names = _usernames({e.actor_id for e in events})
    return [
        {
            "action": e.action,
            "state": e.state,
            "at": e.at.isoformat(),
            "actor": names.get(e.actor_id, ""),
            "basis": e.basis,
            "description": e.description,
        }
        for e in events
    ]


def _usernames(ids: set[Any]) -> dict[Any, str]:
    if not ids:
        return {}
    table = User._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, username FROM {table} WHERE id IN ({', '.join(['%s'] * len(ids))})", list(ids))  # noqa: S608
        return dict(cursor.fetchall())


def describe(record: Record, actor: User, *, with_files: bool = True, with_history: bool = False) -> dict[str, Any]:
    """The record as the actor may see it: patient identifiers masked without the right to them."""
    may_see_patient = can(actor, Action.RECORD_PATIENT_READ, record)
    data: dict[str, Any] = {
        "id": str(record.pk),
        "electronic_no": record.electronic_no,
        "archival_code": record.archival_code,
        "item_number": record.item_number,
        "fonds": record.fonds.code,
        "class": record.archive_class.code,
        "class_name": record.archive_class.name,
        "department": record.department.code,
        "department_name": record.department.name,
        "state": record.state,
        "title": record.title,
        "responsible": record.responsible,
        "date": record.date.isoformat(),
        "year": record.year,
        "doc_number": record.doc_number,
        "security_level": record.security_level,
        "retention": record.retention,
        "open_status": record.open_status,
        "organization": record.organization,
        "metadata": metadata_schema.masked(
            record.metadata, may_see_patient=may_see_patient, name=record.metadata_schema
        ),
        "metadata_schema": record.metadata_schema,
        "created_at": record.created_at.isoformat(),
        "archived_at": record.archived_at.isoformat() if record.archived_at else None,
    }
    if with_files:
        data["files"] = [
            {
                "sequence": c.sequence,
                "role": c.role,
                "filename": c.filename,
                "size": c.size,
                "mime_type": c.mime_type,
                "format_name": c.format_name,
                "format_label": format_label(c.format_name),
                "format_version": c.format_version,
                "sha256": c.sha256,
                "sm3": c.sm3,
                "creating_application": c.creating_application,
                "created": c.created.isoformat() if c.created else None,
            }
            for c in _components(record)
        ]
    if with_history:
        data["history"] = _history(record)
    return data


def audit_metadata_read(actor: User, record: Record) -> None:
    audit.record_read(Action.RECORD_METADATA_READ, actor=actor, object_type="record", object_id=str(record.pk))
