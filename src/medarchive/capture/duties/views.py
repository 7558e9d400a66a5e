"""Duty and completeness pages: the dashboard with its chart, a department's obligations, the rules,
and the notification list. Thin: parse the request, call services, render."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from medarchive.archiving.models import ArchiveClass
from medarchive.capture.duties import chart, notify, rules, services
from medarchive.capture.duties.rules import Kind, Period, RuleSpec, Status
from medarchive.core import clock
from medarchive.core.errors import Collector, MedarchiveError, NotFound, PermissionDenied, Problems, ValidationError
from medarchive.core.models import Department
from medarchive.security import audit
from medarchive.security.api_auth import actor_of
from medarchive.security.permissions import can
from medarchive.security.roles import Action
from medarchive.web.errors import error_page
from medarchive.web.forms import problems_of

STATUS_LABELS = {
    Status.ON_TIME: gettext_lazy("Received on time"),
    Status.LATE: gettext_lazy("Received late"),
    Status.MISSING: gettext_lazy("Missing"),
    Status.PENDING: gettext_lazy("Not yet due"),
}
KIND_LABELS = {
    Kind.EVENT: gettext_lazy("After an event"),
    Kind.RECORD: gettext_lazy("After a record"),
    Kind.PERIODIC: gettext_lazy("Every period"),
}
PERIOD_LABELS = {
    Period.MONTH: gettext_lazy("month"),
    Period.QUARTER: gettext_lazy("quarter"),
    Period.YEAR: gettext_lazy("year"),
}


def _refused(request: HttpRequest, exc: MedarchiveError) -> HttpResponse:
    if isinstance(exc, PermissionDenied):
        audit.record_refusal(exc)
    return error_page(request, exc.status, exc.message)


def _period(request: HttpRequest) -> tuple[str, dt.date, dt.date, MedarchiveError | None]:
    """The period asked for (default: this quarter, so the first days of a month do not show an empty
    page); a bad one falls back to this quarter with an error."""
    default = rules.period_label(Period.QUARTER, rules.period_start(Period.QUARTER, clock.today()))
    text = request.GET.get("period", "").strip() or default
    try:
        start, end = rules.parse_period(text)
    except ValidationError as exc:
        start, end = rules.parse_period(default)
        return default, start, end, exc
    return text, start, end, None


def _shortcuts() -> list[tuple[str, str]]:
    today = clock.today()
    this_month = rules.period_start(Period.MONTH, today)
    last_month = rules.previous_start(Period.MONTH, this_month)
    quarter = rules.period_start(Period.QUARTER, today)
    return [
        (_("This month"), rules.period_label(Period.MONTH, this_month)),
        (_("Last month"), rules.period_label(Period.MONTH, last_month)),
        (_("This quarter"), rules.period_label(Period.QUARTER, quarter)),
        (_("This year"), f"{today.year}"),
    ]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = actor_of(request)
    label, start, end, error = _period(request)
    try:
        report = services.completeness(user, start, end)
    except MedarchiveError as exc:
        return _refused(request, exc)
    bars = chart.build([(row.department.name, row.counts) for row in report.rows])
    return render(
        request,
        "duties/dashboard.html",
        {
            "report": report,
            "period": label,
            "error": error,
            "chart": bars,
            "statuses": [(s.value, STATUS_LABELS[s]) for s in chart.ORDER],
            "shortcuts": _shortcuts(),
            "can_manage": can(user, Action.DUTY_MANAGE),
        },
        status=422 if error else 200,
    )


@login_required
def department(request: HttpRequest, code: str) -> HttpResponse:
    user = actor_of(request)
    label, start, end, error = _period(request)
    status = request.GET.get("status", "")
    try:
        report = services.completeness(user, start, end, department_code=code)
        rows = services.list_obligations(user, code, start, end, status=status)
    except MedarchiveError as exc:
        return _refused(request, exc)
    counts = report.rows[0].counts
    return render(
        request,
        "duties/department.html",
        {
            "department": report.rows[0].department,
            "counts": counts,
            "tiles": [(s.value, STATUS_LABELS[s], getattr(counts, s.value)) for s in chart.ORDER],
            "rows": [(r, STATUS_LABELS[r.status]) for r in rows],
            "limited": len(rows) >= services.LIST_LIMIT,
            "period": label,
            "status": status,
            "error": error,
            "shortcuts": _shortcuts(),
            "query": urlencode({"period": label}),
        },
        status=422 if error else 200,
    )


# --- rules --------------------------------------------------------------------------------------------

_INT_FIELDS = {
    "due_days": gettext_lazy("Due within (days)"),
    "due_day": gettext_lazy("Due on day (of the next month)"),
    "min_count": gettext_lazy("At least this many records"),
    "remind_days": gettext_lazy("Remind this many days before"),
}
_INT_DEFAULTS = {"min_count": 1, "remind_days": 3}
# The form's element ids, so the summary at the top links to each field.
RULE_FIELD_IDS = {
    "name": "r-name",
    "kind": "r-kind",
    "expected_class": "r-class",
    "department": "r-dept",
    "remind_days": "r-remind",
    "event_kind": "r-event",
    "trigger_class": "r-trigger",
    "trigger_filter": "r-filter",
    "match_key": "r-key",
    "due_days": "r-days",
    "period": "r-period",
    "due_day": "r-dueday",
    "min_count": "r-min",
    "description": "r-desc",
}


def _spec_from(post: Any, collector: Collector) -> RuleSpec:
    """The rule the form describes; what cannot be read goes to `collector` (and a default stands in,
    so the service still checks every other field)."""
    numbers: dict[str, int] = {}
    for name, label in _INT_FIELDS.items():
        raw = post.get(name, "").strip()
        if raw and not (raw.isascii() and raw.isdigit() and len(raw) < 7):
            collector.add(
                ValidationError(
                    gettext_lazy("%(label)s must be a whole number, such as 7 (not “%(value)s”)."),
                    code="not_a_whole_number",
                    field=name,
                    label=label,
                    value=raw[:40],
                )
            )
            raw = ""
        numbers[name] = int(raw) if raw else _INT_DEFAULTS.get(name, 0)
    raw_filter = post.get("trigger_filter", "").strip()
    try:
        trigger_filter = json.loads(raw_filter) if raw_filter else {}
    except ValueError:
        trigger_filter = None
    if not isinstance(trigger_filter, dict):
        collector.add(
            ValidationError(
                gettext_lazy('The trigger filter must be a JSON object, e.g. {"doc_type": "采购合同"}'),
                code="filter_not_an_object",
                field="trigger_filter",
            )
        )
        trigger_filter = {}
    return RuleSpec(
        name=post.get("name", ""),
        kind=post.get("kind", ""),
        expected_class=post.get("expected_class", ""),
        department=post.get("department", ""),
        event_kind=post.get("event_kind", "").strip(),
        trigger_class=post.get("trigger_class", ""),
        trigger_filter=trigger_filter,
        match_key=post.get("match_key", "").strip(),
        period=post.get("period", ""),
        description=post.get("description", ""),
        **numbers,
    )


def _add_rule(post: Any, actor: Any) -> Any:
    """Add the rule the form describes, or raise every problem with it at once."""
    collector = Collector()
    spec = _spec_from(post, collector)
    if not collector.problems:
        return services.add_rule(spec, actor=actor)
    unread = {p.field for p in collector.problems}
    try:
        services.check_rule(spec, actor=actor)
    except PermissionDenied:
        raise
    except MedarchiveError as exc:
        # A field the form could not read was checked with its default: its own problem says it better.
        for problem in exc.problems if isinstance(exc, Problems) else [exc]:
            if problem.field not in unread:
                collector.add(problem)
    raise Problems(collector.problems)


def _rules_context(request: HttpRequest, values: dict[str, Any], error: MedarchiveError | None) -> dict[str, Any]:
    user = actor_of(request)
    return {
        "rules": [
            (r, KIND_LABELS[Kind(r.kind)], PERIOD_LABELS.get(Period(r.period)) if r.period else "")
            for r in services.list_rules(user)
        ],
        "can_manage": can(user, Action.DUTY_MANAGE),
        "values": values,
        **problems_of(error, anchor_of=lambda field: RULE_FIELD_IDS.get(field, "")),
        "kinds": [(k.value, KIND_LABELS[k]) for k in Kind],
        "periods": [(p.value, PERIOD_LABELS[p]) for p in Period],
        "departments": Department.objects.filter(active=True),
        "classes": ArchiveClass.objects.filter(scheme__active=True).order_by("code"),
    }


@login_required
def rule_list(request: HttpRequest) -> HttpResponse:
    values: dict[str, Any] = {"kind": Kind.EVENT.value, "remind_days": "3", "min_count": "1"}
    error: MedarchiveError | None = None
    try:
        if request.method == "POST":
            values = {k: request.POST.get(k, "") for k in request.POST if k != "csrfmiddlewaretoken"}
            try:
                rule = _add_rule(request.POST, actor_of(request))
            except PermissionDenied:
                raise
            except MedarchiveError as exc:
                error = exc
            else:
                messages.success(request, _("Rule “%(name)s” added.") % {"name": rule.name})
                return HttpResponseRedirect(reverse("duties-rules"))
        context = _rules_context(request, values, error)
    except MedarchiveError as exc:
        return _refused(request, exc)
    return render(request, "duties/rules.html", context, status=error.status if error else 200)


@login_required
@require_POST
def rule_change(request: HttpRequest, rule_id: int, op: str) -> HttpResponse:
    user = actor_of(request)
    try:
        if op == "remove":
            rule = services.get_rule(rule_id)
            services.remove_rule(rule_id, actor=user)
            messages.success(request, _("Rule “%(name)s” removed.") % {"name": rule.name})
        elif op in ("enable", "disable"):
            rule = services.update_rule(rule_id, {"active": op == "enable"}, actor=user)
            messages.success(
                request,
                (_("Rule “%(name)s” is on.") if rule.active else _("Rule “%(name)s” is off.")) % {"name": rule.name},
            )
        else:
            raise NotFound(gettext_lazy("There is no such action on a duty rule."), code="unknown_rule_action", op=op)
    except PermissionDenied as exc:
        return _refused(request, exc)
    except MedarchiveError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("duties-rules"))


# --- notifications ------------------------------------------------------------------------------------


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    user = actor_of(request)
    return render(request, "duties/notifications.html", {"notifications": notify.notifications_of(user)})


@login_required
@require_POST
def notification_read(request: HttpRequest) -> HttpResponse:
    """Mark one notification read (`id`), or all of them (`all`)."""
    raw = request.POST.get("id", "")
    if raw.isascii() and raw.isdigit():
        notify.mark_read(actor_of(request), int(raw))
    elif request.POST.get("all"):
        notify.mark_read(actor_of(request))
    return HttpResponseRedirect(reverse("duties-notifications"))
