"""Options shared by the commands (one definition, so help texts never drift)."""

from __future__ import annotations

from typing import Annotated

import typer

AsUser = Annotated[str, typer.Option("--as", help="Act as this user (authorised and audited as them).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Stable machine-readable output (docs/cli.md).")]
