"""Periodic jobs: each stage lists its own in `tasks.py`; the worker runs whichever are due.

A job is due when `every` has passed since it last started. The JobRun row is claimed
under a row lock, so several workers on one PostgreSQL never run the same job twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from django.apps import apps
from django.db import transaction
from django.utils.module_loading import module_has_submodule

from medarchive.core import clock
from medarchive.core.models import JobRun


@dataclass(frozen=True)
class Periodic:
    name: str
    every: dt.timedelta
    run: Callable[[], str]


def all_jobs() -> list[Periodic]:
    """The `JOBS` of every medarchive stage's `tasks` module (found through the app registry,
    so the shared kernel does not import the stages)."""
    jobs: list[Periodic] = []
    for app in apps.get_app_configs():
        if app.name.startswith("medarchive.") and module_has_submodule(app.module, "tasks"):
            jobs.extend(getattr(import_module(f"{app.name}.tasks"), "JOBS", []))
    return jobs


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
