"""The background sealer: one daemon thread per server or worker process that moves unsealed read
entries into the audit chain (audit.seal_pending) every `audit_seal_seconds` (ADR 0020).

A process that has not started it (the CLI, the test suite) seals each read at once instead, so
an entry is never left unsealed by a process that will not come back to it. The thread survives
errors (logged, retried at the next tick) and is restarted in a forked child, which inherits the
flag but not the thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict[str, object] = {"pid": None, "thread": None, "stop": None, "seal": None}


def running() -> bool:
    """Whether this process has a live sealer thread (a child forked from a process that had one
    does not, until `start` runs in it)."""
    thread = _state["thread"]
    return _state["pid"] == os.getpid() and isinstance(thread, threading.Thread) and thread.is_alive()


def start(interval: float, seal: Callable[[], int]) -> None:
    """Start this process's sealer (idempotent): `seal` (audit.seal_pending) every `interval` seconds,
    at once for what earlier processes left."""
    with _lock:
        if running():
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=_loop, args=(interval, stop, seal), name="medarchive-audit-sealer", daemon=True
        )
        _state.update(pid=os.getpid(), thread=thread, stop=stop, seal=seal)
        thread.start()


def stop(timeout: float = 5.0) -> None:
    """Stop the thread after a last pass (graceful shutdown: nothing this process wrote stays unsealed)."""
    with _lock:
        thread, event, seal = _state["thread"], _state["stop"], _state["seal"]
        _state.update(pid=None, thread=None, stop=None, seal=None)
    if isinstance(event, threading.Event) and isinstance(thread, threading.Thread):
        event.set()
        thread.join(timeout)
    if callable(seal):
        seal()


def _loop(interval: float, stop: threading.Event, seal: Callable[[], int]) -> None:
    from django.db import connection  # noqa: PLC0415 - the thread starts after Django is set up

    try:
        while True:
            try:
                seal()
            except Exception:  # a locked or restarting database: try again at the next tick
                log.exception("sealing the audit tail failed; retrying in %.1f s", interval)
                connection.close()
            if stop.wait(interval):
                return
    finally:
        connection.close()
