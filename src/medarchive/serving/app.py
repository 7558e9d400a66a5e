"""`medarchive serve`: gunicorn's arbiter with waitress workers (serving/worker.py), configured from the
command line and MEDARCHIVE_* settings rather than a gunicorn config file."""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

WORKER = "medarchive.serving.worker.WaitressWorker"


def default_workers() -> int:
    """One process per core (at least two, so a restarting worker never leaves nobody answering)."""
    return max(2, os.cpu_count() or 1)


def _worker_exit(server: Any, worker: Any) -> None:
    """A worker leaving (stop, reload, max requests) writes the reads it queued and seals what it wrote
    (ADR 0020)."""
    from medarchive.security import readlog, sealer  # noqa: PLC0415 - Django is set up in the worker

    if readlog.running():
        readlog.stop()
    if sealer.running():
        sealer.stop()


class Server(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            if name in self.cfg.settings:  # settings newer than the oldest gunicorn we accept are skipped
                self.cfg.set(name, value)

    def load(self) -> Any:
        from medarchive.wsgi import application  # noqa: PLC0415 - each worker sets Django up itself

        return application


def run(*, host: str, port: int, workers: int, threads: int, pid_file: str | None = None, timeout: int = 120) -> None:
    Server(
        {
            "bind": [f"{host}:{port}"],
            "workers": workers,
            "threads": threads,
            "worker_class": WORKER,
            "timeout": timeout,  # a worker silent this long (no heartbeat) is restarted
            "graceful_timeout": 30,  # on stop or reload, in-flight requests get this long
            "keepalive": 30,
            "preload_app": False,  # each worker opens its own database connections after the fork
            "worker_exit": _worker_exit,
            "proc_name": "medarchive",
            "pidfile": pid_file,  # `kill -HUP $(cat FILE)` reloads, `kill -TERM` stops, both gracefully
            "control_socket_disable": True,  # no gunicornc socket in the home directory
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
        }
    ).run()
