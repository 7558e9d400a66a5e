"""Periodic jobs: each stage lists its own in `tasks.py`; the worker runs whichever are due.

A job is due when `every` has passed since it last started. The JobRun row is claimed
under a row lock, so several workers on one PostgreSQL never run the same job twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from medarchive.core import clock
from medarchive.core.models import JobRun


@dataclass(frozen=True)
class Periodic:
    name: str
    every: dt.timedelta
    run: Callable[[], str]


def all_jobs() -> list[Periodic]:
    from medarchive.preservation.tasks import JOBS as preservation_jobs
    from medarchive.security.tasks import JOBS as security_jobs

    return [*preservation_jobs, *security_jobs]


def _claim(job: Periodic, *, force: bool) -> bool:
    now = clock.now()
    with transaction.atomic():
        JobRun.objects.bulk_create([JobRun(name=job.name)], ignore_conflicts=True)
        row = JobRun.objects.select_for_update().get(name=job.name)
        if not force and row.last_started is not None and now - row.last_started < job.every:
            return False
        row.last_started = now
        row.save(update_fields=["last_started"])
    return True


def run_due(*, force: bool = False) -> list[tuple[str, str]]:
    """Run every due job once; returns (name, outcome) for those that ran."""
    ran = []
    for job in all_jobs():
        if not _claim(job, force=force):
            continue
        try:
            outcome = job.run()
        except Exception as exc:  # one failing job must not stop the others; the outcome records it
            outcome = f"failed: {type(exc).__name__}: {exc}"
        JobRun.objects.filter(name=job.name).update(last_finished=clock.now(), last_outcome=outcome)
        ran.append((job.name, outcome))
    return ran
