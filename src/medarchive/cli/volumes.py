"""volumes commands: assemble items into 卷 and archive them."""

from __future__ import annotations

from typing import Annotated

import typer

from medarchive.cli import runtime
from medarchive.cli.options import AsUser, JsonOut
from medarchive.cli.output import console, emit_json

volumes_app = typer.Typer(help="Volumes (卷) for classes filed by volume: 科研, 基建, 设备.", no_args_is_help=True)


def _volume_json(volume: object) -> dict[str, object]:
    return {
        key: str(getattr(volume, key)) if getattr(volume, key) is not None else None
        for key in ("id", "title", "year", "retention", "volume_number", "archival_code", "item_count")
    }


@volumes_app.command("create")
@runtime.handles_errors
def volumes_create(
    as_user: AsUser,
    class_code: Annotated[str, typer.Option("--class", help="A class filed by volume, e.g. KJ.")],
    department: Annotated[str, typer.Option(help="Department code.")],
    title: Annotated[str, typer.Option(help="案卷题名.")],
    year: Annotated[int, typer.Option(help="年度.")],
    retention: Annotated[str | None, typer.Option(help="保管期限 code (default: the class's).")] = None,
    json_out: JsonOut = False,
) -> None:
    """Open a new volume."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.archiving.volumes import create_volume

    volume = create_volume(
        actor=runtime.actor(as_user),
        class_code=class_code,
        department_code=department,
        title=title,
        year=year,
        retention=retention,
    )
    if json_out:
        emit_json(_volume_json(volume))
    else:
        console.print(f"[green]✓[/] volume {volume.pk} {volume.title}")


@volumes_app.command("add")
@runtime.handles_errors
def volumes_add(volume_id: str, record_ids: list[str], as_user: AsUser) -> None:
    """Put records into a volume."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.archiving.volumes import add_to_volume

    user = runtime.actor(as_user)
    for record_id in record_ids:
        record = add_to_volume(record_id, volume_id, actor=user)
        console.print(f"[green]✓[/] {record.electronic_no} → volume {volume_id}")


@volumes_app.command("archive")
@runtime.handles_errors
def volumes_archive(volume_id: str, as_user: AsUser, json_out: JsonOut = False) -> None:
    """Archive a volume and every item in it (all items must be accepted)."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.archiving.volumes import archive_volume

    volume = archive_volume(volume_id, actor=runtime.actor(as_user))
    if json_out:
        emit_json(_volume_json(volume))
    else:
        console.print(f"[green]✓[/] volume {volume.archival_code}: {volume.item_count} items archived")


def register(app: typer.Typer) -> None:
    app.add_typer(volumes_app, name="volumes")
