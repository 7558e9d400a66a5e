"""The `medarchive` command. One module per area; every command calls the same services as the web app.

Django is set up after the global options are read, so `--data-dir` decides which
database, blob store and key file a command works on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from medarchive.cli import app_state
from medarchive.cli.output import fail

app = typer.Typer(
    name="medarchive",
    help="Hospital archive management: capture, archive, preserve and serve hospital records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def main_options(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Data directory (env MEDARCHIVE_DATA_DIR).", envvar="MEDARCHIVE_DATA_DIR"),
    ] = None,
) -> None:
    if data_dir is not None:
        os.environ["MEDARCHIVE_DATA_DIR"] = str(data_dir)
    app_state.data_dir_option = data_dir


def _register() -> None:
    from medarchive.cli import (
        admin,
        batch,
        demo,
        dicom,
        duties,
        hl7,
        listen,
        records,
        review,
        server,
        storage,
        volumes,
    )

    # hl7 and dicom add their commands to the `listen` group before it is registered.
    for module in (admin, records, review, volumes, storage, server, demo, batch, hl7, dicom, duties, listen):
        module.register(app)


def main() -> None:
    _register()
    try:
        app()
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    sys.exit(0)
