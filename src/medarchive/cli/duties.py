"""duties commands: rules, completeness per department and period, business events, reminders."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from medarchive.cli import runtime
from medarchive.cli.options import AsUser, JsonOut
from medarchive.cli.output import console, emit_json, fail

duties_app = typer.Typer(
    help="Department duties: what each department owes the archive, by when.", no_args_is_help=True
)
rules_app = typer.Typer(help="Duty rules (the archivist edits them).", no_args_is_help=True)
duties_app.add_typer(rules_app, name="rules")

PeriodOpt = Annotated[str, typer.Option("--period", help="YYYY-MM, YYYY-Qn or YYYY (default: this month).")]


def _period(text: str) -> tuple[dt.date, dt.date]:
    from medarchive.capture.duties import rules
    from medarchive.core import clock

    return rules.parse_period(text or f"{clock.today():%Y-%m}")


@rules_app.command("list")
@runtime.handles_errors
def rules_list(as_user: AsUser, json_out: JsonOut = False) -> None:
    """Every duty rule, active or not."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture.duties import services

    found = [services.rule_as_dict(r) for r in services.list_rules(runtime.actor(as_user))]
    if json_out:
        emit_json(found)
        return
    table = Table("id", "名称", "类型", "应归档", "期限", "部门", "启用")
    for r in found:
        deadline = (
            f"{r['period']}: 次月{r['due_day']}日前 ×{r['min_count']}"
            if r["kind"] == "periodic"
            else f"{r['due_days']} 天"
        )
        trigger = r["event_kind"] or r["trigger_class"] or r["period"]
        table.add_row(
            str(r["id"]),
            escape(r["name"]),
            f"{r['kind']} {escape(trigger)}",
            f"{r['expected_class']} {r['match_key']}".strip(),
            deadline,
            r["department"] or "全部",
            "是" if r["active"] else "否",
        )
    console.print(table)


@rules_app.command("add")
@runtime.handles_errors
def rules_add(
    as_user: AsUser,
    name: Annotated[str, typer.Option(help="A unique name.")],
    kind: Annotated[str, typer.Option(help="event, record or periodic.")],
    expected_class: Annotated[str, typer.Option("--class", help="Class of the records owed, e.g. BA-ZY.")],
    department: Annotated[str, typer.Option(help="Only this department (default: every department).")] = "",
    event: Annotated[str, typer.Option(help="event rules: the event kind, e.g. discharge.")] = "",
    trigger_class: Annotated[str, typer.Option(help="record rules: class of the triggering record.")] = "",
    trigger_filter: Annotated[str, typer.Option(help='record rules: JSON, e.g. {"doc_type": "采购合同"}.')] = "",
    match_key: Annotated[str, typer.Option(help="event/record rules: metadata key linking them.")] = "",
    due_days: Annotated[int, typer.Option(help="event/record rules: due this many days after.")] = 0,
    period: Annotated[str, typer.Option(help="periodic rules: month, quarter or year.")] = "",
    due_day: Annotated[int, typer.Option(help="periodic rules: due on this day of the next month.")] = 0,
    min_count: Annotated[int, typer.Option(help="periodic rules: at least this many records.")] = 1,
    remind_days: Annotated[int, typer.Option(help="Remind this many days before the due date.")] = 3,
    description: Annotated[str, typer.Option(help="What the rule is for.")] = "",
    json_out: JsonOut = False,
) -> None:
    """Add a duty rule."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture.duties import services
    from medarchive.capture.duties.rules import RuleSpec

    try:
        parsed = json.loads(trigger_filter) if trigger_filter.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        fail('--trigger-filter must be a JSON object, e.g. {"doc_type": "采购合同"}', code=2)
    spec = RuleSpec(
        name=name,
        kind=kind,
        expected_class=expected_class,
        department=department,
        event_kind=event,
        trigger_class=trigger_class,
        trigger_filter=parsed,
        match_key=match_key,
        due_days=due_days,
        period=period,
        due_day=due_day,
        min_count=min_count,
        remind_days=remind_days,
        description=description,
    )
    rule = services.add_rule(spec, actor=runtime.actor(as_user))
    if json_out:
        emit_json(services.rule_as_dict(rule))
    else:
        console.print(f"[green]✓[/] rule {rule.pk} {escape(rule.name)}")


def _switch(ref: str, as_user: str, *, active: bool) -> None:
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture.duties import services

    rule = services.update_rule(ref, {"active": active}, actor=runtime.actor(as_user))
    console.print(f"[green]✓[/] rule {rule.pk} {escape(rule.name)} {'on' if active else 'off'}")


@rules_app.command("enable")
@runtime.handles_errors
def rules_enable(ref: Annotated[str, typer.Argument(help="Rule id or exact name.")], as_user: AsUser) -> None:
    """Turn a rule on."""
    _switch(ref, as_user, active=True)


@rules_app.command("disable")
@runtime.handles_errors
def rules_disable(ref: Annotated[str, typer.Argument(help="Rule id or exact name.")], as_user: AsUser) -> None:
    """Turn a rule off: it opens nothing new and sends no more reminders; history stays."""
    _switch(ref, as_user, active=False)


@rules_app.command("remove")
@runtime.handles_errors
def rules_remove(ref: Annotated[str, typer.Argument(help="Rule id or exact name.")], as_user: AsUser) -> None:
    """Delete a rule that never opened an obligation (otherwise: disable it)."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture.duties import services

    services.remove_rule(ref, actor=runtime.actor(as_user))
    console.print(f"[green]✓[/] rule {escape(ref)} removed")


@duties_app.command("status")
@runtime.handles_errors
def status(
    as_user: AsUser,
    department: Annotated[str, typer.Option(help="One department's code (default: all you may see).")] = "",
    period: PeriodOpt = "",
    json_out: JsonOut = False,
) -> None:
    """Expected / received on time / late / missing / not yet due, and the on-time score."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture.duties import services

    start, end = _period(period)
    report = services.completeness(runtime.actor(as_user), start, end, department_code=department)
    if json_out:
        emit_json(report.as_dict())
        return
    table = Table("部门", "应归档", "按时", "逾期归档", "缺失", "未到期", "按时率", title=f"{start} … {end}")
    for row in [*((r.department.name, r.counts) for r in report.rows), ("合计", report.total)]:
        name, counts = row
        percent = "—" if counts.percent is None else f"{counts.percent}%"
        table.add_row(
            escape(name),
            *(str(n) for n in (counts.expected, counts.on_time, counts.late, counts.missing, counts.pending)),
            percent,
        )
    console.print(table)


@duties_app.command("obligations")
@runtime.handles_errors
def obligations(
    as_user: AsUser,
    department: Annotated[str, typer.Option(help="Department code.")],
    period: PeriodOpt = "",
    status_filter: Annotated[str, typer.Option("--status", help="on_time, late, missing or pending.")] = "",
    json_out: JsonOut = False,
) -> None:
    """One department's obligations in a period."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture.duties import services

    start, end = _period(period)
    rows = services.list_obligations(runtime.actor(as_user), department, start, end, status=status_filter)
    if json_out:
        emit_json([r.as_dict() for r in rows])
        return
    table = Table("状态", "应归档", "对象", "到期", "归档时间", "规则")
    for r in rows:
        o = r.obligation
        table.add_row(
            r.status.value,
            o.expected_class,
            escape(r.label or r.key),
            o.due_on.isoformat(),
            o.fulfilled_at.isoformat(timespec="minutes") if o.fulfilled_at else "—",
            escape(o.rule.name),
        )
    console.print(table)


@duties_app.command("event")
@runtime.handles_errors
def event(
    kind: Annotated[str, typer.Argument(help="Event kind, e.g. discharge or contract_signed.")],
    as_user: AsUser,
    department: Annotated[str, typer.Option(help="Department code.")],
    subject: Annotated[str, typer.Option(help="What the owed record carries: visit number, contract number.")],
    label: Annotated[str, typer.Option(help="Short label (never a patient's name).")] = "",
    at: Annotated[str, typer.Option(help="When it happened, ISO 8601 (default: now).")] = "",
    source: Annotated[str, typer.Option(help="Sending system or message id.")] = "",
    json_out: JsonOut = False,
) -> None:
    """Record a business event: opens the obligations of matching event rules (a repeat opens nothing new)."""
    runtime.setup()
    runtime.ensure_initialised()
    from django.utils import timezone

    from medarchive.capture.duties import services
    from medarchive.core import clock

    try:
        occurred = dt.datetime.fromisoformat(at) if at else clock.now()
    except ValueError:
        fail(f"--at {at!r} is not an ISO 8601 date and time, e.g. 2025-03-01T10:00", code=2, field="--at")
    if timezone.is_naive(occurred):
        occurred = timezone.make_aware(occurred)
    actor = runtime.actor(as_user)
    found = services.record_event(
        kind,
        department_code=department,
        subject_key=subject,
        subject_label=label,
        occurred_at=occurred,
        actor=actor,
        source=source,
    )
    rows = services.rows_for(actor, found)  # visit numbers masked for a user without patient rights
    if json_out:
        emit_json([r.as_dict() for r in rows])
        return
    for r in rows:
        o = r.obligation
        console.print(f"[green]✓[/] {escape(o.rule.name)}: {o.expected_class} for {escape(r.key)} due {o.due_on}")
    if not found:
        console.print(f"no active rule for event {escape(kind)!r} in {escape(department)}")


@duties_app.command("remind")
@runtime.handles_errors
def remind(json_out: JsonOut = False) -> None:
    """Open periodic obligations, match open ones against existing records, and send the reminders that
    are due now (each obligation and stage only once). The worker does the same every hour."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture.duties import notify, services

    opened = services.open_periodic()
    changed = services.reconcile()
    run = notify.send_reminders()
    out: dict[str, Any] = {
        "periodic_opened": opened,
        "updated": changed,
        "obligations_reminded": run.obligations,
        "notifications": run.notifications,
        "emails": run.emails,
        "failed_emails": len(run.failed_emails),
    }
    if json_out:
        emit_json(out)
    else:
        console.print(f"[green]✓[/] {opened} periodic obligations opened, {changed} updated; {run.summary()}")


def register(app: typer.Typer) -> None:
    app.add_typer(duties_app, name="duties")
