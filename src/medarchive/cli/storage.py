"""fixity, audit, keys and storage maintenance commands."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from medarchive.cli import runtime
from medarchive.cli.options import JsonOut
from medarchive.cli.output import console, emit_json, errors

fixity_app = typer.Typer(help="Fixity: decrypt and re-hash stored copies.", no_args_is_help=True)
audit_app = typer.Typer(help="The keyed, hash-chained audit trail and its checkpoints.", no_args_is_help=True)
keys_app = typer.Typer(help="Master keys for envelope encryption.", no_args_is_help=True)
storage_app = typer.Typer(help="Blob store maintenance.", no_args_is_help=True)

AsUser = Annotated[str | None, typer.Option("--as", help="Act as this user (default: the local operator).")]


def _progress(label: str, enabled: bool) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )


@fixity_app.command("verify")
@runtime.handles_errors
def fixity_verify(
    as_user: AsUser = None,
    record: Annotated[str | None, typer.Option(help="Only the files of this record.")] = None,
    sample: Annotated[int | None, typer.Option(help="Check a random sample of N stored copies.")] = None,
    json_out: JsonOut = False,
) -> None:
    """Decrypt and re-hash every stored copy; exit 1 and name each bad file on any mismatch."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.preservation.services import verify_fixity

    with _progress("verifying", not json_out) as progress:
        task = progress.add_task("verifying", total=None)
        report = verify_fixity(
            actor=runtime.actor(as_user),
            record_id=record,
            sample=sample,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if json_out:
        emit_json(report.as_dict())
    else:
        for bad in report.failed:
            names = ", ".join(bad.files) or bad.address
            errors.print(f"[bold red]✗[/] {escape(names)}: {escape('; '.join(bad.problems))}", highlight=False)
        colour = "green" if report.ok else "red"
        console.print(f"[{colour}]{report.checked} checked, {len(report.failed)} failed[/]")
    if not report.ok:
        raise SystemExit(1)


def _print_check(report: Any) -> None:
    for warning in report.warnings:
        errors.print(f"[yellow]![/] {escape(warning.message)}", highlight=False)
    if not report.ok:
        errors.print(f"[bold red]✗[/] {escape(str(report.problem))}", highlight=False)
        return
    cp = report.checkpoint
    note = ""
    if cp is not None:
        note = f"; checkpoint #{cp.seq} {'written' if report.checkpoint_written else 'unchanged'} ({cp.signer})"
    tail = f"; {report.sealed_now} read entries sealed first" if report.sealed_now else ""
    if report.unsealed:
        tail += f"; {report.unsealed} arrived since, oldest {report.oldest_unsealed}"
    console.print(
        f"[green]✓[/] audit chain intact ({report.checked} entries, "
        f"{report.checkpoints_checked} checkpoints checked{note}{tail})"
    )


@audit_app.command("verify")
@runtime.handles_errors
def audit_verify(as_user: AsUser = None, json_out: JsonOut = False) -> None:
    """Walk the whole chain against its head and every checkpoint; exit 1 naming the first bad entry.
    When it verifies, a checkpoint is appended outside the database."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.security.services import verify_audit

    report = verify_audit(actor=runtime.actor(as_user))
    if json_out:
        emit_json(report.as_dict())
    else:
        _print_check(report)
    if not report.ok:
        raise SystemExit(1)


@audit_app.command("checkpoint")
@runtime.handles_errors
def audit_checkpoint(as_user: AsUser = None, json_out: JsonOut = False) -> None:
    """Check the entries since the last checkpoint and append a new one; exit 1 on tampering."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.security.services import checkpoint_audit

    report = checkpoint_audit(actor=runtime.actor(as_user))
    if json_out:
        emit_json(report.as_dict())
    else:
        _print_check(report)
    if not report.ok:
        raise SystemExit(1)


@audit_app.command("rotate-key")
@runtime.handles_errors
def audit_rotate_key(as_user: AsUser = None, json_out: JsonOut = False) -> None:
    """Make a new audit key active; old keys stay in the key file so old entries still verify."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.security.services import rotate_audit_key

    key_id, key_ids = rotate_audit_key(actor=runtime.actor(as_user))
    if json_out:
        emit_json({"active_key": key_id, "keys": list(key_ids)})
    else:
        console.print(f"[green]✓[/] audit key {key_id} active ({len(key_ids)} keys in the ring)")


@keys_app.command("rotate")
@runtime.handles_errors
def keys_rotate(as_user: AsUser = None, json_out: JsonOut = False) -> None:
    """Make a new master key active and re-wrap every data key (content is not re-encrypted)."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.preservation.services import rotate_keys

    with _progress("re-wrapping", not json_out) as progress:
        task = progress.add_task("re-wrapping", total=None)
        key_id, count = rotate_keys(
            actor=runtime.actor(as_user),
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if json_out:
        emit_json({"active_key": key_id, "rewrapped": count})
    else:
        console.print(f"[green]✓[/] master key {key_id} active; {count} data keys re-wrapped")


@storage_app.command("recover")
@runtime.handles_errors
def storage_recover(
    grace: Annotated[
        int | None,
        typer.Option(help="Seconds an untouched write is given (default MEDARCHIVE_STAGING_GRACE_SECONDS)."),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Remove debris of interrupted writes (staging files, blobs no record will use)."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.preservation.services import recover

    report = recover(grace_seconds=grace)
    if json_out:
        emit_json(
            {
                "staging_removed": report.staging_removed,
                "pending_reclaimed": report.pending_reclaimed,
                "intents_withdrawn": report.intents_withdrawn,
            }
        )
    else:
        console.print(
            f"[green]✓[/] {report.staging_removed} staging files, "
            f"{len(report.pending_reclaimed)} unclaimed blobs and "
            f"{len(report.intents_withdrawn)} objects of interrupted writes removed"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(fixity_app, name="fixity")
    app.add_typer(audit_app, name="audit")
    app.add_typer(keys_app, name="keys")
    app.add_typer(storage_app, name="storage")
