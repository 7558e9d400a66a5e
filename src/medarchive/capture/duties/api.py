"""/api/v1/duties: completeness, obligations, rules, business events and notifications."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from medarchive.capture.duties import notify, rules, services
from medarchive.capture.duties.rules import RuleSpec
from medarchive.core import clock
from medarchive.core.schemas import ERRORS
from medarchive.security.api_auth import actor_of

router = Router()


def _period(text: str) -> tuple[dt.date, dt.date]:
    return rules.parse_period(text or f"{clock.today():%Y-%m}")


class StatusQuery(Schema):
    period: str = Field("", description="YYYY-MM, YYYY-Qn or YYYY (default: this month)")
    department: str = Field("", description="a department code (default: every department you may see)")


class ObligationQuery(Schema):
    department: str
    period: str = ""
    status: str = Field("", description="on_time, late, missing or pending")


@router.get("/status", response={200: dict[str, Any], **ERRORS}, summary="Completeness per department and period")
def status(request: HttpRequest, query: Query[StatusQuery]) -> dict[str, Any]:
    start, end = _period(query.period)
    return services.completeness(actor_of(request), start, end, department_code=query.department).as_dict()


@router.get("/obligations", response={200: list[dict[str, Any]], **ERRORS}, summary="A department's obligations")
def obligations(request: HttpRequest, query: Query[ObligationQuery]) -> list[dict[str, Any]]:
    start, end = _period(query.period)
    rows = services.list_obligations(actor_of(request), query.department, start, end, status=query.status)
    return [row.as_dict() for row in rows]


class RuleIn(Schema):
    name: str
    kind: str = Field(description="event, record or periodic")
    expected_class: str
    department: str = ""
    event_kind: str = ""
    trigger_class: str = ""
    trigger_filter: dict[str, str | int] = {}
    match_key: str = ""
    due_days: int = 0
    period: str = ""
    due_day: int = 0
    min_count: int = 1
    remind_days: int = 3
    description: str = ""


class RulePatch(Schema):
    name: str | None = None
    active: bool | None = None
    expected_class: str | None = None
    department: str | None = None
    event_kind: str | None = None
    trigger_class: str | None = None
    trigger_filter: dict[str, str | int] | None = None
    match_key: str | None = None
    due_days: int | None = None
    period: str | None = None
    due_day: int | None = None
    min_count: int | None = None
    remind_days: int | None = None
    description: str | None = None


@router.get("/rules", response={200: list[dict[str, Any]], **ERRORS}, summary="Duty rules")
def rule_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [services.rule_as_dict(r) for r in services.list_rules(actor_of(request))]


@router.post("/rules", response={201: dict[str, Any], **ERRORS}, summary="Add a duty rule (archivist)")
def rule_add(request: HttpRequest, body: RuleIn) -> Status:
    rule = services.add_rule(RuleSpec(**body.dict()), actor=actor_of(request))
    return Status(201, services.rule_as_dict(rule))


@router.patch("/rules/{ref}", response={200: dict[str, Any], **ERRORS}, summary="Change a duty rule (archivist)")
def rule_change(request: HttpRequest, ref: str, body: RulePatch) -> dict[str, Any]:
    changes = body.dict(exclude_unset=True)
    return services.rule_as_dict(services.update_rule(ref, changes, actor=actor_of(request)))


@router.delete("/rules/{ref}", response={204: None, **ERRORS}, summary="Remove a rule that never opened an obligation")
def rule_remove(request: HttpRequest, ref: str) -> Status:
    services.remove_rule(ref, actor=actor_of(request))
    return Status(204, None)


class EventIn(Schema):
    kind: str = Field(description="e.g. discharge, contract_signed")
    department: str
    subject_key: str = Field(description="what the owed record will carry: a visit number, a contract number")
    subject_label: str = Field("", description="a short label; never a patient's name")
    occurred_at: dt.datetime
    source: str = ""


@router.post("/events", response={200: list[dict[str, Any]], **ERRORS}, summary="Record a business event")
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
    id: int | None = Field(None, description="one notification; omit to mark all read")


@router.post("/notifications/read", response={200: dict[str, int], **ERRORS}, summary="Mark notifications read")
def notifications_read(request: HttpRequest, body: ReadIn) -> dict[str, int]:
    return {"marked": notify.mark_read(actor_of(request), body.id)}
