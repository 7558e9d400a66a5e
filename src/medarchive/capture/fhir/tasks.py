"""Periodic jobs of the FHIR endpoint (the worker collects `JOBS` from every stage's tasks module)."""

from __future__ import annotations

import datetime as dt

from medarchive.capture.fhir import services
from medarchive.core.jobs import Periodic


def purge_binaries() -> str:
    return f"{services.purge_expired_binaries()} expired Binaries deleted"


def attachment_sha1() -> str:
    return f"SHA-1 computed for {services.backfill_digests()} files"


JOBS = [
    Periodic("fhir.purge_binaries", dt.timedelta(hours=1), purge_binaries),
    Periodic("fhir.attachment_sha1", dt.timedelta(hours=6), attachment_sha1),
]
