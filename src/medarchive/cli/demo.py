"""`medarchive demo`: a demo hospital with real files in a fresh data directory, then serve it."""

from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from medarchive.cli import app_state, runtime
from medarchive.cli.output import console, fail

DEFAULT_DIR = "medarchive-demo"
CREDENTIALS = "demo-credentials.json"
DEMO_USERS = [
    ("admin", "sysadmin", None, "系统管理员"),
    ("secadmin", "secadmin", None, "安全保密管理员"),
    ("auditor", "auditor", None, "安全审计员"),
    ("archivist", "archivist", "DAS", "档案室 王档案"),
    ("officer", "officer", "BGS", "院办 李兼职档案员"),
    ("doctor", "clinician", "NK", "内科 赵医生"),
    ("researcher", "researcher", None, "科教科 钱研究员"),
    ("viewer", "viewer", "BGS", "院办 孙查阅"),
    ("his", "interface", None, "HIS/EMR 接口账号"),
]
RETURN_COMMENT = "请补充文号并核对责任者后重新提交"


def _password() -> str:
    return f"Demo-{secrets.token_hex(3)}-{secrets.randbelow(9000) + 1000}"


def build(count: int, seed: int) -> list[dict[str, str]]:
    """Create departments, one user per role and `count` records; returns the credentials."""
    from medarchive.archiving import services as archiving
    from medarchive.capture import review
    from medarchive.capture.intake import Item, receive
    from medarchive.capture.models import Channel
    from medarchive.capture.services import Description, IncomingFile
    from medarchive.cli.admin import initialise
    from medarchive.core.services import add_department
    from medarchive.demo.files import DEPARTMENTS, generate_documents
    from medarchive.security.models import User
    from medarchive.security.services import add_user

    initialise()
    for code, name in DEPARTMENTS:
        add_department(code, name, actor=None)
    credentials = []
    for username, role, department, display in DEMO_USERS:
        password = _password()
        add_user(username, actor=None, role=role, password=password, department_code=department, display_name=display)
        credentials.append({"username": username, "role": role, "password": password})
    archivist = User.objects.get(username="archivist")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        task = progress.add_task("生成示例档案", total=count)
        for index, doc in enumerate(generate_documents(count, seed=seed)):
            metadata: dict[str, Any] = {k: v for k, v in doc.extra.items() if v not in (None, "")}
            if "amount" in metadata:
                metadata["amount"] = float(str(metadata["amount"]).replace(",", ""))
            desc = Description(
                class_code=doc.class_code,
                department_code=doc.department_code,
                title=doc.title,
                date=doc.date,
                responsible=doc.author,
                doc_number=doc.doc_number or "",
                retention=doc.retention,
                security_level=doc.security_level,
                open_status=doc.open_status,
                metadata=metadata,
            )
            files = [IncomingFile(name=doc.filename, stream=io.BytesIO(doc.content))]
            outcome = receive([Item(desc, files, label=doc.filename)], actor=archivist, channel=Channel.REST).outcomes[
                0
            ]
            if outcome.error is not None or outcome.record is None:
                fail(f"demo record {doc.filename} was refused: {outcome.error}")
            # A realistic mix: most archived; some waiting in the review queue, some returned to the department.
            record, step = outcome.record, index % 10
            if step == 1 and record.state == "submitted":
                review.return_to_department(record.pk, actor=archivist, comment=RETURN_COMMENT)
            elif step >= 2:
                if record.state == "submitted" and not record.intake.errors:
                    record = review.accept(record.pk, actor=archivist)
                if record.state == "accepted":  # one with errors stays in the queue for a person to decide
                    archiving.archive_record(record.pk, actor=archivist)
            if index % 97 == 5:  # a department sends the same file twice: the door flags the duplicate
                again = Item(
                    Description(**{**vars(desc), "title": desc.title + "（重复提交）"}),
                    [IncomingFile(name=doc.filename, stream=io.BytesIO(doc.content))],
                    label=doc.filename,
                )
                receive([again], actor=archivist, channel=Channel.REST)
            progress.advance(task)
    from medarchive.demo.duties import build_duty_history

    history = build_duty_history(interface=User.objects.get(username="his"), seed=seed)
    console.print(
        f"归档职责：{history.discharges} 次出院，按时 {history.on_time}，逾期 {history.late}，"
        f"缺失 {history.missing}，未到期 {history.pending}"
    )
    return credentials


def show_credentials(credentials: list[dict[str, str]]) -> None:
    table = Table("user", "role", "password", title="demo accounts (also in demo-credentials.json)")
    for c in credentials:
        table.add_row(c["username"], c["role"], c["password"])
    console.print(table)


def demo(
    records: Annotated[int, typer.Option(help="How many synthetic records to create.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed for the synthetic content.")] = 2026,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Build the demo, do not serve it.")] = False,
) -> None:
    """Create a demo hospital (departments, one user per role, hundreds of records with real files) and serve it."""
    if app_state.data_dir_option is None and not os.environ.get("MEDARCHIVE_DATA_DIR"):
        os.environ["MEDARCHIVE_DATA_DIR"] = DEFAULT_DIR
    runtime.setup()
    from django.conf import settings

    data_dir: Path = settings.CONFIG.data_dir
    marker = data_dir / CREDENTIALS
    if marker.exists():
        console.print(f"demo already built in {data_dir}; serving it")
        credentials = json.loads(marker.read_text(encoding="utf-8"))
    else:
        if (data_dir / "medarchive.sqlite3").exists() or (data_dir / "blobs").exists():
            fail(
                f"{data_dir} holds an archive that is not a demo; choose a fresh directory with --data-dir",
                code=2,
                field="--data-dir",
            )
        credentials = build(records, seed)
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(credentials, handle, ensure_ascii=False, indent=2)
        console.print(f"[green]✓[/] demo hospital with {records} records in {data_dir}")
    show_credentials(credentials)
    if not no_serve:
        from medarchive.cli.server import serve

        serve(host=host, port=port)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
