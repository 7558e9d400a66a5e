"""CLI commands of the hl7 area (being built; see issue #3)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this area's commands to `app` (or to `medarchive.cli.listen.listen`)."""
