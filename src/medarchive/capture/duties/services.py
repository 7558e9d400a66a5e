"""Department duties: rules the archivist edits, obligations they open, and their fulfilment.

- `record_event` (a discharge from HL7 ADT^A03, a contract signed in the HRP …) opens one obligation
  per matching active event rule, idempotent per rule, department and subject key.
- A record arriving at the door (`intake_changed`, step "received") fulfils the obligations of its own
  department it meets and opens those of record rules it triggers — in the record's own transaction.
- Periodic rules open one obligation per department and period (`open_periodic`, run by the worker).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from medarchive.archiving.models import ArchiveClass, Record, RecordState
from medarchive.capture.duties import rules
from medarchive.capture.duties.models import DutyRule, Obligation
from medarchive.capture.duties.rules import Kind, Period, RuleSpec
from medarchive.core import clock
from medarchive.core.errors import Collector, Conflict, NotAuthenticated, NotFound, PermissionDenied, ValidationError
from medarchive.core.models import Department
from medarchive.core.services import known_department
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import can, require
from medarchive.security.roles import Action, Role, Scope, record_scope

log = logging.getLogger(__name__)

# A record counts as received once it came through the door (a record returned to its department
# for a fix was still delivered on that day) and until it is withdrawn.
RECEIVED = ~Q(state__in=(RecordState.WITHDRAWN, RecordState.DISPOSED)) & (
    ~Q(state=RecordState.DRAFT) | Q(intake__isnull=False)
)
AUDIT_EVENT = "duty:event"
AUDIT_LIST = "duty:obligation:list"
_RULE_FIELDS = (
    "name",
    "kind",
    "expected_class",
    "department",
    "event_kind",
    "trigger_class",
    "trigger_filter",
    "match_key",
    "due_days",
    "period",
    "due_day",
    "min_count",
    "remind_days",
    "description",
)


# --- reference data -----------------------------------------------------------------------------------


def _class_parents() -> dict[str, str | None]:
    rows = ArchiveClass.objects.filter(scheme__active=True).values_list("code", "parent__code")
    return dict(rows)


def classes_under(code: str, parents: dict[str, str | None] | None = None) -> list[str]:
    """The class and every subclass: a duty for BA is met by a BA-ZY record."""
    parents = parents if parents is not None else _class_parents()
    return [c for c in parents if code in rules.class_family(c, parents)] or [code]


def _department(code: str, *, field_name: str = "department") -> Department:
    return known_department(code, field=field_name)


def _known_class(code: str, field_name: str) -> str:
    code = code.strip()
    if not ArchiveClass.objects.filter(scheme__active=True, code=code).exists():
        known = list(ArchiveClass.objects.filter(scheme__active=True).values_list("code", flat=True))
        raise ValidationError(
            _("The class %(class_code)s does not exist; the active scheme has %(known)s."),
            code="unknown_class",
            field=field_name,
            class_code=code,
            known=known,
        )
    return code


def _local_date(moment: dt.datetime) -> dt.date:
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return timezone.localdate(moment)


# --- authorization ------------------------------------------------------------------------------------


def _reaches(actor: User, action: Action, department_id: Any) -> bool:
    """Department-or-wider record scope only: an 'open records' reader sees no duties."""
    if not actor.is_authenticated or record_scope(Role(actor.role), action) not in (Scope.ALL, Scope.DEPARTMENT):
        return False
    return can(actor, action, department_id=department_id)


def may_view(actor: User, department_id: Any) -> bool:
    """Archivists see every department's duties; officers (and other department readers) their own."""
    return can(actor, Action.DUTY_MANAGE) or _reaches(actor, Action.RECORD_LIST, department_id)


def visible_departments(actor: User) -> list[Department]:
    return [d for d in Department.objects.filter(active=True) if may_view(actor, d.pk)]


def may_read_label(actor: User, department_id: Any) -> bool:
    return _reaches(actor, Action.RECORD_PATIENT_READ, department_id)


def _require_view(actor: User, department: Department) -> None:
    if not actor or not actor.is_authenticated or not actor.is_active:
        raise NotAuthenticated(_("Please log in first."), code="not_authenticated")
    if not may_view(actor, department.pk):
        raise PermissionDenied(
            _("You may not see the duties of department %(department)s."),
            code="permission_denied",
            department=department.code,
            action=Action.DUTY_MANAGE.value,
            object_id=department.code,
            actor_id=actor.pk,
        )


# --- events -------------------------------------------------------------------------------------------


def record_event(
    kind: str,
    *,
    department_code: str,
    subject_key: str,
    subject_label: str,
    occurred_at: dt.datetime,
    actor: User,
    source: str = "",
) -> list[Obligation]:
    """A business event opens one obligation per matching active event rule (idempotent per rule,
    department and subject key: a repeated discharge returns the obligations already open). Call it
    with the visit number as `subject_key`; `subject_label` must never carry a patient's name.

    The same key sent for another department opens that department's own obligation: whether some
    other department owes something under this key is never revealed to the caller, and one
    department's event can never take over another's obligation."""
    kind = (kind or "").strip()
    department = _department(department_code)
    require(actor, Action.RECORD_SUBMIT, department_id=department.pk)
    problems = Collector()
    if not rules.EVENT_NAME.match(kind):
        problems.add(
            ValidationError(
                _("The event kind %(value)s must be a short lower-case name such as discharge."),
                code="bad_event_kind",
                field="kind",
                value=kind,
            )
        )
    subject_key = (subject_key or "").strip()
    if not subject_key or len(subject_key) > 100 or not subject_key.isprintable():
        problems.add(
            ValidationError(
                _("The subject key (e.g. the visit number) must be 1–100 printable characters."),
                code="bad_subject_key",
                field="subject_key",
            )
        )
    if not isinstance(occurred_at, dt.datetime):
        problems.add(
            ValidationError(_("The event time must be a date and time."), code="bad_datetime", field="occurred_at")
        )
    problems.raise_if_any()
    day = _local_date(occurred_at)
    matching = DutyRule.objects.filter(active=True, kind=Kind.EVENT, event_kind=kind).filter(
        Q(department__isnull=True) | Q(department=department)
    )
    obligations: list[Obligation] = []
    opened: list[str] = []
    with transaction.atomic():
        for rule in matching.order_by("pk"):
            start = rules.period_start(Period.MONTH, day)
            obligation, created = _open(
                rule,
                department=department,
                subject_key=subject_key,
                subject_label=(subject_label or "")[:200],
                source=source[:200],
                occurred_on=day,
                due_on=rules.due_after(day, rule.due_days),
                period=(start, rules.period_end(Period.MONTH, start)),
                actor=actor,
            )
            obligations.append(obligation)
            if created:
                opened.append(str(obligation.pk))
        audit.record_event(
            AUDIT_EVENT,
            actor=actor,
            object_type="duty",
            object_id=kind,
            details={
                "department": department.code,
                "subject_key": subject_key,
                "source": source[:200],
                "opened": opened,
                "existing": [str(o.pk) for o in obligations if str(o.pk) not in opened],
            },
        )
    return obligations


def _open(
    rule: DutyRule,
    *,
    department: Department,
    subject_key: str,
    subject_label: str,
    source: str,
    occurred_on: dt.date,
    due_on: dt.date,
    period: tuple[dt.date, dt.date],
    actor: User | None,
    required_count: int = 1,
    trigger_record: Record | None = None,
) -> tuple[Obligation, bool]:
    # The department is part of the identity: another department's obligation under the same key is
    # neither returned (it would leak its label) nor reused (its due date would be the caller's).
    existing = Obligation.objects.filter(rule=rule, department=department, subject_key=subject_key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            obligation = Obligation.objects.create(
                rule=rule,
                department=department,
                kind=rule.kind,
                expected_class=rule.expected_class,
                subject_key=subject_key,
                subject_label=subject_label,
                source=source,
                occurred_on=occurred_on,
                period_start=period[0],
                period_end=period[1],
                due_on=due_on,
                required_count=required_count,
                trigger_record=trigger_record,
                opened_by=actor if actor is not None and actor.pk else None,
            )
    except IntegrityError:  # a concurrent identical event won
        return Obligation.objects.get(rule=rule, department=department, subject_key=subject_key), False
    reconcile_one(obligation)
    return obligation, True


# --- fulfilment ---------------------------------------------------------------------------------------


def _candidates(obligation: Obligation, parents: dict[str, str | None]) -> QuerySet[Record]:
    """Received records that may count: only the obligation's own department's (another department's
    record with the same visit number is not what this department owes)."""
    return Record.objects.filter(
        RECEIVED,
        department_id=obligation.department_id,
        archive_class__code__in=classes_under(obligation.expected_class, parents),
    )


def reconcile_one(obligation: Obligation, parents: dict[str, str | None] | None = None) -> bool:
    """Look for records already in the archive that meet the obligation; True when it changed."""
    parents = parents if parents is not None else _class_parents()
    if obligation.kind == Kind.PERIODIC:
        return _recount(obligation, parents)
    if obligation.fulfilled_at is not None:
        return False
    key = obligation.rule.match_key
    if not rules.METADATA_KEY.match(key):  # never build a lookup from an unchecked name
        return False
    found = _candidates(obligation, parents).filter(**{f"metadata__{key}": obligation.subject_key})
    if obligation.trigger_record_id is not None:
        found = found.exclude(pk=obligation.trigger_record_id)
    for record in found.order_by("created_at")[:20]:
        if _meets(obligation, record):
            _fulfil(obligation, record, record.created_at)
            return True
    return False


def _meets(obligation: Obligation, record: Record) -> bool:
    rule = obligation.rule
    if record.pk == obligation.trigger_record_id or record.department_id != obligation.department_id:
        return False
    if rules.match_value(record.metadata, rule.match_key) != obligation.subject_key:
        return False
    # Another copy of the triggering document (a second contract scan) is not the owed file.
    return not (
        rule.kind == Kind.RECORD
        and rule.trigger_filter
        and rules.metadata_matches(rule.trigger_filter, record.metadata)
    )


def _fulfil(obligation: Obligation, record: Record, at: dt.datetime) -> None:
    obligation.fulfilled_at = at
    obligation.record = record
    obligation.received_count = max(obligation.received_count, 1)
    obligation.save(update_fields=["fulfilled_at", "record", "received_count"])


def _recount(obligation: Obligation, parents: dict[str, str | None]) -> bool:
    counted = _candidates(obligation, parents).filter(date__gte=obligation.period_start, date__lt=obligation.period_end)
    count = counted.count()
    before = (obligation.received_count, obligation.fulfilled_at, obligation.record_id)
    obligation.received_count = count
    if count >= obligation.required_count:
        if obligation.fulfilled_at is None:
            nth = counted.order_by("created_at", "pk")[obligation.required_count - 1]
            obligation.fulfilled_at, obligation.record = nth.created_at, nth
    else:
        obligation.fulfilled_at, obligation.record = None, None
    if before == (obligation.received_count, obligation.fulfilled_at, obligation.record_id):
        return False
    obligation.save(update_fields=["received_count", "fulfilled_at", "record"])
    return True


def on_record_received(record: Record) -> list[Obligation]:
    """Inside the record's transaction: fulfil what it meets (its own department's obligations only),
    open what it triggers."""
    parents = _class_parents()
    family = rules.class_family(record.archive_class.code, parents)
    changed = _recheck_fulfilled(record, family, parents)
    values = {v for v in (rules.match_value(record.metadata, k) for k in record.metadata) if v and len(v) <= 100}
    open_ones = (
        Obligation.objects.filter(
            fulfilled_at__isnull=True, expected_class__in=family, department_id=record.department_id
        )
        .filter(
            Q(kind=Kind.PERIODIC, period_start__lte=record.date, period_end__gt=record.date)
            | (~Q(kind=Kind.PERIODIC) & Q(subject_key__in=values))
        )
        .select_related("rule")
    )
    for obligation in open_ones:
        if obligation.kind == Kind.PERIODIC:
            if _recount(obligation, parents):
                changed.append(obligation)
        elif _meets(obligation, record):
            _fulfil(obligation, record, clock.now())
            changed.append(obligation)
    changed.extend(_open_for_record(record, family))
    return changed


def _recheck_fulfilled(record: Record, family: list[str], parents: dict[str, str | None]) -> list[Obligation]:
    """A record returned, edited (visit number, date) and resubmitted may no longer meet what it
    fulfilled: reopen that and look for another record."""
    changed = []
    for obligation in Obligation.objects.filter(record=record).select_related("rule"):
        before = (obligation.received_count, obligation.fulfilled_at, obligation.record_id)
        if obligation.kind == Kind.PERIODIC:
            obligation.fulfilled_at, obligation.record = None, None  # recounted from the period's records
            _recount(obligation, parents)
        elif obligation.expected_class in family and _meets(obligation, record):
            continue
        else:
            obligation.fulfilled_at, obligation.record, obligation.received_count = None, None, 0
            reconcile_one(obligation, parents)
        if (obligation.received_count, obligation.fulfilled_at, obligation.record_id) != before:
            obligation.save(update_fields=["received_count", "fulfilled_at", "record"])
            changed.append(obligation)
    return changed


def _open_for_record(record: Record, family: list[str]) -> list[Obligation]:
    opened = []
    triggered = DutyRule.objects.filter(active=True, kind=Kind.RECORD, trigger_class__in=family).filter(
        Q(department__isnull=True) | Q(department_id=record.department_id)
    )
    for rule in triggered.order_by("pk"):
        if not rules.metadata_matches(rule.trigger_filter or {}, record.metadata):
            continue
        subject = rules.match_value(record.metadata, rule.match_key)
        if subject is None or len(subject) > 100:
            log.info("duty rule %s: record %s has no usable %s", rule.pk, record.electronic_no, rule.match_key)
            continue
        start = rules.period_start(Period.MONTH, record.date)
        obligation, created = _open(
            rule,
            department=record.department,
            subject_key=subject,
            subject_label=f"{rule.match_key} {subject}"[:200],
            source=f"record {record.electronic_no}",
            occurred_on=record.date,
            due_on=rules.due_after(record.date, rule.due_days),
            period=(start, rules.period_end(Period.MONTH, start)),
            actor=record.created_by,
            trigger_record=record,
        )
        if created:
            opened.append(obligation)
    return opened


def on_record_withdrawn(record: Record) -> None:
    """A withdrawn record no longer counts: reopen what it fulfilled and look for another."""
    parents = _class_parents()
    for obligation in Obligation.objects.filter(record=record).select_related("rule"):
        if obligation.kind != Kind.PERIODIC:
            obligation.fulfilled_at, obligation.record, obligation.received_count = None, None, 0
            obligation.save(update_fields=["fulfilled_at", "record", "received_count"])
        reconcile_one(obligation, parents)
    for obligation in Obligation.objects.filter(
        kind=Kind.PERIODIC,
        department_id=record.department_id,
        period_start__lte=record.date,
        period_end__gt=record.date,
    ).exclude(record=record):
        _recount(obligation, parents)


def reconcile(*, limit: int = 5000) -> int:
    """Match open obligations against records that came in by paths that send no signal (a draft
    submitted later, an import before the rule existed). Returns how many changed."""
    parents = _class_parents()
    changed = 0
    for obligation in Obligation.objects.filter(fulfilled_at__isnull=True).select_related("rule")[:limit]:
        with transaction.atomic():
            changed += reconcile_one(obligation, parents)
    return changed


def open_periodic(today: dt.date | None = None) -> int:
    """Open the current period's obligations of every active periodic rule for each department it
    covers, and the previous period's when the rule already existed then (a worker down at the turn
    of the month loses nothing; a new rule does not blame anyone for the past)."""
    today = today or clock.today()
    parents = _class_parents()
    opened = 0
    all_departments = list(Department.objects.filter(active=True))
    for rule in DutyRule.objects.filter(active=True, kind=Kind.PERIODIC).select_related("department"):
        departments = [rule.department] if rule.department is not None else all_departments
        current = rules.period_start(rule.period, today)
        for start in (rules.previous_start(rule.period, current), current):
            end = rules.period_end(rule.period, start)
            if start != current and _local_date(rule.created_at) >= end:
                continue  # the rule did not exist during that period: nobody could have known
            label = rules.period_label(rule.period, start)
            for department in departments:
                with transaction.atomic():
                    obligation, created = _open(
                        rule,
                        department=department,
                        subject_key=f"{department.code}:{label}",
                        subject_label=label,
                        source="",
                        occurred_on=start,
                        due_on=rules.due_for_period(rule.period, start, rule.due_day),
                        period=(start, end),
                        actor=None,
                        required_count=rule.min_count,
                    )
                    if created:
                        opened += 1
                    else:
                        _recount(obligation, parents)
    return opened


# --- rules --------------------------------------------------------------------------------------------


def _spec_of(rule: DutyRule) -> RuleSpec:
    return RuleSpec(
        name=rule.name,
        kind=rule.kind,
        expected_class=rule.expected_class,
        department=rule.department.code if rule.department is not None else "",
        event_kind=rule.event_kind,
        trigger_class=rule.trigger_class,
        trigger_filter=rule.trigger_filter or {},
        match_key=rule.match_key,
        due_days=rule.due_days,
        period=rule.period,
        due_day=rule.due_day,
        min_count=rule.min_count,
        remind_days=rule.remind_days,
        description=rule.description,
    )


def _apply(rule: DutyRule, spec: RuleSpec) -> None:
    """Check the rule as a whole, every problem at once (shape, classes, department, name), then set it."""
    problems = Collector()
    with problems.check():
        rules.check_spec(spec)
    found: dict[str, Any] = {"department": None, "trigger_class": ""}
    if spec.expected_class.strip():
        with problems.check():
            found["expected_class"] = _known_class(spec.expected_class, "expected_class")
    if spec.department.strip():
        with problems.check():
            found["department"] = _department(spec.department)
    if spec.kind == Kind.RECORD and spec.trigger_class.strip():
        with problems.check():
            found["trigger_class"] = _known_class(spec.trigger_class, "trigger_class")
    if spec.name.strip():
        try:
            _name_free(spec.name, rule.pk)
        except Conflict as exc:
            problems.add(exc)
    problems.raise_if_any()
    kind = Kind(spec.kind)
    rule.name = spec.name.strip()
    rule.kind = kind
    rule.expected_class = found["expected_class"]
    rule.department = found["department"]
    rule.event_kind = spec.event_kind.strip() if kind is Kind.EVENT else ""
    rule.trigger_class = found["trigger_class"] if kind is Kind.RECORD else ""
    rule.trigger_filter = dict(spec.trigger_filter or {}) if kind is Kind.RECORD else {}
    rule.match_key = spec.match_key if kind is not Kind.PERIODIC else ""
    rule.due_days = spec.due_days if kind is not Kind.PERIODIC else 0
    rule.period = spec.period if kind is Kind.PERIODIC else ""
    rule.due_day = spec.due_day if kind is Kind.PERIODIC else 0
    rule.min_count = spec.min_count if kind is Kind.PERIODIC else 1
    rule.remind_days = spec.remind_days
    rule.description = spec.description.strip()[:2000]


def _name_free(name: str, rule_pk: Any = None) -> None:
    if DutyRule.objects.filter(name=name.strip()).exclude(pk=rule_pk).exists():
        raise Conflict(
            _("A duty rule named %(name)s already exists; choose another name."),
            code="rule_exists",
            field="name",
            name=name.strip(),
        )


def check_rule(spec: RuleSpec, *, actor: User) -> None:
    """Every problem `add_rule` would find, without adding anything (a form that could not read some
    fields still reports the others)."""
    require(actor, Action.DUTY_MANAGE)
    _apply(DutyRule(created_by=actor), spec)


def add_rule(spec: RuleSpec, *, actor: User) -> DutyRule:
    require(actor, Action.DUTY_MANAGE)
    rule = DutyRule(created_by=actor)
    _apply(rule, spec)
    try:
        with transaction.atomic():
            rule.save()
            _audit_rule(rule, "add", actor)
    except IntegrityError:
        raise Conflict(
            _("A duty rule named %(name)s already exists; choose another name."),
            code="rule_exists",
            field="name",
            name=rule.name,
        ) from None
    return rule


def get_rule(ref: Any) -> DutyRule:
    text = str(ref).strip()
    rule = (
        DutyRule.objects.filter(pk=int(text)).first() if text.isascii() and text.isdigit() and len(text) < 19 else None
    )
    rule = rule or DutyRule.objects.filter(name=text).first()
    if rule is None:
        raise NotFound(
            _("There is no duty rule %(rule)s (give its id or its exact name)."),
            code="rule_not_found",
            field="rule",
            rule=text,
        )
    return rule


def update_rule(ref: Any, changes: dict[str, Any], *, actor: User) -> DutyRule:
    """Change some fields of a rule; obligations already open keep their due dates."""
    require(actor, Action.DUTY_MANAGE)
    unknown = set(changes) - set(_RULE_FIELDS) - {"active"}
    if unknown:
        raise ValidationError(
            _("A duty rule has no items named %(fields)s."),
            code="unknown_field",
            field=sorted(unknown)[0],
            fields=sorted(unknown),
        )
    with transaction.atomic():
        rule = DutyRule.objects.select_for_update().get(pk=get_rule(ref).pk)
        fields = {k: v for k, v in changes.items() if k != "active" and v is not None}
        if "department" in fields and fields["department"] is None:
            fields["department"] = ""
        spec = replace(_spec_of(rule), **fields)
        _apply(rule, spec)
        if "active" in changes and changes["active"] is not None:
            rule.active = bool(changes["active"])
        rule.save()
        _audit_rule(rule, "update", actor, fields=sorted(changes))
    return rule


def remove_rule(ref: Any, *, actor: User) -> None:
    """Delete a rule that never opened an obligation; one with history can only be deactivated."""
    require(actor, Action.DUTY_MANAGE)
    rule = get_rule(ref)
    if rule.obligations.exists():
        raise Conflict(
            _("The duty rule %(rule)s has %(count)s obligations on record; deactivate it instead."),
            code="rule_in_use",
            field="rule",
            rule=rule.name,
            count=rule.obligations.count(),
        )
    with transaction.atomic():
        _audit_rule(rule, "remove", actor)
        rule.delete()


def _audit_rule(rule: DutyRule, op: str, actor: User, **extra: Any) -> None:
    audit.record_event(
        Action.DUTY_MANAGE,
        actor=actor,
        object_type="duty_rule",
        object_id=str(rule.pk),
        details={"op": op, "name": rule.name, "kind": rule.kind, "active": rule.active, **extra},
    )


def list_rules(actor: User) -> list[DutyRule]:
    """Anyone who sees some department's duties may read the rules behind them."""
    if not can(actor, Action.DUTY_MANAGE) and not visible_departments(actor):
        require(actor, Action.DUTY_MANAGE)
    return list(DutyRule.objects.select_related("department").order_by("name"))


def rule_as_dict(rule: DutyRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "kind": rule.kind,
        "active": rule.active,
        "department": rule.department.code if rule.department is not None else None,
        "expected_class": rule.expected_class,
        "event_kind": rule.event_kind,
        "trigger_class": rule.trigger_class,
        "trigger_filter": rule.trigger_filter or {},
        "match_key": rule.match_key,
        "due_days": rule.due_days,
        "period": rule.period,
        "due_day": rule.due_day,
        "min_count": rule.min_count,
        "remind_days": rule.remind_days,
        "description": rule.description,
    }


def default_specs() -> list[RuleSpec]:
    text = resources.files("medarchive.capture.duties").joinpath("data", "default-rules.json").read_text("utf-8")
    return [RuleSpec(**item) for item in json.loads(text)["rules"]]


def install_defaults(rule_model: Any = DutyRule) -> int:
    """Create the shipped rules that are missing (by name). Class codes are not checked here: the
    migration runs before `init` installs the scheme, and an unknown class simply never matches."""
    created = 0
    for spec in default_specs():
        rules.check_spec(spec)
        _, made = rule_model.objects.get_or_create(
            name=spec.name,
            defaults={
                "kind": spec.kind,
                "expected_class": spec.expected_class,
                "event_kind": spec.event_kind,
                "trigger_class": spec.trigger_class,
                "trigger_filter": dict(spec.trigger_filter or {}),
                "match_key": spec.match_key,
                "due_days": spec.due_days,
                "period": spec.period,
                "due_day": spec.due_day,
                "min_count": spec.min_count,
                "remind_days": spec.remind_days,
                "description": spec.description,
            },
        )
        created += made
    return created


# --- completeness -------------------------------------------------------------------------------------


@dataclass
class DepartmentCompleteness:
    department: Department
    counts: rules.Completeness = field(default_factory=rules.Completeness)


@dataclass
class Report:
    start: dt.date
    end: dt.date
    rows: list[DepartmentCompleteness]
    total: rules.Completeness

    def as_dict(self) -> dict[str, Any]:
        return {
            "period_start": self.start.isoformat(),
            "period_end": self.end.isoformat(),
            "departments": [
                {"code": r.department.code, "name": r.department.name, **r.counts.as_dict()} for r in self.rows
            ],
            "total": self.total.as_dict(),
        }


def obligation_status(obligation: Obligation, today: dt.date) -> rules.Status:
    fulfilled = _local_date(obligation.fulfilled_at) if obligation.fulfilled_at else None
    return rules.status(obligation.due_on, fulfilled, today)


def completeness(
    actor: User, start: dt.date, end: dt.date, *, department_code: str = "", today: dt.date | None = None
) -> Report:
    """Expected / received on time / late / missing / pending per visible department for obligations
    counted in [start, end)."""
    today = today or clock.today()
    if end <= start:
        raise ValidationError(_("The period ends before it starts."), code="bad_period", field="period")
    if department_code:
        department = _department(department_code)
        _require_view(actor, department)
        departments = [department]
    else:
        departments = visible_departments(actor)
        if not departments:
            require(actor, Action.DUTY_MANAGE)  # nothing visible: refuse (audited) rather than show empty
    rows = {d.pk: DepartmentCompleteness(d) for d in departments}
    total = rules.Completeness()
    found = Obligation.objects.filter(
        department_id__in=list(rows), period_start__gte=start, period_start__lt=end
    ).values_list("department_id", "due_on", "fulfilled_at")
    for department_id, due_on, fulfilled_at in found.iterator(chunk_size=2000):
        state = rules.status(due_on, _local_date(fulfilled_at) if fulfilled_at else None, today)
        rows[department_id].counts.add(state)
        total.add(state)
    return Report(start, end, list(rows.values()), total)


MASK = "***"
LIST_LIMIT = 500


@dataclass
class ObligationRow:
    """An obligation as one reader may see it: `label` and `key` are masked for a reader without
    patient rights in its department (a visit number identifies a patient). Build it with `row_for`."""

    obligation: Obligation
    status: rules.Status
    label: str
    key: str

    def as_dict(self) -> dict[str, Any]:
        o = self.obligation
        return {
            "id": o.pk,
            "rule": o.rule.name,
            "kind": o.kind,
            "department": o.department.code,
            "expected_class": o.expected_class,
            "subject_key": self.key,
            "subject_label": self.label,
            "occurred_on": o.occurred_on.isoformat(),
            "due_on": o.due_on.isoformat(),
            "status": self.status.value,
            "required_count": o.required_count,
            "received_count": o.received_count,
            "fulfilled_at": o.fulfilled_at.isoformat() if o.fulfilled_at else None,
            "record_id": str(o.record_id) if o.record_id else None,
        }


def row_for(obligation: Obligation, status: rules.Status, *, show_subject: bool) -> ObligationRow:
    """Periodic obligations name a department and a period only; the others a visit or contract
    number and its label, shown only when `show_subject` (see `may_read_label`)."""
    if show_subject or obligation.kind == Kind.PERIODIC:
        return ObligationRow(obligation, status, obligation.subject_label, obligation.subject_key)
    return ObligationRow(obligation, status, MASK, MASK)


def rows_for(actor: User, obligations: list[Obligation], today: dt.date | None = None) -> list[ObligationRow]:
    """Obligations as `actor` may see them (e.g. those an event just opened or found)."""
    today = today or clock.today()
    shown: dict[Any, bool] = {}
    rows = []
    for o in obligations:
        if o.department_id not in shown:
            shown[o.department_id] = may_read_label(actor, o.department_id)
        rows.append(row_for(o, obligation_status(o, today), show_subject=shown[o.department_id]))
    return rows


def list_obligations(
    actor: User,
    department_code: str,
    start: dt.date,
    end: dt.date,
    *,
    status: str = "",
    limit: int = LIST_LIMIT,
    today: dt.date | None = None,
) -> list[ObligationRow]:
    """One department's obligations in a period (audited: the list names visits and contracts)."""
    today = today or clock.today()
    department = _department(department_code)
    _require_view(actor, department)
    wanted = None
    if status:
        try:
            wanted = rules.Status(status)
        except ValueError:
            raise ValidationError(
                _("Unknown status %(value)s; use one of %(choices)s."),
                code="invalid_choice",
                field="status",
                value=status,
                choices=[s.value for s in rules.Status],
            ) from None
    show_label = may_read_label(actor, department.pk)
    found = (
        Obligation.objects.filter(department=department, period_start__gte=start, period_start__lt=end)
        .select_related("rule", "department")
        .order_by("due_on", "pk")
    )
    rows = []
    for obligation in found.iterator(chunk_size=1000):
        state = obligation_status(obligation, today)
        if wanted is not None and state is not wanted:
            continue
        rows.append(row_for(obligation, state, show_subject=show_label))
        if len(rows) >= limit:
            break
    with transaction.atomic():
        audit.record_event(
            AUDIT_LIST,
            actor=actor,
            object_type="department",
            object_id=department.code,
            details={
                "period": f"{start.isoformat()}..{end.isoformat()}",
                "status": status,
                "shown": [r.obligation.pk for r in rows],
            },
        )
    return rows
