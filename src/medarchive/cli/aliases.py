"""`medarchive department alias add|list|remove`: the hospital codes that name departments."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from medarchive.cli import runtime
from medarchive.cli.options import AsUser, JsonOut
from medarchive.cli.output import console, emit_json

alias_app = typer.Typer(
    help="Hospital codes that name a department (FHIR, HL7, DICOM): kept by archivists.", no_args_is_help=True
)

KINDS_HELP = "fhir-practice-setting, fhir-organization, hl7-location, hl7-facility or dicom-institution"


@alias_app.command("add")
@runtime.handles_errors
def alias_add(
    kind: Annotated[str, typer.Argument(help=KINDS_HELP)],
    key: Annotated[str, typer.Argument(help="The code (or, for dicom-institution, the name).")],
    department: Annotated[str, typer.Argument(help="The archive's department code.")],
    as_user: AsUser,
    system: Annotated[
        str, typer.Option(help="Code system (FHIR: required); hl7-location: the PV1-3.4 facility, blank for any.")
    ] = "",
    note: Annotated[str, typer.Option(help="Why, or where the code comes from.")] = "",
    json_out: JsonOut = False,
) -> None:
    """Map a hospital code to a department: KIND KEY DEPARTMENT."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.core import aliases

    alias = aliases.add_alias(kind, key, department, system=system, note=note, actor=runtime.actor(as_user))
    if json_out:
        emit_json(aliases.as_dict(alias))
        return
    under = f" ({alias.system})" if alias.system else ""
    console.print(
        f"[green]✓[/] alias {alias.pk}: {alias.kind} {escape(alias.key)}{escape(under)} → "
        f"{alias.department.code} {escape(alias.department.name)}"
    )


@alias_app.command("list")
@runtime.handles_errors
def alias_list(
    as_user: AsUser,
    kind: Annotated[str, typer.Option(help=KINDS_HELP)] = "",
    department: Annotated[str, typer.Option(help="Only aliases of this department code.")] = "",
    search: Annotated[str, typer.Option("--search", help="Text in the key, system or note.")] = "",
    json_out: JsonOut = False,
) -> None:
    """List the aliases."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.core import aliases

    rows = [
        aliases.as_dict(a)
        for a in aliases.list_aliases(runtime.actor(as_user), kind=kind, department=department, search=search)
    ]
    if json_out:
        emit_json(rows)
        return
    table = Table("id", "类型 kind", "代码系统 system", "代码 key", "部门 department", "备注 note")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["kind"]),
            escape(str(row["system"])),
            escape(str(row["key"])),
            f"{row['department']} {escape(str(row['department_name']))}",
            escape(str(row["note"])),
        )
    console.print(table)


@alias_app.command("remove")
@runtime.handles_errors
def alias_remove(alias_id: Annotated[int, typer.Argument(help="The alias id (see list).")], as_user: AsUser) -> None:
    """Remove an alias: messages with that code are refused again until it is mapped."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.core import aliases

    aliases.remove_alias(alias_id, actor=runtime.actor(as_user))
    console.print(f"[green]✓[/] alias {alias_id} removed")
