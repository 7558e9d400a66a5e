"""`medarchive listen dicom` (a C-STORE SCP) and `medarchive import-dicom` (DICOM files and folders).

Both capture one record per study (StudyInstanceUID) whose files are the instances, byte for
byte; see docs/capture/dicom.md.
"""

from __future__ import annotations

import logging
import signal
import ssl
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from medarchive.cli import runtime
from medarchive.cli.listen import listen
from medarchive.cli.options import AsUser as ImportAsUser
from medarchive.cli.output import console, emit_json, errors, fail

AsUser = Annotated[
    str, typer.Option("--as", help="The interface account studies are captured as (authorised and audited as it).")
]
_AE_TITLE_MAX = 16


def _ae_title(value: str, option: str) -> str:
    value = value.strip()
    if not value or len(value) > _AE_TITLE_MAX or not value.isascii() or not value.isprintable() or "\\" in value:
        fail(f"{value!r} is not an AE title (1-16 printable ASCII characters, no backslash)", code=2, field=option)
    return value


def _department(code: str, user: Any, option: str) -> str:
    from medarchive.core.services import active_department
    from medarchive.security.permissions import can
    from medarchive.security.roles import Action

    department = active_department(code)
    if department is None:
        fail(f"unknown department {code!r}", code=2, field=option)
    if not can(user, Action.RECORD_CREATE, department_id=department.pk):
        fail(f"{user.username} may not create records for department {code}", code=3, field="--as")
    return str(department.code)


def _calling_map(pairs: list[str], user: Any) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        ae, sep, code = pair.partition("=")
        if sep and not code.strip():
            fail(f"--calling-ae expects AE or AE=DEPARTMENT, got {pair!r}", code=2, field="--calling-ae")
        # AE alone: this caller's studies are filed by their InstitutionName through the department aliases only.
        mapping[_ae_title(ae, "--calling-ae")] = _department(code.strip(), user, "--calling-ae") if sep else ""
    return mapping


def _tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None and client_ca is None:
        return None
    if cert is None or key is None:
        fail("TLS needs both --tls-cert and --tls-key", code=2, field="--tls-cert")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
        if client_ca is not None:  # callers must show a certificate signed by this CA
            context.load_verify_locations(cafile=str(client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        fail(f"cannot load the TLS certificate or key: {exc}", code=2, field="--tls-cert")
    return context


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("medarchive.capture.dicom")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@listen.command("dicom")
@runtime.handles_errors
def listen_dicom(
    as_user: AsUser,
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one and prints it).")] = 11112,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    ae_title: Annotated[str, typer.Option("--ae-title", help="Our AE title; callers must call it.")] = "MEDARCHIVE",
    department: Annotated[
        str | None, typer.Option(help="Department of studies from callers not in --calling-ae (accepts any caller).")
    ] = None,
    calling_ae: Annotated[
        list[str] | None,
        typer.Option(
            "--calling-ae",
            help="AE=DEPARTMENT: accept calling AE title AE, its studies go to DEPARTMENT unless their InstitutionName "
            "is mapped (medarchive department alias); AE alone: accept it, departments from the mapping only.",
        ),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate: speak DICOM over TLS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option("--tls-client-ca", help="PEM CA: callers must present a certificate it signed.")
    ] = None,
) -> None:
    """Run a DICOM C-STORE SCP (and C-ECHO): each study sent on an association becomes one record
    when the association ends."""
    runtime.setup()
    runtime.ensure_initialised()
    from django.db import connection

    from medarchive.capture.dicom.scp import ScpSettings, StoreScp
    from medarchive.preservation.services import recover

    user = runtime.actor(as_user)
    settings = ScpSettings(
        ae_title=_ae_title(ae_title, "--ae-title"),
        username=user.username,
        default_department=_department(department, user, "--department") if department else None,
        calling_departments=_calling_map(calling_ae or [], user),
    )
    if settings.default_department is None and not settings.calling_departments:
        fail(
            "say whose studies these are: --department CODE or --calling-ae AE=CODE "
            "(or --calling-ae AE: departments from the mapped InstitutionName only)",
            code=2,
            field="--department",
        )
    context = _tls(tls_cert, tls_key, tls_client_ca)
    _log_to_stderr()
    recover()  # what an earlier, killed listener left in staging
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    scp = StoreScp(settings)
    try:
        bound_host, bound_port = scp.start(host, port, ssl_context=context)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code=1, field="--port")
    callers = ", ".join(f"{ae}→{code or 'mapped'}" for ae, code in sorted(settings.calling_departments.items()))
    sys.stdout.write(
        f"DICOM C-STORE SCP {settings.ae_title} listening on {bound_host}:{bound_port}"
        f"{' (TLS)' if context else ''}; callers: {callers or '-'}; others: {settings.default_department or 'refused'}"
        " (Ctrl+C to stop)\n"
    )
    sys.stdout.flush()
    connection.close()  # idle for hours otherwise; the shutdown's capture opens a fresh one
    while not stop.wait(0.5):
        pass
    scp.stop()
    sys.stdout.write("stopped\n")
    sys.stdout.flush()


@runtime.handles_errors
def import_dicom(
    paths: Annotated[list[Path], typer.Argument(help="DICOM files, or folders of them (searched recursively).")],
    as_user: ImportAsUser,
    department: Annotated[
        str | None, typer.Option(help="Department code (default: the account's own department).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Stable machine-readable output (docs/cli.md).")] = False,
) -> None:
    """Import DICOM Part 10 files: one record per study, the files kept byte for byte.
    Refused files are named with the reason and the rest go on; exit code 2 if any was refused."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.capture.dicom import importer
    from medarchive.preservation.services import recover

    user = runtime.actor(as_user)
    code = department or (user.department.code if user.department_id else None)
    if code is None:
        fail(f"{user.username} has no department; give --department CODE", code=2, field="--department")
    code = _department(code, user, "--department")
    recover()  # a run killed earlier may have left debris; clear it before starting again
    files = importer.find_files(paths)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=errors,
        disable=json_out,
    ) as progress:
        reading = progress.add_task("reading headers", total=len(files))
        found = importer.scan(files, on_file=lambda _: progress.advance(reading))
        capturing = progress.add_task("capturing studies", total=len(found.gatherer.studies))
        outcomes = importer.capture_studies(
            found, actor=user, department_code=code, on_study=lambda *_: progress.advance(capturing)
        )
    if json_out:
        emit_json(
            {
                "files": len(files),
                "studies": [o.as_dict() for o in outcomes],
                "refused": [p.as_dict() for p in found.problems],
                "skipped": [p.as_dict() for p in found.skipped],
                "received": sum(o.status == "received" for o in outcomes),
                "replayed": sum(o.status == "replayed" for o in outcomes),
                "rejected": sum(o.status == "rejected" for o in outcomes),
            }
        )
    else:
        _summary(files, found, outcomes)
    if importer.failed(found, outcomes):
        raise SystemExit(2)


def _summary(files: list[Path], found: Any, outcomes: list[Any]) -> None:
    from medarchive.capture.models import ReviewState

    if outcomes:
        table = Table("StudyInstanceUID", "图像数", "电子文件号", "结果", "审核")
        table.columns[0].overflow = "fold"
        marks = {"received": "[green]已接收[/]", "replayed": "[yellow]已存在[/]", "rejected": "[red]不合格[/]"}
        for o in outcomes:
            review = ReviewState(o.review).label if o.review else ""
            if o.errors:
                review = f"{review} ({o.errors} 项错误)"
            table.add_row(
                o.study_uid,
                str(o.instances),
                o.record.electronic_no if o.record is not None else "",
                marks[o.status],
                escape(str(review) if o.status != "rejected" else o.problem),
            )
        console.print(table)
    for problem in found.problems:
        console.print(f"[red]✗[/] {escape(str(problem.path))}: {escape(problem.message)}", highlight=False)
    for skipped in found.skipped:
        console.print(f"[yellow]↷[/] {escape(str(skipped.path))}: {escape(skipped.message)}", highlight=False)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("received", "replayed", "rejected")}
    console.print(
        f"{len(files)} files: {counts['received']} studies captured, {counts['replayed']} already in, "
        f"{counts['rejected']} rejected; {len(found.problems)} files refused, {len(found.skipped)} skipped",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """`listen dicom` is added to the listen group when this module is imported; this adds import-dicom."""
    app.command("import-dicom")(import_dicom)
