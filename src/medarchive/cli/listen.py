"""`medarchive listen PROTOCOL`: long-running protocol listeners (HL7 v2 MLLP, DICOM C-STORE)."""

from __future__ import annotations

import typer

listen = typer.Typer(help="Run a protocol listener that captures what hospital systems send.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(listen, name="listen")
