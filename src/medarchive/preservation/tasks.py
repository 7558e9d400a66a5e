"""Scheduled preservation work: fixity audits (PRE-02) and recovery of interrupted writes."""

from __future__ import annotations

import datetime as dt

from medarchive.core.jobs import Periodic
from medarchive.preservation import services

FIXITY_SAMPLE = 200


def fixity_sample() -> str:
    report = services.verify_fixity(actor=None, sample=FIXITY_SAMPLE)
    return f"{report.checked} checked, {len(report.failed)} failed"


def recover_writes() -> str:
    report = services.recover()
    return f"{report.staging_removed} staging, {len(report.pending_reclaimed)} pending reclaimed"


JOBS = [
    Periodic("preservation.fixity_sample", dt.timedelta(hours=24), fixity_sample),
    Periodic("preservation.recover_writes", dt.timedelta(minutes=10), recover_writes),
]
