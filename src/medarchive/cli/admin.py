"""init, department, user and token commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from medarchive.cli import runtime
from medarchive.cli.output import console, emit_json, errors, fail

department_app = typer.Typer(help="Hospital departments.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for hospital systems and scripts.", no_args_is_help=True)


def initialise() -> dict[str, Any]:
    """Create tables, the fonds, the shipped classification scheme and retention table, the key files
    and a checkpoint of the audit chain (which anchors the switch-over to the keyed chain); make every
    file of the archive owner-only again (`repaired` lists what had other modes)."""
    runtime.setup()
    from django.conf import settings

    from medarchive.core import private

    # Before the database is opened: SQLite gives a new -wal/-shm the mode of the database file.
    repaired = private.repair(_private_paths(settings.CONFIG))
    runtime.setup(migrate=True)
    from medarchive.archiving.services import install_defaults
    from medarchive.core.services import ensure_fonds
    from medarchive.preservation.services import blob_store
    from medarchive.security.trailcheck import write_checkpoint

    runtime.check_durability()
    fonds = ensure_fonds()
    scheme, table = install_defaults(fonds)
    blob_store()  # creates the key file on first use
    report = write_checkpoint()  # creates the audit key file on first use
    for warning in report.warnings:
        errors.print(f"[yellow]![/] {escape(warning.message)}", highlight=False)
    if not report.ok:
        errors.print(f"[bold red]✗[/] {escape(str(report.problem))}", highlight=False)
    return {
        "data_dir": str(settings.CONFIG.data_dir),
        "fonds": fonds.code,
        "scheme": scheme.version,
        "retention_table": table.version,
        "database": settings.CONFIG.database_url.split("@")[-1],
        "repaired": [r.as_dict() for r in repaired],
        "audit_checkpoint": report.checkpoint.seq if report.checkpoint else None,
    }


def _private_paths(config: Any) -> list[Path]:
    """What only the service may read: the data directory, the key files, the audit checkpoints and the SQLite database
    wherever they are configured (with the key file's lock and SQLite's -wal and -shm)."""
    paths = [config.data_dir, config.key_file, config.key_file.with_name(config.key_file.name + ".lock")]
    paths += [config.audit_key_file, config.audit_checkpoint_dir]
    if config.uses_sqlite:
        database = Path(config.database_url.removeprefix("sqlite:///"))
        paths += [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")]
    return paths


def init(json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Create (or bring up to date) the archive in the data directory. Safe to run again."""
    summary = initialise()
    if json_out:
        emit_json(summary)
        return
    for repair in summary["repaired"]:
        console.print(
            f"[yellow]![/] {escape(repair['path'])} was {repair['before']}: now {repair['after']} (owner only)",
            highlight=False,
        )
    console.print(
        f"[green]✓[/] archive ready in {summary['data_dir']} (fonds {summary['fonds']}, "
        f"scheme {summary['scheme']}, retention table {summary['retention_table']})"
    )


@department_app.command("add")
@runtime.handles_errors
def department_add(
    code: str, name: str, as_user: Annotated[str | None, typer.Option("--as", help="Act as this user.")] = None
) -> None:
    """Add a department: CODE NAME."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.core.services import add_department

    department = add_department(code, name, actor=runtime.actor(as_user))
    console.print(f"[green]✓[/] department {department.code} {department.name}")


@user_app.command("add")
@runtime.handles_errors
def user_add(
    username: str,
    role: Annotated[
        str,
        typer.Option(
            help="sysadmin, secadmin, auditor, archivist, officer, interface, clinician, researcher or viewer."
        ),
    ],
    department: Annotated[str | None, typer.Option(help="Department code.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    display_name: Annotated[str, typer.Option(help="Full name shown in the UI.")] = "",
    email: Annotated[str, typer.Option(help="Where reminders (due and overdue duties) are emailed.")] = "",
    as_user: Annotated[str | None, typer.Option("--as", help="Act as this user.")] = None,
) -> None:
    """Add a user account."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.security.services import add_user

    if not password_stdin:
        fail(
            "pass the password on stdin with --password-stdin (it must not appear in the process list)",
            code=2,
            field="--password-stdin",
        )
    password = sys.stdin.readline().rstrip("\r\n")
    user = add_user(
        username,
        actor=runtime.actor(as_user),
        role=role,
        password=password,
        department_code=department,
        display_name=display_name,
        email=email,
    )
    console.print(f"[green]✓[/] user {user.username} ({user.role})")


@token_app.command("create")
@runtime.handles_errors
def token_create(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for, e.g. the calling system.")] = "cli",
    scope: Annotated[list[str] | None, typer.Option(help="Limit to an action such as record:create.")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="Act as this user.")] = None,
) -> None:
    """Create an API token for USERNAME; the secret is printed once."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.security.services import create_token

    user = runtime.actor(username)
    token, raw = create_token(user, actor=runtime.actor(as_user), name=name, scopes=scope or [])
    if json_out:
        emit_json({"id": token.pk, "user": username, "name": name, "token": raw, "scopes": token.scopes})
    else:
        print(raw)


@token_app.command("revoke")
@runtime.handles_errors
def token_revoke(
    token_id: int, as_user: Annotated[str | None, typer.Option("--as", help="Act as this user.")] = None
) -> None:
    """Revoke an API token by id."""
    runtime.setup()
    from medarchive.security.services import revoke_token

    revoke_token(token_id, actor=runtime.actor(as_user))
    console.print(f"[green]✓[/] token {token_id} revoked")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    from medarchive.cli.aliases import alias_app

    department_app.add_typer(alias_app, name="alias")
    app.add_typer(department_app, name="department")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
