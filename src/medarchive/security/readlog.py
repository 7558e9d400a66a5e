"""Group commit for audited reads: a server process writes the read entries of concurrent requests in
one transaction (ADR 0020).

On SQLite every INSERT is a write transaction, and a durable one syncs the WAL: sixteen readers each
committing their own entry queue on the one write lock. Here a request hands its entry to this
process's writer thread and waits until the batch that holds it has committed, so the answer still
leaves only after its read is on record; a batch holds whatever arrived while the previous one was
being written. A failed batch fails every read in it, never lets one through unaudited.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

WAIT_SECONDS = 30.0  # a read waits this long for its entry to commit, then fails


@dataclass(eq=False)
class _Waiter:
    entry: Any
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


_cond = threading.Condition()
_queue: list[_Waiter] = []
_state: dict[str, Any] = {"pid": None, "thread": None, "stopping": False}


def running() -> bool:
    thread = _state["thread"]
    return _state["pid"] == os.getpid() and isinstance(thread, threading.Thread) and thread.is_alive()


def start() -> None:
    with _cond:
        if running():
            return
        thread = threading.Thread(target=_loop, name="medarchive-audit-reads", daemon=True)
        _state.update(pid=os.getpid(), thread=thread, stopping=False)
        _queue.clear()  # a forked child inherits its parent's queue, not its waiters' threads
        thread.start()


def stop(timeout: float = 10.0) -> None:
    """Let the writer finish what is queued, close its database connection and end."""
    with _cond:
        thread = _state["thread"]
        _state.update(pid=None, thread=None, stopping=True)
        _cond.notify_all()
    if isinstance(thread, threading.Thread):
        thread.join(timeout)


def submit(entry: Any) -> None:
    """Commit `entry` (an unsaved PendingAuditEntry) with the others of its batch; raises if it could not."""
    waiter = _Waiter(entry)
    with _cond:
        _queue.append(waiter)
        _cond.notify()
    if not waiter.done.wait(WAIT_SECONDS):
        raise TimeoutError("the audit log did not take the read entry in time")
    if waiter.error is not None:
        raise waiter.error


def _loop() -> None:
    from django.db import connection, transaction  # noqa: PLC0415 - the thread starts after Django is set up

    from medarchive.core import fastsql  # noqa: PLC0415

    while True:
        with _cond:
            while not _queue and not _state["stopping"]:
                _cond.wait()
            if not _queue:  # asked to stop, nothing left to write
                connection.close()
                return
            batch = _queue[:]
            _queue.clear()
        try:
            with transaction.atomic():
                fastsql.insert_many([w.entry for w in batch])
        except BaseException as exc:  # the readers fail with it; the thread carries on
            log.exception("writing %d audited reads failed", len(batch))
            for waiter in batch:
                waiter.error = exc
            connection.close()
        finally:
            for waiter in batch:
                waiter.done.set()
