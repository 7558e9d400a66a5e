"""`medarchive review …` and `medarchive submissions …`: the door from the command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from medarchive.cli import runtime
from medarchive.cli.options import AsUser, JsonOut
from medarchive.cli.output import console, emit_json

review_app = typer.Typer(help="Review what arrived at the door: accept, return, withdraw.", no_args_is_help=True)
submissions_app = typer.Typer(help="Submissions and their registers (归档登记表).", no_args_is_help=True)


def _intake(intake: Any, actor: Any) -> dict[str, Any]:
    from medarchive.capture.findings import for_viewer

    record = intake.record
    return {
        "record_id": str(record.pk),
        "electronic_no": record.electronic_no,
        "title": record.title,
        "class": record.archive_class.code,
        "department": record.department.code,
        "review": intake.state,
        "channel": intake.submission.channel,
        "errors": intake.errors,
        "warnings": intake.warnings,
        "findings": for_viewer(intake.findings, actor),
        "comment": intake.comment,
        "rounds": intake.rounds,
    }


@review_app.command("queue")
@runtime.handles_errors
def queue(
    as_user: AsUser,
    state: Annotated[str, typer.Option(help="pending, returned, accepted or withdrawn.")] = "pending",
    class_code: Annotated[str, typer.Option("--class")] = "",
    department: Annotated[str, typer.Option()] = "",
    errors_only: Annotated[bool, typer.Option("--errors-only")] = False,
    page: Annotated[int, typer.Option()] = 1,
    json_out: JsonOut = False,
) -> None:
    """What waits at the door, oldest first, with what the checks found."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture import queries

    user = runtime.actor(as_user)
    found = queries.review_queue(
        user,
        state=state,
        class_code=class_code,
        department_code=department,
        errors_only=errors_only,
        page=page,
    )
    items = [_intake(i, user) for i in found.items]
    if json_out:
        emit_json({"items": items, "total": found.total, "page": found.page, "pages": found.pages})
        return
    table = Table("电子文件号", "门类", "部门", "题名", "错误", "警告")
    for item in items:
        table.add_row(
            *(Text(str(item[k])) for k in ("electronic_no", "class", "department", "title")),
            str(item["errors"]),
            str(item["warnings"]),
        )
    console.print(table)
    console.print(f"page {found.page}/{max(found.pages, 1)}, {found.total} records")


@review_app.command("accept")
@runtime.handles_errors
def accept(
    record_ids: list[str],
    as_user: AsUser,
    override: Annotated[bool, typer.Option(help="Accept despite errors found at the door (needs --comment).")] = False,
    comment: Annotated[str, typer.Option()] = "",
    json_out: JsonOut = False,
) -> None:
    """Accept one or more records into the archive; each is reported on its own."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture import review

    user = runtime.actor(as_user)
    if override:
        outcomes = []
        for record_id in record_ids:
            record = review.accept(record_id, actor=user, override=True, comment=comment)
            outcomes.append(review.BulkOutcome(str(record.pk), True, record.electronic_no))
    else:
        outcomes = review.accept_many(record_ids, actor=user)
    if json_out:
        emit_json([vars(o) for o in outcomes])
    else:
        for o in outcomes:
            mark = Text("✓ " if o.ok else "✗ ", style="green" if o.ok else "red")
            console.print(mark + Text(f"{o.record_id} {o.message}"))
    if not all(o.ok for o in outcomes):
        raise SystemExit(1)


def _one(step: str) -> Any:
    @runtime.handles_errors
    def command(
        record_id: str,
        as_user: AsUser,
        comment: Annotated[str, typer.Option(help="Required: what to fix, or why it is withdrawn.")] = "",
        json_out: JsonOut = False,
    ) -> None:
        runtime.setup()
        runtime.ensure_initialised()
        from medarchive.capture import review
        from medarchive.capture.models import Intake

        user = runtime.actor(as_user)
        if step == "return":
            record = review.return_to_department(record_id, actor=user, comment=comment)
        else:
            record = review.withdraw(record_id, actor=user, reason=comment)
        intake = Intake.objects.select_related("record", "submission").get(record=record)
        if json_out:
            emit_json(_intake(intake, user))
        else:
            console.print(f"[green]✓[/] {record.electronic_no} is now {intake.state}")

    command.__doc__ = {
        "return": "Return a record to its department with a comment.",
        "withdraw": "Withdraw a returned or pending submission (the record stays, withdrawn).",
    }[step]
    return command


@submissions_app.command("show")
@runtime.handles_errors
def show(submission_id: str, as_user: AsUser, json_out: JsonOut = False) -> None:
    """A submission's register: declared and received counts and each item's outcome."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture import queries

    submission = queries.get_submission(runtime.actor(as_user), submission_id)
    data = {
        "id": str(submission.pk),
        "channel": submission.channel,
        "state": submission.state,
        "source": submission.source,
        "declared_count": submission.declared_count,
        "declared_bytes": submission.declared_bytes,
        "received_count": submission.received_count,
        "received_bytes": submission.received_bytes,
        "failed_count": submission.failed_count,
        "report": submission.report,
    }
    if json_out:
        emit_json(data)
        return
    console.print(
        Text(
            f"{data['channel']} {data['source']}  received {data['received_count']}, "
            f"rejected {data['failed_count']} ({data['state']})"
        )
    )
    for item in (submission.report or {}).get("items", []):
        problem = (item.get("problem") or {}).get("message", "")
        console.print(Text(f"  {item['label']}: {item['status']} {item.get('electronic_no') or ''} {problem}"))


def register(app: typer.Typer) -> None:
    review_app.command("return")(_one("return"))
    review_app.command("withdraw")(_one("withdraw"))
    app.add_typer(review_app, name="review")
    app.add_typer(submissions_app, name="submissions")
