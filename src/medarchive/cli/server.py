"""serve and worker."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from medarchive.cli import runtime
from medarchive.cli.output import console


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="Server processes (default: one per core, at least 2).", min=1)
    ] = None,
    threads: Annotated[int, typer.Option(help="Request threads per process.", min=1)] = 4,
    pid_file: Annotated[
        str | None, typer.Option(help="Write the main process id here (HUP reloads, TERM stops).")
    ] = None,
) -> None:
    """Serve the web UI and the REST API: gunicorn processes running waitress (HUP reloads, TERM stops
    gracefully)."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.serving import app

    count = workers or app.default_workers()
    console.print(f"medarchive on http://{host}:{port}/  ({count} processes x {threads} threads; Ctrl+C to stop)")
    app.run(host=host, port=port, workers=count, threads=threads, pid_file=pid_file)


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run the due jobs once and exit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Run every job now, due or not.")] = False,
    interval: Annotated[int, typer.Option(help="Seconds between looks for due jobs.")] = 60,
) -> None:
    """Run scheduled jobs: fixity audits, recovery of interrupted writes, session clean-up."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.core.jobs import run_due
    from medarchive.security import context

    context.source.set("worker")
    while True:
        for name, outcome in run_due(force=force):
            console.print(f"{name}: {outcome}", highlight=False)
        if once:
            return
        force = False
        time.sleep(interval)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("worker")(worker)
