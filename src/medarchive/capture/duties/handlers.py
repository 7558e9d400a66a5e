"""What duties do when a record moves at the door (connected in apps.py)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from medarchive.capture.duties import services

log = logging.getLogger(__name__)


def on_intake_changed(sender: Any, *, intake: Any, step: str, **kwargs: Any) -> None:
    """Runs inside the record's transaction, so an obligation is fulfilled exactly when the record
    commits. A failure here is logged and rolled back to a savepoint: bookkeeping of duties must
    never refuse a record (the worker's reconcile job catches up)."""
    if step not in ("received", "resubmitted", "withdrawn"):
        return
    record = intake.record
    try:
        with transaction.atomic():
            if step != "withdrawn":
                services.on_record_received(record)
            else:
                services.on_record_withdrawn(record)
    except Exception:
        log.exception("duties: could not update obligations for record %s (%s)", record.pk, step)
