"""ingest, records and content commands."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from medarchive.cli import runtime
from medarchive.cli.options import AsUser, JsonOut
from medarchive.cli.output import console, emit_json, fail

records_app = typer.Typer(help="Find, show and move records through their lifecycle.", no_args_is_help=True)
content_app = typer.Typer(help="Read the content of records (every read is audited).", no_args_is_help=True)


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            fail(f"{path} does not exist", code=2, field="PATH")
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        else:
            found.append(path)
    if not found:
        fail("no files to ingest", code=2, field="PATH")
    return found


def _meta(pairs: list[str]) -> dict[str, Any]:
    from medarchive.archiving.metadata import coerce

    meta: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--meta expects KEY=VALUE, got {pair!r}", code=2, field="--meta")
        meta[key.strip()] = coerce(key.strip(), value)
    return meta


def _batch_key(path: Path, class_code: str, department: str) -> str:
    """Same file (path, size, mtime) into the same class and department = same submission, so a re-run skips it."""
    stat = path.stat()
    raw = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{class_code}|{department}"
    return "cli-ingest:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()


@runtime.handles_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (a directory ingests its files).")],
    class_code: Annotated[str, typer.Option("--class", help="Classification code, e.g. WS.")],
    department: Annotated[str, typer.Option(help="Department code.")],
    title: Annotated[str, typer.Option(help="题名; with several files each record adds the file name.")],
    date: Annotated[str, typer.Option(help="日期, YYYY-MM-DD.")],
    as_user: AsUser,
    meta: Annotated[list[str] | None, typer.Option("--meta", help="Extra metadata KEY=VALUE (repeatable).")] = None,
    responsible: Annotated[str, typer.Option(help="责任者 (default: the department).")] = "",
    doc_number: Annotated[str, typer.Option(help="文号.")] = "",
    retention: Annotated[str | None, typer.Option(help="保管期限 code (default: the class's).")] = None,
    security_level: Annotated[str, typer.Option(help="密级.")] = "内部",
    one_record: Annotated[bool, typer.Option("--one-record", help="All files form one record.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Capture files as draft records. Re-running the same batch skips what is already in."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.access.queries import describe
    from medarchive.capture.models import IdempotencyKey
    from medarchive.capture.services import Description, IncomingFile, create_record
    from medarchive.preservation.services import recover

    user = runtime.actor(as_user)
    files = _files(paths)
    metadata = _meta(meta or [])
    recover()  # a batch killed earlier may have left debris; clear it before starting again
    groups = [files] if one_record else [[f] for f in files]
    results: list[dict[str, Any]] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=json_out or len(groups) < 2,
    ) as progress:
        task = progress.add_task("ingesting", total=len(groups))
        for group in groups:
            key = _batch_key(group[0], class_code, department) if len(group) == 1 else None
            if key is not None:
                done = IdempotencyKey.objects.filter(key=key, created_by=user).select_related("record").first()
                if done is not None:
                    results.append(
                        {
                            "path": str(group[0]),
                            "status": "skipped",
                            "id": str(done.record_id),
                            "electronic_no": done.record.electronic_no,
                        }
                    )
                    progress.advance(task)
                    continue
            record_title = title if len(groups) == 1 else f"{title}（{group[0].stem}）"
            desc = Description(
                class_code=class_code,
                department_code=department,
                title=record_title,
                date=date,
                responsible=responsible,
                doc_number=doc_number,
                retention=retention,
                security_level=security_level,
                metadata=metadata,
            )
            handles = [path.open("rb") for path in group]
            try:
                incoming = [
                    IncomingFile(
                        name=path.name,
                        stream=handle,
                        created=dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC),
                    )
                    for path, handle in zip(group, handles, strict=True)
                ]
                record = create_record(desc, incoming, actor=user, idempotency_key=key)
            finally:
                for handle in handles:
                    handle.close()
            results.append(
                {
                    "path": str(group[0]),
                    "status": "ingested",
                    "id": str(record.pk),
                    "electronic_no": record.electronic_no,
                    "files": describe(record, user)["files"],
                }
            )
            progress.advance(task)
    if json_out:
        emit_json(
            {
                "ingested": sum(r["status"] == "ingested" for r in results),
                "skipped": sum(r["status"] == "skipped" for r in results),
                "records": results,
            }
        )
        return
    for r in results:
        mark = "[green]✓[/]" if r["status"] == "ingested" else "[yellow]↷[/]"
        console.print(f"{mark} {r['electronic_no']}  {escape(r['path'])}  ({r['status']})")


@records_app.command("list")
@runtime.handles_errors
def records_list(
    as_user: AsUser,
    q: Annotated[str, typer.Option(help="Search title, 文号, 档号, 责任者.")] = "",
    class_code: Annotated[str, typer.Option("--class")] = "",
    department: Annotated[str, typer.Option()] = "",
    state: Annotated[str, typer.Option()] = "",
    page: Annotated[int, typer.Option()] = 1,
    page_size: Annotated[int, typer.Option()] = 25,
    json_out: JsonOut = False,
) -> None:
    """List the records you may see, newest first."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.access import queries

    user = runtime.actor(as_user)
    result = queries.list_records(
        user,
        queries.RecordFilter(q=q, class_code=class_code, department_code=department, state=state),
        page=page,
        page_size=page_size,
    )
    items = [queries.describe(r, user, with_files=False) for r in result.items]
    if json_out:
        emit_json(
            {
                "items": items,
                "total": result.total,
                "page": result.page,
                "pages": result.pages,
                "page_size": result.page_size,
            }
        )
        return
    table = Table("电子文件号", "档号", "门类", "部门", "题名", "日期", "状态")
    for item in items:
        table.add_row(
            *(
                Text(str(item[key] or ""))  # Text, not markup: record data may contain "[/]"
                for key in ("electronic_no", "archival_code", "class", "department", "title", "date", "state")
            )
        )
    console.print(table)
    console.print(f"page {result.page}/{max(result.pages, 1)}, {result.total} records")


@records_app.command("show")
@runtime.handles_errors
def records_show(record_id: str, as_user: AsUser, json_out: JsonOut = False) -> None:
    """Show one record with its files and history."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.access import queries

    user = runtime.actor(as_user)
    record = queries.get_record(user, record_id)
    queries.audit_metadata_read(user, record)
    data = queries.describe(record, user, with_history=True)
    if json_out:
        emit_json(data)
        return
    for key in (
        "electronic_no",
        "archival_code",
        "title",
        "class",
        "department",
        "responsible",
        "date",
        "doc_number",
        "security_level",
        "retention",
        "open_status",
        "state",
    ):
        console.print(f"[bold]{key:>15}[/] {escape(str(data[key] if data[key] is not None else ''))}", highlight=False)
    if data["metadata"]:
        console.print(f"[bold]{'metadata':>15}[/] {escape(json.dumps(data['metadata'], ensure_ascii=False))}")
    for f in data["files"]:
        console.print(
            f"  #{f['sequence']} {escape(f['filename'])}  {f['size']} bytes  {f['format_name']}  sm3 {f['sm3']}"
        )
    for h in data["history"]:
        console.print(f"  {h['at']}  {h['action']}  {h['actor']}  {escape(h['description'])}")


def _transition(name: str) -> Any:
    @runtime.handles_errors
    def command(record_id: str, as_user: AsUser, json_out: JsonOut = False) -> None:
        runtime.setup()
        runtime.ensure_initialised()
        from medarchive.access.queries import describe
        from medarchive.archiving import services
        from medarchive.capture import review

        user = runtime.actor(as_user)
        step = {"submit": review.submit, "accept": review.accept, "archive": services.archive_record}[name]
        record = step(record_id, actor=user)
        if json_out:
            emit_json(describe(record, user, with_files=False))
        else:
            console.print(
                f"[green]✓[/] {record.electronic_no} is now {record.state}"
                + (f", 档号 {record.archival_code}" if record.archival_code else "")
            )

    command.__doc__ = {
        "submit": "Submit a draft to the archive.",
        "accept": "Accept a submitted record.",
        "archive": "Archive an accepted record and assign its 档号.",
    }[name]
    return command


@content_app.command("get")
@runtime.handles_errors
def content_get(
    record_id: str,
    out: Annotated[Path, typer.Option(help="Where to write the file.")],
    as_user: AsUser,
    file: Annotated[int, typer.Option(help="Which file of the record (文档序号).")] = 1,
) -> None:
    """Write one file of a record to OUT (decrypted, verified chunk by chunk, audited)."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.access.services import read_content

    user = runtime.actor(as_user)
    if out.exists() and out.is_dir():
        fail(f"{out} is a directory; give a file path", code=2, field="--out")
    content = read_content(user, record_id, sequence=file)
    partial = out.with_name(out.name + ".partial")
    try:
        with partial.open("wb") as handle:
            for chunk in content.chunks:
                handle.write(chunk)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    console.print(
        f"[green]✓[/] {escape(content.component.filename)} → {escape(str(out))} ({content.component.size} bytes)"
    )


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    for name in ("submit", "accept", "archive"):
        records_app.command(name)(_transition(name))
    app.add_typer(records_app, name="records")
    app.add_typer(content_app, name="content")
