"""Storing, reading, checking and re-keying content. The only module that talks to the blob store.

Write protocol (crash safety, ADR 0005 as amended by ADR 0019): a staged blob is encrypted to
the store's staging area and synced; then one transaction inserts its row (`stored`), publishes
the object under a publish intent (intents.py) and writes the record. A writer killed at any
point leaves staging debris, an intent whose object has no row, or (while withdrawing) a pending
row with a dead owner; `recover()` removes all three, so no blob outlives a failed record.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

import medarchive
from medarchive.core import clock, fastsql
from medarchive.core.errors import Conflict, NotFound, ValidationError
from medarchive.core.ids import parse_uuid
from medarchive.preservation import intents, storage
from medarchive.preservation.blobstore import BlobStore, StagedBlob
from medarchive.preservation.crypto import CipherSuite
from medarchive.preservation.keys import KeyRing
from medarchive.preservation.models import Blob, PreservationEvent
from medarchive.preservation.storage.base import BlobStorage
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action

AGENT = "medarchive"


def _keyring() -> KeyRing:
    config = settings.CONFIG
    if config.master_key:
        return KeyRing.from_secret(config.master_key)
    return KeyRing.load_or_create(config.key_file)


def _storage() -> BlobStorage:
    config = settings.CONFIG
    if config.storage == "s3":  # boto3 is imported only here, when configured
        return storage.S3Storage(
            bucket=config.s3_bucket or "",
            prefix=config.s3_prefix,
            endpoint_url=config.s3_endpoint_url,
            intent_dir=config.data_dir / "intents",
        )
    return storage.LocalStorage(config.blob_dir)


def _key_file_stamp() -> int | None:
    """Changes when another process (say `medarchive keys rotate`) rewrites the key file."""
    if settings.CONFIG.master_key:
        return None
    try:
        return settings.CONFIG.key_file.stat().st_mtime_ns
    except FileNotFoundError:
        return None


@lru_cache(maxsize=4)
def _store_for(stamp: int | None, config_id: int) -> BlobStore:
    return BlobStore(_storage(), _keyring(), suite=CipherSuite(settings.CONFIG.cipher))


def blob_store() -> BlobStore:
    """The store for the current configuration; a long-running server picks up a rotated key file."""
    return _store_for(_key_file_stamp(), id(settings.CONFIG))


def reset_blob_store() -> None:
    """Forget cached stores (tests that swap the configuration)."""
    _store_for.cache_clear()


_HOST = intents.host_tag(socket.gethostname())


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _stored_row(staged: StagedBlob) -> Blob:
    return Blob(
        address=staged.address,
        size=staged.size,
        sha256=staged.sha256,
        sm3=staged.sm3,
        suite=staged.suite,
        key_id=staged.key_id,
        wrapped_key=staged.wrapped_key,
        stored_size=staged.stored_size,
        state=Blob.STORED,
    )


def publish(staged: Iterable[StagedBlob]) -> list[Blob]:
    """Inside the record transaction: the Blob row for each staged blob, its object durable in the store.

    New content: the row is inserted `stored` and the object published before the commit, under a
    publish intent (intents.py) that goes once the transaction commits. Content already stored: its row,
    and the staged copy is dropped. One write transaction per record, and no second lookup: the insert is
    the check. If the transaction rolls back, the caller passes the same staged blobs to `withdraw()`."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("preservation.publish() must run inside the record's transaction")
    rows = []
    for item in staged:
        row = _stored_row(item)
        # New content is the common case: one INSERT, no SELECT first, no savepoint.
        if not fastsql.insert(row, ignore_conflict=True):
            # The address exists: identical content is already stored (or being withdrawn).
            existing = Blob.objects.get(address=item.address)
            item.discard()
            if existing.state != Blob.STORED:
                raise Conflict(
                    _("The same content is being stored by another writer; retry in a moment."),
                    code="blob_busy",
                    address=existing.address,
                ) from None
            rows.append(existing)
            continue
        name = intents.name_for(item.address, _HOST, os.getpid())
        intent = item.intent = intents.Intent(item.declare_intent(name), item.address, _HOST, os.getpid())
        # We hold the row now. An object already at the address has no committed row, so no key we hold
        # opens it (a writer killed before its commit, or a database restored from an older backup).
        blob_store().storage.delete_if_exists(item.address)
        if not item.commit():
            raise Conflict(
                _("The blob store changed under a claimed address; retry."),
                code="blob_store_changed",
                address=item.address,
            )
        transaction.on_commit(intent.done)
        rows.append(row)
    return rows


def withdraw(staged: Iterable[StagedBlob]) -> None:
    """After a rolled-back transaction: remove the objects `publish()` put in place for it (their rows
    went with the rollback, and with them the only key that opens them), and drop what was only staged.

    Each address is first claimed with a pending row of our own, exactly as a writer claims one, so an
    object another writer committed meanwhile (it holds the row) is never touched; a crash midway leaves
    a pending claim or an intent that `recover()` cleans up."""
    for item in staged:
        item.discard()  # a no-op once published
        if item.created or item.intent is not None:  # published, or maybe half-way (a failed directory sync)
            _withdraw_address(item.address)
        if item.intent is not None:
            item.intent.done()


def _withdraw_address(address: str) -> bool:
    if Blob.objects.filter(address=address).exists():
        return False  # not rolled back, or another writer has stored the same content since
    claim = Blob(address=address, size=0, sha256="", sm3="", suite="", key_id="", wrapped_key=b"", stored_size=0)
    claim.state, claim.owner = Blob.PENDING, _owner()
    try:
        with transaction.atomic():
            claim.save(force_insert=True)
    except IntegrityError:
        return False
    blob_store().storage.delete_if_exists(address)
    Blob.objects.filter(address=address, state=Blob.PENDING, owner=_owner()).delete()
    return True


def event(
    event_type: str,
    *,
    outcome: str,
    detail: str = "",
    blob: Blob | None = None,
    component: Any = None,
    actor: User | None = None,
) -> PreservationEvent:
    """An unsaved PREMIS event naming its agent (PRE-04); `note_event` saves one, callers with
    several save them with one `bulk_create`."""
    return PreservationEvent(
        event_type=event_type,
        at=clock.now(),
        outcome=outcome,
        detail=detail,
        blob=blob,
        component=component,
        agent=actor.username if actor else f"{AGENT}/{medarchive.__version__}",
        actor=actor,
    )


def note_event(event_type: str, **fields: Any) -> PreservationEvent:
    made = event(event_type, **fields)
    made.save()
    return made


def open_blob(blob: Blob) -> Iterator[bytes]:
    """Decrypted, chunk-verified content. Callers check permission and audit the read first."""
    return blob_store().open(blob.address, key_id=blob.key_id, wrapped_key=bytes(blob.wrapped_key))


@dataclass
class RecoveryReport:
    staging_removed: int = 0
    pending_reclaimed: list[str] = field(default_factory=list)
    intents_withdrawn: list[str] = field(default_factory=list)  # objects of writers killed before their commit


def _owner_is_dead(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _pid_is_dead(int(pid))


def _pid_is_dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover(*, grace_seconds: int | None = None) -> RecoveryReport:
    """Remove what interrupted writers left: staging debris, objects published for a transaction that
    never committed, and pending claims nobody will finish.

    Staging files are removed once untouched for `grace_seconds`. A pending claim of this host is
    reclaimed only when its writer process is gone; one of another host (whose processes we cannot
    see) after `grace_seconds`. Each reclaim re-reads
    the row under a lock, so a writer that settles it meanwhile keeps its file.
    """
    if grace_seconds is None:
        grace_seconds = settings.CONFIG.staging_grace_seconds
    # Staged files are as old as their last write: one younger than the grace may belong to a live writer.
    report = RecoveryReport(staging_removed=blob_store().storage.cleanup_staging(older_than=grace_seconds))
    cutoff = clock.now() - dt.timedelta(seconds=grace_seconds)
    here = socket.gethostname()
    for address, owner, created_at in Blob.objects.filter(state=Blob.PENDING).values_list(
        "address", "owner", "created_at"
    ):
        same_host = owner.rpartition(":")[0] == here
        if not (_owner_is_dead(owner) if same_host else created_at < cutoff):
            continue
        with transaction.atomic():
            blob = Blob.objects.select_for_update().filter(address=address, state=Blob.PENDING, owner=owner).first()
            if blob is None or blob.components.exists():
                continue
            blob_store().storage.delete_if_exists(address)
            blob.delete()
        report.pending_reclaimed.append(address)
    for intent in intents.found(blob_store().storage.intent_dir):
        same_host = intent.host == _HOST
        if not (_pid_is_dead(intent.pid) if same_host else intent.age_seconds > grace_seconds):
            continue
        if _withdraw_address(intent.address):
            report.intents_withdrawn.append(intent.address)
        intent.done()
    return report


@dataclass
class FixityProblem:
    address: str
    files: list[str]
    problems: list[str]


@dataclass
class FixityReport:
    checked: int = 0
    failed: list[FixityProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "failed": [{"address": f.address, "files": f.files, "problems": f.problems} for f in self.failed],
        }


def verify_fixity(
    *,
    actor: User | None,
    record_id: Any = None,
    sample: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FixityReport:
    """Decrypt and re-hash stored copies (CAP-04, PRE-02); one PREMIS fixity event per blob checked.

    `actor=None` is the scheduled worker. A mismatch is reported, never repaired here.
    """
    if actor is not None:
        require(actor, Action.FIXITY_VERIFY)
    if sample is not None and sample < 1:
        raise ValidationError(_("The sample size must be 1 or more."), code="bad_sample", field="sample")
    if record_id is not None:
        record_id = parse_uuid(record_id)
    blobs = Blob.objects.filter(state=Blob.STORED).order_by("address")
    if record_id is not None:
        blobs = blobs.filter(components__record_id=record_id).distinct()
        if not blobs.exists():
            raise NotFound(
                _("Record %(record)s has no stored files."),
                code="no_stored_files",
                field="record",
                record=str(record_id),
            )
    addresses = list(blobs.values_list("address", flat=True))
    if sample is not None and sample < len(addresses):
        addresses = sorted(random.SystemRandom().sample(addresses, sample))
    report = FixityReport()
    store = blob_store()
    for index, address in enumerate(addresses, start=1):
        blob = Blob.objects.get(pk=address)
        result = store.verify(
            address,
            key_id=blob.key_id,
            wrapped_key=bytes(blob.wrapped_key),
            expected_sha256=blob.sha256,
            expected_sm3=blob.sm3,
            expected_size=blob.size,
        )
        report.checked += 1
        files = [f"{c.record.electronic_no}/{c.filename}" for c in blob.components.select_related("record")]
        with transaction.atomic():
            Blob.objects.filter(pk=address).update(last_fixity_at=clock.now(), last_fixity_ok=result.ok)
            note_event(
                PreservationEvent.FIXITY_CHECK,
                outcome="success" if result.ok else "failure",
                detail="; ".join(result.problems) or f"sha256 {blob.sha256} sm3 {blob.sm3}",
                blob=blob,
                actor=actor,
            )
        if not result.ok:
            report.failed.append(FixityProblem(address=address, files=files, problems=result.problems))
        if progress:
            progress(index, len(addresses))
    with transaction.atomic():
        audit.record_event(
            Action.FIXITY_VERIFY,
            actor=actor,
            object_type="record" if record_id else "store",
            object_id=str(record_id or ""),
            result="success" if report.ok else "failure",
            details={"checked": report.checked, "failed": [f.address for f in report.failed]},
        )
    return report


def rotate_keys(*, actor: User | None, progress: Callable[[int, int], None] | None = None) -> tuple[str, int]:
    """Add a new master key and re-wrap every data key under it. Content is not re-encrypted:
    only the wrapped keys change, so rotation is quick and the blobs stay byte-identical."""
    if actor is not None:
        require(actor, Action.KEYS_ROTATE)
    config = settings.CONFIG
    if config.master_key:
        raise Conflict(
            _(
                "The master key comes from MEDARCHIVE_MASTER_KEY; rotate it in your key manager and set the "
                "new key ring there."
            ),
            code="key_from_environment",
            field="MEDARCHIVE_MASTER_KEY",
        )
    store = blob_store()
    new_key_id = store.keyring.rotate(config.key_file)
    rows = list(Blob.objects.exclude(key_id=new_key_id).values_list("address", flat=True))
    for index, address in enumerate(rows, start=1):
        with transaction.atomic():
            blob = Blob.objects.select_for_update().get(pk=address)
            key_id, wrapped = store.rewrap(blob.key_id, bytes(blob.wrapped_key))
            blob.key_id, blob.wrapped_key = key_id, wrapped
            blob.save(update_fields=["key_id", "wrapped_key"])
            note_event(
                PreservationEvent.KEY_ROTATION,
                outcome="success",
                detail=f"re-wrapped under {key_id}",
                blob=blob,
                actor=actor,
            )
        if progress:
            progress(index, len(rows))
    with transaction.atomic():
        audit.record_event(
            Action.KEYS_ROTATE,
            actor=actor,
            object_type="keyring",
            object_id=new_key_id,
            details={"rewrapped": len(rows)},
        )
    return new_key_id, len(rows)
