"""Record lifecycle after capture: submit → accept → archive (档号) → hold. One function per change.

Every function checks permission first, changes state inside one transaction together
with its audit entry and its 业务实体 row (CAP-06), and refuses illegal transitions.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from medarchive.archiving import metadata as metadata_schema
from medarchive.archiving.archival_code import ArchivalCodePattern
from medarchive.archiving.models import (
    BUSINESS_STATES,
    ArchiveClass,
    BusinessEvent,
    ClassificationScheme,
    Record,
    RecordState,
    RetentionRule,
    RetentionTable,
)
from medarchive.core import clock, fastsql, refcache
from medarchive.core.errors import Conflict, ValidationError
from medarchive.core.ids import not_found, parse_uuid
from medarchive.core.labels import Listed, label, with_labels
from medarchive.core.models import Fonds
from medarchive.core.sequences import next_value
from medarchive.core.services import ensure_fonds
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import require, visible_to
from medarchive.security.roles import ACTION_LABELS, Action

HOLD_REASON_LIMIT = 200  # BusinessEvent.basis
_TRANSITIONS: dict[Action, tuple[set[str], RecordState, str]] = {
    Action.RECORD_SUBMIT: ({RecordState.DRAFT}, RecordState.SUBMITTED, "提交"),
    Action.RECORD_ACCEPT: ({RecordState.SUBMITTED}, RecordState.ACCEPTED, "接收"),
    Action.RECORD_ARCHIVE: ({RecordState.ACCEPTED}, RecordState.ARCHIVED, "归档"),
    Action.RECORD_HOLD: ({RecordState.ARCHIVED}, RecordState.ON_HOLD, "冻结"),
}


def _load(name: str) -> dict[str, Any]:
    text = resources.files("medarchive.archiving").joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def install_defaults(fonds: Fonds | None = None) -> tuple[ClassificationScheme, RetentionTable]:
    """Install the shipped classification scheme and retention table (idempotent)."""
    fonds = fonds or ensure_fonds()
    scheme_data, table_data = _load("classification-v1.json"), _load("retention-v1.json")
    with transaction.atomic():
        scheme, created = ClassificationScheme.objects.get_or_create(
            fonds=fonds, version=scheme_data["version"], defaults={"name": scheme_data["name"]}
        )
        if created:
            by_code: dict[str, ArchiveClass] = {}
            for item in scheme_data["classes"]:
                by_code[item["code"]] = ArchiveClass.objects.create(
                    scheme=scheme,
                    code=item["code"],
                    name=item["name"],
                    parent=by_code.get(item.get("parent", "")),
                    aggregation=item["aggregation"],
                    default_retention=item["default_retention"],
                    required_fields=item.get("required_fields", []),
                    intake_rules=item.get("intake", {}),
                )
        if not ClassificationScheme.objects.filter(fonds=fonds, active=True).exists():
            ClassificationScheme.objects.filter(pk=scheme.pk).update(active=True)
        table, created = RetentionTable.objects.get_or_create(
            fonds=fonds, version=table_data["version"], defaults={"name": table_data["name"]}
        )
        if created:
            RetentionRule.objects.bulk_create(
                RetentionRule(table=table, code=r["code"], name=r["name"], years=r["years"], trigger=r["trigger"])
                for r in table_data["rules"]
            )
        if not RetentionTable.objects.filter(fonds=fonds, active=True).exists():
            RetentionTable.objects.filter(pk=table.pk).update(active=True)
    refcache.clear()  # update() sends no signals
    return scheme, table


def active_class(code: str, fonds: Fonds | None = None) -> ArchiveClass:
    fonds = fonds or ensure_fonds()
    found = refcache.cached(
        ("class", fonds.pk, code),
        lambda: ArchiveClass.objects.filter(scheme__fonds=fonds, scheme__active=True, code=code).first(),
    )
    if found is None:
        if not (code or "").strip():
            raise ValidationError(
                with_labels(_("%(label)s is required."), label=label("class_code")), code="required", field="class"
            )
        known = list(
            ArchiveClass.objects.filter(scheme__fonds=fonds, scheme__active=True).values_list("code", flat=True)
        )
        if not known:
            raise ValidationError(
                _("The class %(class_code)s does not exist: no classification scheme is installed (run init)."),
                code="unknown_class",
                field="class",
                class_code=code,
            )
        raise ValidationError(
            _("The class %(class_code)s does not exist; the active scheme has %(known)s."),
            code="unknown_class",
            field="class",
            class_code=code,
            known=known,
        )
    return found


def active_retention(code: str, fonds: Fonds | None = None) -> RetentionRule:
    fonds = fonds or ensure_fonds()
    found = refcache.cached(
        ("retention", fonds.pk, code),
        lambda: RetentionRule.objects.filter(table__fonds=fonds, table__active=True, code=code).first(),
    )
    if found is None:
        known = list(
            RetentionRule.objects.filter(table__fonds=fonds, table__active=True).values_list("code", flat=True)
        )
        raise ValidationError(
            _("The retention period %(retention)s does not exist; the active table has %(known)s."),
            code="unknown_retention",
            field="retention",
            retention=code,
            known=known,
        )
    return found


def note_business_event(
    record: Record, *, actor: User, action: str, state: str, basis: str = "", description: str = ""
) -> BusinessEvent:
    """业务实体 row (CAP-06); call inside the transaction of the change it describes."""
    event = BusinessEvent(
        record=record, actor=actor, action=action, state=state, at=clock.now(), basis=basis, description=description
    )
    fastsql.insert(event)
    return event


def record_step(
    record: Record,
    action: Action,
    *,
    actor: User,
    verb: str,
    basis: str = "",
    description: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """One business step on a record, in the caller's transaction: its 业务实体 row (CAP-06, state
    as the record now stands) and its audit entry (SEC-04)."""
    note_business_event(
        record,
        actor=actor,
        action=verb,
        state=BUSINESS_STATES[RecordState(record.state)],
        basis=basis,
        description=description,
    )
    audit.record_event(action, actor=actor, object_type="record", object_id=str(record.pk), details=details or {})


def missing_mandatory(record: Record) -> list[str]:
    """DA/T 46 必选 items and the class's own required metadata that are still empty (CAP-02)."""
    missing = [
        label
        for label, value in (
            ("title", record.title),
            ("responsible", record.responsible),
            ("date", record.date),
            ("security_level", record.security_level),
            ("retention", record.retention),
        )
        if not value
    ]
    missing += [f"metadata.{key}" for key in record.archive_class.required_fields if not record.metadata.get(key)]
    if not record.components.exists():
        missing.append("files")
    return missing


def locked_record(record_id: Any, *, actor: User, action: Action) -> Record:
    """The record, locked for change, if the actor may see it (else NotFound: existence is not
    revealed) and may take `action` on it (else PermissionDenied). Call inside a transaction."""
    record = (
        Record.objects.select_for_update(of=("self",))
        .select_related("archive_class", "fonds", "department")
        .filter(visible_to(actor, Action.RECORD_METADATA_READ), pk=parse_uuid(record_id))
        .first()
    )
    if record is None:
        raise not_found("record", record_id)
    require(actor, action, record)
    return record


def _transition(record_id: Any, action: Action, *, actor: User, basis: str = "") -> Record:
    sources, target, verb = _TRANSITIONS[action]
    with transaction.atomic():
        record = locked_record(record_id, actor=actor, action=action)
        if record.state not in sources:
            raise wrong_state(record, action, sources)
        details: dict[str, Any] = {"from": record.state, "to": target.value}
        if target is RecordState.ARCHIVED:
            _assign_archival_code(record)
            details["archival_code"] = record.archival_code
        record.state = target
        record.save()
        record_step(record, action, actor=actor, verb=verb, basis=basis, details=details)
    return record


def wrong_state(record: Record, action: Action, needed: set[str]) -> Conflict:
    """The refusal of a step the record's state does not allow (the states named as people read them)."""
    return Conflict(
        with_labels(
            _("Record %(record)s is “%(state)s”; to %(action)s it must be “%(needed)s”."),
            state=state_label(record.state),
            action=ACTION_LABELS[action],
            needed=Listed([state_label(s) for s in sorted(needed)], alternatives=True),
        ),
        code="wrong_state",
        field="state",
        record=record.electronic_no,
        state=str(record.state),
        needed=sorted(needed),
    )


def state_label(state: str) -> Any:
    try:
        return RecordState(state).label
    except ValueError:
        return state


def missing_labels(missing: list[str]) -> list[Any]:
    """Labels of the items `missing_mandatory` names (metadata keys keep their schema title)."""
    titles = metadata_schema.schema()["properties"]
    return [
        titles.get(m.removeprefix("metadata."), {}).get("title", m) if m.startswith("metadata.") else label(m)
        for m in missing
    ]


def _assign_archival_code(record: Record) -> None:
    missing = missing_mandatory(record)
    if missing:
        raise ValidationError(
            with_labels(
                _("Record %(record)s cannot be archived: %(missing)s still empty."),
                missing=Listed(missing_labels(missing)),
            ),
            code="missing_mandatory",
            field=missing[0],
            record=record.electronic_no,
            missing=missing,
        )
    pattern = ArchivalCodePattern.parse(settings.CONFIG.archival_code_pattern)
    values = {
        "fonds": record.fonds.code,
        "class": record.archive_class.code,
        "year": str(record.year),
        "retention": record.retention,
        "org": record.organization,
    }
    series = pattern.series(**values)
    record.item_number = next_value(f"archival-code:{series}")
    record.archival_code = pattern.render(record.item_number, **values)
    record.archived_at = clock.now()


def submit_record(record_id: Any, *, actor: User) -> Record:
    return _transition(record_id, Action.RECORD_SUBMIT, actor=actor)


def accept_record(record_id: Any, *, actor: User) -> Record:
    return _transition(record_id, Action.RECORD_ACCEPT, actor=actor)


def archive_record(record_id: Any, *, actor: User) -> Record:
    return _transition(record_id, Action.RECORD_ARCHIVE, actor=actor)


def hold_record(record_id: Any, *, actor: User, reason: str) -> Record:
    reason = reason.strip()
    if not reason:
        raise ValidationError(_("A hold needs a reason."), code="required", field="reason")
    if any(ord(c) < 32 for c in reason):
        raise ValidationError(
            _("The reason must be one line, without control characters."), code="control_characters", field="reason"
        )
    if len(reason) > HOLD_REASON_LIMIT:
        raise ValidationError(
            _("The reason is longer than %(limit)s characters."),
            code="too_long",
            field="reason",
            limit=HOLD_REASON_LIMIT,
        )
    return _transition(record_id, Action.RECORD_HOLD, actor=actor, basis=reason)
