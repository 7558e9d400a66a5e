"""serve and worker."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from medarchive.cli import runtime
from medarchive.cli.output import console


def serve_forever(host: str, port: int, threads: int = 8) -> None:
    runtime.setup()
    runtime.ensure_initialised()
    from waitress import serve as waitress_serve

    from medarchive.wsgi import application

    console.print(f"medarchive on http://{host}:{port}/  (Ctrl+C to stop)")
    waitress_serve(application, host=host, port=port, threads=threads, ident="medarchive", _quiet=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    threads: Annotated[int, typer.Option(help="Worker threads.")] = 8,
) -> None:
    """Serve the web UI and the REST API (waitress)."""
    serve_forever(host, port, threads)


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
