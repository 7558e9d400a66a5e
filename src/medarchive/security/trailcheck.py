"""Verifying the audit trail against its head and the checkpoints outside the database, and
writing those checkpoints (ADR 0013).

`verify_chain` walks every entry and compares every checkpoint with the entry it names.
`write_checkpoint` (the worker, `medarchive audit checkpoint`) checks only what was appended
since the last checkpoint, then appends a new one; anything odd falls back to the full walk,
which names the first bad sequence. A checkpoint is only written for a chain that verified.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils.translation import gettext, gettext_lazy

from medarchive.core import clock
from medarchive.core.errors import ConfigurationError
from medarchive.security import audit, chain
from medarchive.security.auditkeys import AuditKeyRing
from medarchive.security.checkpoints import UNSIGNED_NAME, Checkpoint, CheckpointFile, ReadResult
from medarchive.security.models import AuditEntry

logger = logging.getLogger(__name__)

NOTICES = {
    "no_checkpoints": gettext_lazy(
        "There are no audit checkpoints in %(directory)s yet: before the first one, a cut-off tail or a "
        "rewritten trail cannot be detected."
    ),
    "checkpoint_torn": gettext_lazy("The last audit checkpoint was cut short by an interrupted write and was ignored."),
    "checkpoint_not_written": gettext_lazy("No audit checkpoint could be written to %(directory)s: %(error)s"),
    "no_audit_key": gettext_lazy("The audit key is not available: %(error)s"),
    "unknown_signer": gettext_lazy("Audit checkpoints signed by %(signers)s cannot be checked here."),
    "not_recorded": gettext_lazy("This verification could not be recorded in the audit trail itself."),
}


@dataclass(frozen=True)
class Notice:
    """A warning: the chain may be intact, but something limits what the check could prove."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return str(NOTICES[self.code]) % self.params

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class VerifyReport:
    """What `audit verify` found: the same object for the service, the API, the CLI and the web page."""

    chain: chain.ChainReport
    warnings: tuple[Notice, ...] = ()
    checkpoint: Checkpoint | None = None  # the latest checkpoint after this run
    checkpoint_written: bool = False
    # Read entries sealed into the chain just before it was walked, and those that arrived since
    # (waiting for the sealer, ADR 0020), with when the oldest of them was written.
    sealed_now: int = 0
    unsealed: int = 0
    oldest_unsealed: str | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok

    @property
    def checked(self) -> int:
        return self.chain.checked

    @property
    def first_bad_seq(self) -> int | None:
        return self.chain.first_bad_seq

    @property
    def code(self) -> str | None:
        return self.chain.code

    @property
    def problem(self) -> str | None:
        """The problem in the active language."""
        return self.chain.finding.message(gettext) if self.chain.finding else None

    @property
    def checkpoints_checked(self) -> int:
        return self.chain.checkpoints_checked

    def with_warning(self, notice: Notice) -> VerifyReport:
        return dataclasses.replace(self, warnings=(*self.warnings, notice))

    def with_tail(self, *, sealed_now: int, unsealed: int, oldest_unsealed: str | None) -> VerifyReport:
        return dataclasses.replace(self, sealed_now=sealed_now, unsealed=unsealed, oldest_unsealed=oldest_unsealed)

    def audit_details(self) -> dict[str, Any]:
        """What the `audit:verify` entry records: facts, not text in someone's language."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "code": self.code,
            "checkpoints_checked": self.checkpoints_checked,
            "checkpoint": self.checkpoint.seq if self.checkpoint_written and self.checkpoint else None,
            "warnings": [w.code for w in self.warnings],
            "sealed_now": self.sealed_now,
            "unsealed": self.unsealed,
        }

    def as_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "code": self.code,
            "problem": self.problem,
            "checkpoints_checked": self.checkpoints_checked,
            "last_seq": self.chain.last_seq,
            "keyed_from": self.chain.keyed_from,
            "warnings": [w.as_dict() for w in self.warnings],
            "sealed_now": self.sealed_now,
            "unsealed": self.unsealed,
            "oldest_unsealed": self.oldest_unsealed,
            "checkpoint": None
            if cp is None
            else {"seq": cp.seq, "at": cp.at_text, "signer": cp.signer, "written": self.checkpoint_written},
        }


def _entries(start: int, up_to: int) -> Iterator[chain.ChainEntry]:
    rows = AuditEntry.objects.filter(seq__gte=start, seq__lte=up_to).order_by("seq")
    for row in rows.iterator(chunk_size=2000):
        yield chain.ChainEntry(
            seq=row.seq,
            at=row.at,
            actor_id=row.actor_id,
            actor_name=row.actor_name,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            result=row.result,
            source=row.source,
            details=row.details,
            algorithm=row.algorithm,
            prev_hash=row.prev_hash,
            entry_hash=row.entry_hash,
            key_id=row.key_id,
        )


def _max_seq() -> int:
    return int(AuditEntry.objects.aggregate(m=Max("seq"))["m"] or 0)


def _beyond_head() -> chain.Finding | None:
    """Entries past the head: the head was moved back. The maximum is read before the head,
    so an append committing in between never looks like one."""
    last = _max_seq()
    head = audit.read_head()
    if head is not None and last > head.seq:
        return chain.Finding("entries_beyond_head", head.seq + 1, {"head": head.seq, "last": last})
    return None


def _ring(*, create: bool) -> tuple[AuditKeyRing | None, Notice | None]:
    try:
        ring = audit.ensure_ring() if create else audit.find_ring()
    except ConfigurationError as exc:  # verify still reports what it can (entries under an unknown key)
        return None, Notice("no_audit_key", {"error": exc.message})
    if ring is None:
        path = settings.CONFIG.audit_key_file
        return None, Notice("no_audit_key", {"error": f"{path} does not exist"})
    return ring, None


def _file() -> CheckpointFile:
    return CheckpointFile(settings.CONFIG.audit_checkpoint_dir)


def _notices(read: ReadResult, report: chain.ChainReport, head: chain.Head | None) -> list[Notice]:
    notices = []
    if not read.checkpoints and not read.problems and (report.last_seq > 0 or (head and head.seq > 0)):
        notices.append(Notice("no_checkpoints", {"directory": str(settings.CONFIG.audit_checkpoint_dir)}))
    if read.torn:
        notices.append(Notice("checkpoint_torn"))
    unknown = sorted(read.signers - {UNSIGNED_NAME})
    if unknown:
        notices.append(Notice("unknown_signer", {"signers": ", ".join(unknown)}))
    return notices


def _append(ring: AuditKeyRing, report: chain.ChainReport, head: chain.Head) -> tuple[Checkpoint | None, Notice | None]:
    directory = settings.CONFIG.audit_checkpoint_dir
    try:
        cp = _file().append(
            seq=report.last_seq,
            mac=report.last_mac,
            at=clock.now(),
            keyed_from=head.keyed_from,
            key_id=ring.active_key_id,
            key=ring.active_key,
            algorithm=settings.CONFIG.audit_hash,
        )
    except OSError as exc:
        logger.warning("audit checkpoint not written to %s: %s", directory, exc)
        return None, Notice("checkpoint_not_written", {"directory": str(directory), "error": exc.strerror or exc})
    return cp, None


def verify_chain(*, write_checkpoint: bool = False) -> VerifyReport:
    """Walk the whole chain; with `write_checkpoint`, append a checkpoint when it verified."""
    ring, key_notice = _ring(create=write_checkpoint)
    keys = ring.keys() if ring else {}
    read = _file().read(keys)
    head = audit.read_head()
    # Up to the head as read now: entries appended during the walk are not "removed" ones.
    up_to = head.seq if head else _max_seq()
    report = chain.verify(_entries(1, up_to), keys=keys, head=head, checkpoints=read.checkpoints)
    if head is not None:
        report = report.with_finding(_beyond_head())
    report = report.with_finding(chain.earliest(read.problems))
    notices = _notices(read, report, head)
    if key_notice:
        notices.append(key_notice)
    latest, written = read.last, False
    if write_checkpoint and report.ok and ring is not None and head is not None:
        cp, notice = _append(ring, report, head)
        if cp is not None:
            latest, written = cp, True
        if notice:
            notices.append(notice)
    if not report.ok:
        logger.error("audit trail verification failed: %s", report.problem)
    return VerifyReport(report, tuple(notices), latest, written)


def write_checkpoint() -> VerifyReport:
    """Check what was appended since the last checkpoint and append a new one."""
    ring = audit.ensure_ring()
    read = _file().read(ring.keys())
    last, head = read.last, audit.read_head()
    if read.problems or read.torn or last is None or head is None or last.seq > head.seq:
        return verify_chain(write_checkpoint=True)
    start = max(last.seq, 1)
    report = chain.verify(
        _entries(start, head.seq),
        keys=ring.keys(),
        head=head,
        checkpoints=[last],
        start=start,
        start_prev=None if last.seq else chain.GENESIS,
    ).with_finding(_beyond_head())
    if not report.ok:
        return verify_chain(write_checkpoint=True)  # names the first bad sequence over the whole trail
    if last.seq == head.seq:
        return VerifyReport(report, (), last, False)
    cp, notice = _append(ring, report, head)
    return VerifyReport(report, (notice,) if notice else (), cp or last, cp is not None)
