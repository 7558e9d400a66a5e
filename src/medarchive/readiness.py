"""Readiness: can this process serve? Database, blob store, audit sealer and job runner, each checked
cheaply on every call (a load balancer asks every few seconds). Composed here, at the top, because it
looks into several stages; `/api/v1/ready` and the operator page show it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Max

from medarchive.core import clock

AUDIT_LAG_LIMIT = dt.timedelta(seconds=60)  # a read unsealed longer than this: the sealers are stuck
JOBS_IDLE = dt.timedelta(hours=2)  # no periodic job started for this long: no worker is running


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    state: str  # a stable word: ok | unreachable | not_writable | lagging | idle ...
    required: bool = True  # a failed required check makes the process not ready


def _database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        return Check("database", False, "unreachable")
    return Check("database", True, "ok")


def _store() -> Check:
    from medarchive.preservation.services import blob_store  # noqa: PLC0415

    storage: Any = blob_store().storage
    try:
        if hasattr(storage, "root"):  # local: the directories exist and this process may write them
            ok = all(os.access(path, os.W_OK) for path in (storage.root, storage.staging))
            return Check("store", ok, "ok" if ok else "not_writable")
        storage.client.head_bucket(Bucket=storage.bucket)
    except Exception:
        return Check("store", False, "unreachable")
    return Check("store", True, "ok")


def _audit_tail() -> Check:
    from medarchive.security import audit  # noqa: PLC0415

    try:
        _, oldest = audit.unsealed()
    except Exception:
        return Check("audit_sealer", False, "unreachable")
    lagging = oldest is not None and clock.now() - oldest > max(
        AUDIT_LAG_LIMIT, dt.timedelta(milliseconds=10 * settings.CONFIG.audit_seal_ms)
    )
    return Check("audit_sealer", not lagging, "lagging" if lagging else "ok")


def _jobs() -> Check:
    from medarchive.core.models import JobRun  # noqa: PLC0415

    try:
        last = JobRun.objects.aggregate(last=Max("last_started"))["last"]
    except Exception:
        return Check("jobs", False, "unreachable", required=False)
    idle = last is None or clock.now() - last > JOBS_IDLE
    # Optional on one machine (the demo runs no worker); an operator still wants to see it.
    return Check("jobs", not idle, "idle" if idle else "ok", required=False)


def checks() -> list[Check]:
    found = [_database()]
    if found[0].ok:
        found += [_store(), _audit_tail(), _jobs()]
    return found


def ready(found: list[Check]) -> bool:
    return all(c.ok for c in found if c.required)
