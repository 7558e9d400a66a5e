"""Periodic duty jobs for the worker (core/jobs.py)."""

from __future__ import annotations

import datetime as dt

from medarchive.capture.duties import notify, services
from medarchive.core.jobs import Periodic


def open_and_reconcile() -> str:
    """Open this and last period's periodic obligations; match open ones against records that came
    in by a path that sends no signal."""
    opened = services.open_periodic()
    changed = services.reconcile()
    return f"{opened} periodic obligations opened, {changed} obligations updated from existing records"


def remind() -> str:
    return notify.send_reminders().summary()


# Hourly: the stage rows keep each reminder to once, so a frequent run only makes them timelier.
JOBS = [
    Periodic("duties.open_and_reconcile", dt.timedelta(hours=1), open_and_reconcile),
    Periodic("duties.remind", dt.timedelta(hours=1), remind),
]
