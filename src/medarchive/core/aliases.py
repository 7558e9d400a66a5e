"""Department aliases: the archivist's table of hospital systems' department codes, and the lookup
every connector uses (`resolve`). The rules (kinds, normalisation, precedence) are in the pure
`core.department_codes`; this module adds the database and the permission checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy

from medarchive.core import department_codes as codes
from medarchive.core.department_codes import Code, Kind, Match
from medarchive.core.errors import Collector, Conflict, NotFound, ValidationError
from medarchive.core.models import Department, DepartmentAlias
from medarchive.core.services import active_department
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action

MAX_NOTE = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_REASONS = {
    "unknown_kind": gettext_lazy("Unknown source kind %(kind)s."),
    "required": gettext_lazy("This field is required."),
    "too_long": gettext_lazy("At most 200 characters."),
    "not_allowed": gettext_lazy("This source kind has no code system: leave it blank."),
    "control": gettext_lazy("Control characters are not allowed."),
}


class UnmappedDepartment(ValidationError):
    """None of the codes a message carried names a department of this archive."""

    code = "unmapped_department"

    def __init__(self, seen: Sequence[Code]) -> None:
        self.seen = list(seen)
        labels = codes.describe(seen)
        if labels:
            message = gettext_lazy(
                "No department of the archive is mapped to %(codes)s. An archivist maps these codes "
                "under Department codes (or: medarchive department alias add)."
            )
        else:
            message = gettext_lazy("The message names no department.")
        super().__init__(message, field="department", codes=labels)


def resolve(seen: Sequence[Code]) -> Match:
    """The department of a message, from its codes in the connector's order of precedence.

    At most one query (the alias rows any of the codes could use). Raises `UnmappedDepartment`
    naming every code seen when none maps to an active department."""
    rows = codes.lookups(seen)
    found: dict[tuple[str, str, str], str] = {}
    if rows:
        where = Q()
        for kind, system, key in rows:
            where |= Q(kind=kind, system=system, key=key)
        for kind, system, key, department in DepartmentAlias.objects.filter(where, department__active=True).values_list(
            "kind", "system", "key", "department__code"
        ):
            found[(kind, system, key)] = department
    # The archive's own codes through the per-process reference cache; the alias rows are read fresh, so a
    # sender told "ask the archivist to map it" succeeds on its very next try.
    own = {c.key for c in seen if c.kind is Kind.OWN and c.key and active_department(c.key) is not None}
    match = codes.choose(seen, found, own)
    if match is None:
        raise UnmappedDepartment(seen)
    return match


# --- the table -------------------------------------------------------------------------------------


def _department(code: str) -> Department:
    if not (code or "").strip():
        raise ValidationError(_REASONS["required"], code="alias_required", field="department")
    clean = code.strip()
    # A code with control characters names no department (and PostgreSQL cannot even compare NUL).
    department = None if _CONTROL.search(clean) else Department.objects.filter(code=clean).first()
    if department is None or not department.active:
        raise ValidationError(
            gettext_lazy("Unknown department %(department)s."),
            code="unknown_department",
            field="department",
            department=code,
        )
    return department


def _checked(kind: str, system: str, key: str, department: str, note: str) -> tuple[Kind, str, str, Department]:
    """Everything wrong with an alias at once (a form shows each problem beside its field)."""
    collector = Collector()
    for field, reason in codes.problems(kind, key, system):
        collector.add(ValidationError(_REASONS[reason], code=f"alias_{reason}", field=field, kind=kind))
    target: Department | None = None
    with collector.check():
        target = _department(department)
    with collector.check():
        if len(note) > MAX_NOTE:
            raise ValidationError(_REASONS["too_long"], code="alias_too_long", field="note")
    collector.raise_if_any()
    assert target is not None
    kind_ = Kind(kind)
    return kind_, codes.normalise(kind_, system), codes.normalise(kind_, key), target


def _taken(kind: Kind, system: str, key: str) -> Conflict:
    return Conflict(
        gettext_lazy("%(key)s is already mapped for this source kind and code system."),
        code="alias_exists",
        field="key",
        key=key,
        kind=kind.value,
        system=system,
    )


def _details(alias: DepartmentAlias, **extra: Any) -> dict[str, Any]:
    return {
        "kind": alias.kind,
        "system": alias.system,
        "key": alias.key,
        "department": alias.department.code,
        **extra,
    }


def add_alias(
    kind: str, key: str, department: str, *, system: str = "", note: str = "", actor: User
) -> DepartmentAlias:
    """Map a hospital code to a department."""
    require(actor, Action.DEPARTMENT_MAP)
    kind_, system, key, target = _checked(kind, system, key, department, note.strip())
    if DepartmentAlias.objects.filter(kind=kind_, system=system, key=key).exists():
        raise _taken(kind_, system, key)
    try:
        with transaction.atomic():
            alias = DepartmentAlias.objects.create(
                kind=kind_, system=system, key=key, department=target, note=note.strip()
            )
            audit.record_event(
                Action.DEPARTMENT_MAP,
                actor=actor,
                object_type="department-alias",
                object_id=str(alias.pk),
                details=_details(alias, op="add"),
            )
    except IntegrityError:  # another archivist added the same one just now
        raise _taken(kind_, system, key) from None
    return alias


def get_alias(alias_id: int | str, *, actor: User) -> DepartmentAlias:
    require(actor, Action.DEPARTMENT_MAP)
    alias = _find(alias_id)
    if alias is None:
        raise NotFound(gettext_lazy("No such department alias."), code="alias_not_found", field="id")
    return alias


def _find(alias_id: int | str) -> DepartmentAlias | None:
    try:
        pk = int(alias_id)
    except (TypeError, ValueError):
        return None
    return DepartmentAlias.objects.select_related("department").filter(pk=pk).first()


def change_alias(alias_id: int | str, changes: dict[str, str], *, actor: User) -> DepartmentAlias:
    """Change any of kind, system, key, department, note; the audit entry keeps the values before."""
    alias = get_alias(alias_id, actor=actor)
    unknown = set(changes) - {"kind", "system", "key", "department", "note"}
    if unknown:
        raise ValidationError(
            gettext_lazy("Unknown field %(name)s."),
            code="unknown_field",
            field=sorted(unknown)[0],
            name=sorted(unknown),
        )
    before = _details(alias)
    merged = {**before, "note": alias.note, **{k: (v or "") for k, v in changes.items()}}
    kind_, system, key, target = _checked(
        merged["kind"], merged["system"], merged["key"], merged["department"], merged["note"].strip()
    )
    clash = DepartmentAlias.objects.filter(kind=kind_, system=system, key=key).exclude(pk=alias.pk)
    if clash.exists():
        raise _taken(kind_, system, key)
    try:
        with transaction.atomic():
            alias.kind, alias.system, alias.key, alias.department = kind_.value, system, key, target
            alias.note = merged["note"].strip()
            alias.save()
            audit.record_event(
                Action.DEPARTMENT_MAP,
                actor=actor,
                object_type="department-alias",
                object_id=str(alias.pk),
                details=_details(alias, op="change", before=before),
            )
    except IntegrityError:
        raise _taken(kind_, system, key) from None
    return alias


def remove_alias(alias_id: int | str, *, actor: User) -> None:
    alias = get_alias(alias_id, actor=actor)
    with transaction.atomic():
        details = _details(alias, op="remove")
        pk = alias.pk
        alias.delete()
        audit.record_event(
            Action.DEPARTMENT_MAP,
            actor=actor,
            object_type="department-alias",
            object_id=str(pk),
            details=details,
        )


def list_aliases(actor: User, *, kind: str = "", department: str = "", search: str = "") -> QuerySet[DepartmentAlias]:
    """The table, filtered: by kind, by department code, by a text in key, system or note."""
    require(actor, Action.DEPARTMENT_MAP)
    rows = DepartmentAlias.objects.select_related("department")
    if any(_CONTROL.search(text) for text in (kind, department, search)):
        return rows.none()  # nothing is stored with control characters (and PostgreSQL refuses NUL)
    if kind:
        rows = rows.filter(kind=kind)
    if department:
        rows = rows.filter(department__code=department.strip())
    text = search.strip()
    if text:
        folded = codes.normalise(Kind.DICOM_INSTITUTION, text)
        rows = rows.filter(
            Q(key__icontains=text) | Q(key__icontains=folded) | Q(system__icontains=text) | Q(note__icontains=text)
        )
    return rows


def as_dict(alias: DepartmentAlias) -> dict[str, Any]:
    return {
        "id": alias.pk,
        "kind": alias.kind,
        "system": alias.system,
        "key": alias.key,
        "department": alias.department.code,
        "department_name": alias.department.name,
        "note": alias.note,
        "created_at": alias.created_at.isoformat(),
        "updated_at": alias.updated_at.isoformat(),
    }


def own(key: str, where: str) -> Code:
    """The archive's own department code, as a connector lists it among the codes it saw."""
    return Code.of(Kind.OWN, key, where=where)


def codes_of(values: Iterable[tuple[Kind, str, str, str]]) -> list[Code]:
    """(kind, key, system, where) tuples → codes, blank keys left out."""
    return [Code.of(kind, key, system, where) for kind, key, system, where in values if (key or "").strip()]
