"""/api/v1/duties: completeness, obligations, rules, business events and notifications."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status
from pydantic import ConfigDict, Field

from medarchive.capture.duties import notify, rules, services
from medarchive.capture.duties.rules import MAX_COUNT, MAX_DUE_DAYS, MAX_REMIND_DAYS, Kind, Period, RuleSpec
from medarchive.core import clock
from medarchive.core.schemas import (
    ERRORS,
    MAX_INT,
    AwareDateTime,
    StrictBool,
    StrictInt,
    a_code,
    absent,
    closed_set,
    multi_line,
    one_line,
)
from medarchive.security.api_auth import actor_of

router = Router()
# A period label the service parses: YYYY, YYYY-MM or YYYY-Qn, years 1900-2999.
PERIOD = r"^(19|2[0-9])[0-9]{2}(-(0[1-9]|1[0-2])|-Q[1-4])?$"
EVENT_NAME = r"^[a-z][a-z0-9_]{0,31}$"
METADATA_KEY = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
StatusName = closed_set(tuple(s.value for s in rules.Status))
KindName = closed_set(tuple(k.value for k in Kind))


def _period(text: str) -> tuple[dt.date, dt.date]:
    return rules.parse_period(text or f"{clock.today():%Y-%m}")


class StatusQuery(Schema):
    period: Annotated[
        str,
        Field(
            pattern=f"{PERIOD}|^$", description="YYYY-MM, YYYY-Qn or YYYY (default: this month)", examples=["2025-03"]
        ),
    ] = ""
    department: Annotated[str, a_code(description="a department code (default: every department you may see)")] = ""


class ObligationQuery(Schema):
    department: Annotated[str, a_code(min_length=1, examples=["BGS"])]
    period: Annotated[str, Field(pattern=f"{PERIOD}|^$", description="YYYY-MM, YYYY-Qn or YYYY")] = ""
    status: closed_set(tuple(s.value for s in rules.Status), empty=True) = ""  # type: ignore[valid-type]


class CountsOut(Schema):
    expected: int
    received: int
    on_time: int
    late: int
    missing: int
    pending: int
    score: float | None = Field(description="share of settled obligations received on time")


class DepartmentCountsOut(CountsOut):
    code: str
    name: str


class CompletenessOut(Schema):
    period_start: dt.date
    period_end: dt.date = Field(description="the first day after the period")
    departments: list[DepartmentCountsOut]
    total: CountsOut


class ObligationOut(Schema):
    id: int
    rule: str
    kind: KindName  # type: ignore[valid-type]
    department: str
    expected_class: str
    subject_key: str = Field(description="*** for a caller without patient rights")
    subject_label: str
    occurred_on: dt.date
    due_on: dt.date
    status: StatusName  # type: ignore[valid-type]
    required_count: int
    received_count: int
    fulfilled_at: str | None
    record_id: str | None


class RuleOut(Schema):
    id: int
    name: str
    kind: KindName  # type: ignore[valid-type]
    active: bool
    department: str | None
    expected_class: str
    event_kind: str
    trigger_class: str
    trigger_filter: dict[str, str | int]
    match_key: str
    due_days: int
    period: str
    due_day: int
    min_count: int
    remind_days: int
    description: str


@router.get("/status", response={200: CompletenessOut, **ERRORS}, summary="Completeness per department and period")
def status(request: HttpRequest, query: Query[StatusQuery]) -> dict[str, Any]:
    start, end = _period(query.period)
    return services.completeness(actor_of(request), start, end, department_code=query.department).as_dict()


@router.get("/obligations", response={200: list[ObligationOut], **ERRORS}, summary="A department's obligations")
def obligations(request: HttpRequest, query: Query[ObligationQuery]) -> list[dict[str, Any]]:
    start, end = _period(query.period)
    rows = services.list_obligations(actor_of(request), query.department, start, end, status=query.status)
    return [row.as_dict() for row in rows]


RuleName = Annotated[str, one_line(100, required=True)]
ClassRef = Annotated[str, a_code(min_length=1, description="a class code such as BA-ZY")]
TriggerFilter = dict[Annotated[str, Field(max_length=64, pattern=METADATA_KEY)], str | StrictInt]
DueDays = Annotated[StrictInt, Field(ge=0, le=MAX_DUE_DAYS, description=f"1-{MAX_DUE_DAYS} for event and record rules")]
DueDay = Annotated[StrictInt, Field(ge=0, le=28, description="1-28 for periodic rules")]
MinCount = Annotated[StrictInt, Field(ge=1, le=MAX_COUNT)]
RemindDays = Annotated[StrictInt, Field(ge=0, le=MAX_REMIND_DAYS)]
EventKind = Annotated[str, Field(pattern=f"{EVENT_NAME}|^$", description="for event rules, e.g. discharge")]
MatchKey = Annotated[str, Field(max_length=64, pattern=f"{METADATA_KEY}|^$", description="e.g. visit_number")]
PeriodName = closed_set(tuple(p.value for p in Period), empty=True)
RuleRef = Annotated[str, Path(max_length=100, description="the rule's id or exact name")]


class RuleIn(Schema):
    """Which fields matter depends on `kind`: event (event_kind, match_key, due_days), record
    (trigger_class, trigger_filter, match_key, due_days) or periodic (period, due_day, min_count)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "每月院务会议纪要",
                    "kind": "periodic",
                    "expected_class": "WS",
                    "department": "BGS",
                    "period": "month",
                    "due_day": 10,
                    "min_count": 1,
                }
            ]
        }
    )

    name: RuleName
    kind: KindName  # type: ignore[valid-type]
    expected_class: ClassRef
    department: Annotated[str, a_code(description="empty: every department")] = ""
    event_kind: EventKind = ""
    trigger_class: Annotated[str, a_code()] = ""
    trigger_filter: TriggerFilter = {}
    match_key: MatchKey = ""
    due_days: DueDays = 0
    period: PeriodName = ""  # type: ignore[valid-type]
    due_day: DueDay = 0
    min_count: MinCount = 1
    remind_days: RemindDays = 3
    description: Annotated[str, multi_line(2000)] = ""


class RulePatch(Schema):
    """Only the fields sent change; a field sent as null is refused."""

    name: RuleName = absent()
    active: StrictBool = absent()
    expected_class: ClassRef = absent()
    department: Annotated[str, a_code()] = absent()
    event_kind: EventKind = absent()
    trigger_class: Annotated[str, a_code()] = absent()
    trigger_filter: TriggerFilter = absent()
    match_key: MatchKey = absent()
    due_days: DueDays = absent()
    period: PeriodName = absent()  # type: ignore[valid-type]
    due_day: DueDay = absent()
    min_count: MinCount = absent()
    remind_days: RemindDays = absent()
    description: Annotated[str, multi_line(2000)] = absent()


@router.get("/rules", response={200: list[RuleOut], **ERRORS}, summary="Duty rules")
def rule_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [services.rule_as_dict(r) for r in services.list_rules(actor_of(request))]


@router.post("/rules", response={201: RuleOut, **ERRORS}, summary="Add a duty rule (archivist)")
def rule_add(request: HttpRequest, body: RuleIn) -> Status:
    rule = services.add_rule(RuleSpec(**body.dict()), actor=actor_of(request))
    return Status(201, services.rule_as_dict(rule))


@router.patch("/rules/{ref}", response={200: RuleOut, **ERRORS}, summary="Change a duty rule (archivist)")
def rule_change(request: HttpRequest, ref: RuleRef, body: RulePatch) -> dict[str, Any]:
    changes = body.dict(exclude_unset=True)
    return services.rule_as_dict(services.update_rule(ref, changes, actor=actor_of(request)))


@router.delete("/rules/{ref}", response={204: None, **ERRORS}, summary="Remove a rule that never opened an obligation")
def rule_remove(request: HttpRequest, ref: RuleRef) -> Status:
    services.remove_rule(ref, actor=actor_of(request))
    return Status(204, None)


class EventIn(Schema):
    kind: Annotated[
        str, Field(pattern=EVENT_NAME, description="e.g. discharge, contract_signed", examples=["discharge"])
    ]
    department: Annotated[str, a_code(min_length=1, examples=["BGS"])]
    subject_key: Annotated[
        str,
        one_line(
            100,
            required=True,
            description="what the owed record will carry: a visit or contract number",
            examples=["ZY2025-0001"],
        ),
    ]
    subject_label: Annotated[str, one_line(200, description="a short label; never a patient's name")] = ""
    occurred_at: AwareDateTime = Field(description="with its offset", examples=["2025-03-01T08:00:00+08:00"])
    source: Annotated[str, one_line(200)] = ""


@router.post("/events", response={200: list[ObligationOut], **ERRORS}, summary="Record a business event")
def event(request: HttpRequest, body: EventIn) -> list[dict[str, Any]]:
    """Opens one obligation per matching active event rule of the department; a repeat returns the
    same obligations. The same key sent for another department opens that department's own
    obligations and reveals nothing of others'. Visit number and label are masked (`***`) for a
    caller without patient rights (e.g. a token scoped to record:submit only)."""
    actor = actor_of(request)
    found = services.record_event(
        body.kind,
        department_code=body.department,
        subject_key=body.subject_key,
        subject_label=body.subject_label,
        occurred_at=body.occurred_at,
        actor=actor,
        source=body.source,
    )
    return [row.as_dict() for row in services.rows_for(actor, found)]


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    url: str
    created_at: dt.datetime
    read_at: dt.datetime | None


@router.get("/notifications", response={200: list[NotificationOut], **ERRORS}, summary="Your notifications")
def notifications(request: HttpRequest) -> list[Any]:
    return notify.notifications_of(actor_of(request))


class ReadIn(Schema):
    id: StrictInt = absent(ge=1, le=MAX_INT, description="one notification; omit to mark all read")


class MarkedOut(Schema):
    marked: int


@router.post("/notifications/read", response={200: MarkedOut, **ERRORS}, summary="Mark notifications read")
def notifications_read(request: HttpRequest, body: ReadIn) -> dict[str, int]:
    return {"marked": notify.mark_read(actor_of(request), body.id)}
