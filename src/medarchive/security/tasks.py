"""Scheduled security housekeeping: expired sessions, audit checkpoints."""

from __future__ import annotations

import datetime as dt

from django.contrib.sessions.models import Session

from medarchive.core import clock
from medarchive.core.errors import IntegrityFailure
from medarchive.core.jobs import Periodic
from medarchive.security import trailcheck

# How long a cut-off tail can go unseen: a checkpoint outside the database every this often.
CHECKPOINT_EVERY = dt.timedelta(minutes=10)


def clear_expired_sessions() -> str:
    deleted, _ = Session.objects.filter(expire_date__lt=clock.now()).delete()
    return f"{deleted} expired sessions removed"


def audit_checkpoint() -> str:
    """Check the entries appended since the last checkpoint, then write one. Not audited itself:
    an entry per checkpoint would only ever move the head the checkpoint just recorded."""
    report = trailcheck.write_checkpoint()
    if not report.ok:
        raise IntegrityFailure(
            f"audit trail tampered with: {report.chain.problem}",
            code=report.code or "audit_tampered",
            first_bad_seq=report.first_bad_seq,
        )
    cp = report.checkpoint
    where = f"#{cp.seq}" if cp else "none"
    warnings = "".join(f"; {w.code}" for w in report.warnings)
    return f"checkpoint {where} {'written' if report.checkpoint_written else 'unchanged'}{warnings}"


JOBS = [
    Periodic("security.clear_expired_sessions", dt.timedelta(hours=1), clear_expired_sessions),
    Periodic("security.audit_checkpoint", CHECKPOINT_EVERY, audit_checkpoint),
]
