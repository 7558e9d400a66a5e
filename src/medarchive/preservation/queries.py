"""What the system administrator sees of storage: where blobs live, how much, which keys protect them,
and how the last fixity audits went. Never key material: only key ids and where keys come from."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, Sum

from medarchive.core import clock
from medarchive.core.models import JobRun
from medarchive.preservation.models import Blob, PreservationEvent
from medarchive.preservation.services import blob_store
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action

FIXITY_WINDOW_DAYS = 30


@dataclass(frozen=True)
class StorageStatus:
    backend: str
    location: str
    cipher: str
    blobs: int
    bytes_plain: int
    bytes_stored: int
    pending: int
    disk_free: int | None
    key_source: str
    active_key: str
    keys: list[dict[str, Any]] = field(default_factory=list)
    fixity_checked: int = 0
    fixity_failed: int = 0
    fixity_never: int = 0
    last_fixity_at: dt.datetime | None = None
    jobs: list[JobRun] = field(default_factory=list)


def storage_status(actor: User) -> StorageStatus:
    require(actor, Action.SYSTEM_CONFIGURE)
    config = settings.CONFIG
    totals = Blob.objects.filter(state=Blob.STORED).aggregate(
        n=Count("pk"), plain=Sum("size"), stored=Sum("stored_size"), last=Max("last_fixity_at")
    )
    by_key = {
        row["key_id"]: row["n"]
        for row in Blob.objects.filter(state=Blob.STORED).values("key_id").annotate(n=Count("pk"))
    }
    ring = blob_store().keyring
    since = clock.now() - dt.timedelta(days=FIXITY_WINDOW_DAYS)
    events = PreservationEvent.objects.filter(event_type=PreservationEvent.FIXITY_CHECK, at__gte=since)
    outcomes = events.aggregate(
        ok=Count("pk", filter=Q(outcome="success")), bad=Count("pk", filter=~Q(outcome="success"))
    )
    if config.storage == "s3":
        location = f"s3://{config.s3_bucket}/{config.s3_prefix}" + (
            f" ({config.s3_endpoint_url})" if config.s3_endpoint_url else ""
        )
        free = None
    else:
        location = str(config.blob_dir)
        try:
            free = shutil.disk_usage(config.blob_dir).free
        except OSError:
            free = None
    return StorageStatus(
        backend=config.storage,
        location=location,
        cipher=config.cipher,
        blobs=int(totals["n"] or 0),
        bytes_plain=int(totals["plain"] or 0),
        bytes_stored=int(totals["stored"] or 0),
        pending=Blob.objects.filter(state=Blob.PENDING).count(),
        disk_free=free,
        key_source="MEDARCHIVE_MASTER_KEY" if config.master_key else str(config.key_file),
        active_key=ring.active_key_id,
        keys=[
            {"id": key_id, "active": key_id == ring.active_key_id, "blobs": by_key.get(key_id, 0)}
            for key_id in ring.key_ids
        ],
        fixity_checked=int(outcomes["ok"] or 0),
        fixity_failed=int(outcomes["bad"] or 0),
        fixity_never=Blob.objects.filter(state=Blob.STORED, last_fixity_at__isnull=True).count(),
        last_fixity_at=totals["last"],
        jobs=list(JobRun.objects.order_by("name")),
    )
