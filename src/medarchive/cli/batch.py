"""`medarchive import` (offline carriers with a manifest) and `medarchive watch` (the watched folder)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from medarchive.cli import runtime
from medarchive.cli.options import AsUser, JsonOut
from medarchive.cli.output import console, emit_json, errors, fail

if TYPE_CHECKING:
    from medarchive.capture.batch.folder import ScanSummary
    from medarchive.capture.batch.importer import ImportResult


def _say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)  # no wrapping: scripts read these lines


PHASES = {"checking": "checking files", "importing": "importing"}


@runtime.handles_errors
def import_command(
    manifest: Annotated[
        Path,
        typer.Argument(
            help="A folder holding its manifest, a manifest (.csv/.xlsx) next to its files, or a .zip carrier.",
            show_default=False,
        ),
    ],
    as_user: AsUser,
    department: Annotated[str, typer.Option("--department", help="Department for rows without 部门.")] = "",
    class_code: Annotated[str, typer.Option("--class", help="Class for rows without 门类/分类号.")] = "",
    json_out: JsonOut = False,
) -> None:
    """Import a batch: one record per manifest row. Bad rows are reported 不合格 with the reason;
    the others go in. Running it again creates nothing twice. Exit 1 when any row failed."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture.batch.importer import Defaults, import_carrier
    from medarchive.preservation.services import recover

    user = runtime.actor(as_user)
    recover()  # a batch killed earlier may have left debris; clear it before starting again
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=json_out,
        transient=True,
    ) as progress:
        task = progress.add_task("reading the manifest", total=None)

        def advance(done: int, total: int, phase: str) -> None:
            progress.update(task, completed=done, total=total, description=PHASES.get(phase, phase))

        result = import_carrier(
            manifest, actor=user, defaults=Defaults(class_code=class_code, department_code=department), progress=advance
        )
    if json_out:
        emit_json(result.as_dict())
    else:
        _print_import(result)
    if result.failed:
        raise SystemExit(1)


def _print_import(result: ImportResult) -> None:
    m = result.manifest
    _say(f"{escape(result.carrier)}: {escape(m.name)} ({m.format}, sha256 {m.sha256[:16]}…), {len(result.rows)} rows")
    if m.ignored:
        _say(f"[yellow]columns not used:[/] {escape(', '.join(m.ignored))}")
    for row in result.rows:
        outcome = row.outcome
        files = escape("; ".join(row.files) or "(no file)")
        if outcome.error is not None:
            _say(f"[red]✗[/] row {row.row} {files}: 不合格: {escape(outcome.error.message)}")
        elif outcome.replayed and outcome.record is not None:
            _say(f"[yellow]↷[/] row {row.row} {files}: already imported as {outcome.record.electronic_no}")
    data = result.as_dict()
    _say(
        f"[green]✓[/] {data['received']} received ({data['auto_accepted']} accepted automatically, the others wait"
        f" for review), {data['replayed']} already imported, {data['rejected']} 不合格 · submission"
        f" {data['submission_id']}"
    )


@runtime.handles_errors
def watch_command(
    as_user: AsUser,
    folder: Annotated[
        Path | None,
        typer.Argument(help="The watched folder (default: MEDARCHIVE_WATCH_DIR); drop files into its inbox/."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Scan once and exit (exit 1 when a file failed).")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between scans.")] = 5.0,
    settle: Annotated[
        float, typer.Option(min=0.0, help="Seconds a file must stay unchanged before it is taken.")
    ] = 10.0,
    json_out: JsonOut = False,
) -> None:
    """Watch a folder: files dropped into FOLDER/inbox/ (with an optional NAME.json or NAME.csv
    sidecar) are captured once and moved to done/ or failed/ (with NAME.error.txt). Stop with Ctrl+C."""
    runtime.setup()
    runtime.ensure_initialised()
    from django.conf import settings

    from medarchive.capture.batch import folder as watched
    from medarchive.preservation.services import recover

    target = folder or settings.CONFIG.watch_dir
    if target is None:
        fail("no folder to watch: give FOLDER or set MEDARCHIVE_WATCH_DIR", code=2, field="FOLDER")
    user = runtime.actor(as_user)
    recover()
    if once:
        summary = watched.scan(target, user, settle_seconds=settle)
        _print_scan(summary, json_out=json_out)
        if summary.count("rejected"):
            raise SystemExit(1)
        return
    if not json_out:
        _say(f"watching {escape(str(target / watched.INBOX))} (Ctrl+C stops)")
    watched.watch(
        target,
        user,
        interval=interval,
        settle_seconds=settle,
        on_scan=lambda summary: _print_scan(summary, json_out=json_out, quiet=True),
    )


def _print_scan(summary: ScanSummary, *, json_out: bool, quiet: bool = False) -> None:
    if json_out:
        if summary.outcomes or not quiet:
            emit_json(summary.as_dict())
        return
    if summary.busy:
        if not quiet:
            errors.print("another watcher is scanning this folder; skipped", highlight=False)
        return
    for outcome in summary.outcomes:
        _say(_scan_line(outcome.as_dict()))
    if summary.outcomes or not quiet:
        _say(str(summary))


def _scan_line(o: dict[str, Any]) -> str:
    name = escape(o["name"])
    if o["status"] == "rejected":
        return f"[red]✗[/] {name} → failed/: 不合格: {escape(o['reason'])}"
    verb = "already imported as" if o["status"] == "replayed" else "captured as"
    return f"[green]✓[/] {name} → done/: {verb} {o['electronic_no']}"


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("watch")(watch_command)
