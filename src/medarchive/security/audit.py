"""Writing the audit trail (SEC-04) and reading its key ring.

`record_event` must run inside the caller's transaction, so the entry commits or rolls
back together with the change it describes. `record_read` audits a read in a commit of its
own that does not lock the chain head; `seal_pending` puts those entries into the chain
(ADR 0020). Verification and checkpoints are in `trailcheck.py`; `verify_chain` is
re-exported here.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext_lazy

from medarchive.core import clock, fastsql
from medarchive.core.errors import ConfigurationError, IntegrityFailure, PermissionDenied
from medarchive.security import chain, context, readlog, sealer
from medarchive.security.auditkeys import AuditKeyRing
from medarchive.security.models import AuditEntry, AuditHead, PendingAuditEntry, User
from medarchive.security.roles import Action

if TYPE_CHECKING:
    from medarchive.security.trailcheck import VerifyReport

_HEAD = AuditHead._meta.db_table
_PENDING = PendingAuditEntry._meta.db_table
# What a pending entry carries into the chain: every column but its own id.
_PENDING_FIELDS = tuple(f.attname for f in PendingAuditEntry._meta.concrete_fields if not f.primary_key)

_LOCK = f"SELECT seq, entry_hash, keyed_from FROM {_HEAD} WHERE id = 1"  # noqa: S608
_ADVANCE = f"UPDATE {_HEAD} SET seq = %s, entry_hash = %s WHERE id = 1"  # noqa: S608


def head_missing() -> IntegrityFailure:
    return IntegrityFailure(
        gettext_lazy(
            "The audit chain head is missing from the database: the audit trail was tampered with. "
            "Audited actions are refused until the database is restored from a backup."
        ),
        code="audit_head_missing",
    )


def record_event(
    action: Action | str,
    *,
    actor: User | None,
    object_type: str = "",
    object_id: str = "",
    result: str = "success",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry to the chain now, inside the caller's transaction (changes, refusals)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record_event() must run inside the transaction of the change it records")
    _check_details(details or {})
    ring = signing_ring()
    row, _ = _append(
        _lock_head(),
        ring,
        _fields(
            action,
            actor,
            object_type=object_type,
            object_id=object_id,
            result=result,
            details=details,
            at=clock.now(),
            source=context.source.get(),
        ),
    )
    return row


def _fields(
    action: Action | str,
    actor: User | None,
    *,
    object_type: str,
    object_id: str,
    result: str,
    details: dict[str, Any] | None,
    at: Any,
    source: str,
) -> dict[str, Any]:
    return {
        "at": at,
        "actor_id": actor.pk if actor else None,
        "actor_name": actor.username if actor else "system",
        "action": str(action),
        "object_type": object_type,
        "object_id": str(object_id),
        "result": result,
        "source": source,
        "details": details or {},
    }


def _append(
    head: chain.Head, ring: AuditKeyRing, fields: dict[str, Any], *, sealed_from: int | None = None
) -> tuple[AuditEntry, chain.Head]:
    """Seal one entry onto the locked head: INSERT it, move the head one step (the only UPDATE the
    head's trigger allows). Returns the row and the new head."""
    entry = chain.ChainEntry(
        seq=head.seq + 1,
        algorithm=settings.CONFIG.audit_hash,
        prev_hash=head.mac,
        key_id=ring.active_key_id,
        **fields,
    )
    sealed = chain.seal(entry, ring.active_key, keyed_from=head.keyed_from)
    row = AuditEntry(
        seq=entry.seq,
        algorithm=entry.algorithm,
        prev_hash=entry.prev_hash,
        entry_hash=sealed,
        key_id=entry.key_id,
        sealed_from=sealed_from,
        **fields,
    )
    fastsql.insert(row)
    with connection.cursor() as cursor:
        cursor.execute(_ADVANCE, [entry.seq, sealed])
    return row, chain.Head(seq=entry.seq, mac=sealed, keyed_from=head.keyed_from)


# --- reads: appended unsealed, sealed into the chain shortly after (ADR 0020) ----------------------


def record_read(
    action: Action | str,
    *,
    actor: User | None,
    object_type: str = "",
    object_id: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Audit a read before its answer leaves: one committed INSERT that no other reader waits for (it
    does not touch the chain head). The sealer puts it into the chain within MEDARCHIVE_AUDIT_SEAL_MS; a
    process without a running sealer (the CLI, tests) seals at once."""
    _check_details(details or {})
    row = PendingAuditEntry(
        **_fields(
            action,
            actor,
            object_type=object_type,
            object_id=object_id,
            result="success",
            details=details,
            at=clock.now(),
            source=context.source.get(),
        )
    )
    if readlog.running() and not transaction.get_connection().in_atomic_block:
        readlog.submit(row)  # committed with the reads of concurrent requests (group commit)
    else:
        with transaction.atomic():
            fastsql.insert(row)
    if not sealer.running():
        seal_pending()


def seal_pending(*, batch: int = 500) -> int:
    """Move unsealed entries into the chain, oldest first, `batch` per transaction; returns how many."""
    sealed = 0
    while True:
        if not _anything_pending():  # a read-only look: an idle sealer takes no write lock
            return sealed
        with transaction.atomic():
            head = _lock_head()
            waiting = fastsql.rows(PendingAuditEntry, "1 = 1", [], order_by="id", limit=batch)
            if not waiting:
                return sealed
            ring = signing_ring()
            for pending in waiting:
                fields = {name: getattr(pending, name) for name in _PENDING_FIELDS}
                _, head = _append(head, ring, fields, sealed_from=pending.pk)
            ids = [pending.pk for pending in waiting]  # the trigger refuses to delete a row not sealed here
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {_PENDING} WHERE id IN ({', '.join(['%s'] * len(ids))})", ids)  # noqa: S608
        sealed += len(waiting)
        if len(waiting) < batch:
            return sealed


def _anything_pending() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {_PENDING} LIMIT 1")  # noqa: S608
        return cursor.fetchone() is not None


def unsealed() -> tuple[int, Any]:
    """How many read entries wait for the sealer, and when the oldest was written (None when none)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), MIN(id) FROM {_PENDING}")  # noqa: S608
        count, first = cursor.fetchone()
    if not count:
        return 0, None
    oldest = fastsql.get(PendingAuditEntry, first)
    return int(count), oldest.at if oldest else None


def _lock_head() -> chain.Head:
    """The head, locked until the transaction ends (row lock on PostgreSQL; on SQLite the
    transaction already holds the write lock), so appends are serialised and a rolled-back
    change leaves no gap. A missing head is tampering: refuse rather than start a new chain."""
    sql = _LOCK + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    if row is None:
        raise head_missing()
    return chain.Head(seq=int(row[0]), mac=str(row[1]), keyed_from=int(row[2]))


def read_head() -> chain.Head | None:
    row = AuditHead.objects.filter(id=1).values_list("seq", "entry_hash", "keyed_from").first()
    return chain.Head(seq=row[0], mac=row[1], keyed_from=row[2]) if row else None


# --- the audit key ring ---------------------------------------------------------------------------


def _key_file_stamp() -> int | None:
    """Changes when another process (`medarchive audit rotate-key`) rewrites the key file."""
    if settings.CONFIG.audit_key:
        return None
    try:
        return settings.CONFIG.audit_key_file.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _secret_id(secret: str | None) -> str:
    # The cache is keyed by a digest of the secret, so the secret itself is not kept twice.
    return hashlib.sha256(secret.encode()).hexdigest() if secret else ""


def find_ring() -> AuditKeyRing | None:
    """The configured ring: from MEDARCHIVE_AUDIT_KEY, else the key file; None without either."""
    config = settings.CONFIG
    if config.audit_key:
        return AuditKeyRing.from_secret(config.audit_key)
    if config.audit_key_file.exists():
        return AuditKeyRing.load(config.audit_key_file)
    return None


def ensure_ring() -> AuditKeyRing:
    """The configured ring; a missing key file is created, unless the trail already has keyed
    entries: then the key was lost, and a new one would only hide that (the old entries could
    never verify again)."""
    ring = find_ring()
    if ring is not None:
        return ring
    config = settings.CONFIG
    if AuditEntry.objects.exclude(key_id="").exists():
        raise ConfigurationError(
            gettext_lazy(
                "The audit key file %(path)s is missing, but the audit trail has entries sealed with "
                "audit keys: restore the file from its backup (a new key cannot verify them)."
            ),
            code="audit_key_missing",
            path=str(config.audit_key_file),
        )
    return AuditKeyRing.create(config.audit_key_file)


@lru_cache(maxsize=4)
def _ring_for(secret_id: str, path: str, stamp: int | None) -> AuditKeyRing:
    return ensure_ring()


def signing_ring() -> AuditKeyRing:
    """The ring `record_event` seals with (cached per key source; one stat per call)."""
    config = settings.CONFIG
    return _ring_for(_secret_id(config.audit_key), str(config.audit_key_file), _key_file_stamp())


def forget_ring() -> None:
    _ring_for.cache_clear()


# --- details and refusals -------------------------------------------------------------------------


def _check_details(value: Any) -> None:
    """Details must survive a JSON round trip through SQLite and PostgreSQL unchanged, or the
    chain breaks: jsonb rewrites floats (1e20, -0.0) and refuses NUL. Text, integers, booleans."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_details(key)
            _check_details(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_details(item)
    elif isinstance(value, str):
        if "\x00" in value:
            raise TypeError("audit details may not contain NUL characters")
    elif not (value is None or isinstance(value, bool | int)):
        raise TypeError(f"audit details take text, integers and booleans, not {type(value).__name__}")


def record_denial(action: Action | str, *, actor: User | None, object_type: str, object_id: str, reason: str) -> None:
    """Refusals are audited in their own transaction: the refused change itself rolled back."""
    with transaction.atomic():
        record_event(
            action,
            actor=actor,
            object_type=object_type,
            object_id=object_id,
            result="denied",
            details={"reason": reason},
        )


def record_refusal(exc: PermissionDenied) -> None:
    """Audit a refused attempt, whichever input (API, web, CLI) it came through."""
    actor = User.objects.filter(pk=int(exc.details.get("actor_id") or 0)).first()
    record_denial(
        str(exc.details.get("action", "")),
        actor=actor,
        object_type="record",
        object_id=str(exc.details.get("object_id", "")),
        reason=exc.message,
    )


def verify_chain(*, write_checkpoint: bool = False) -> VerifyReport:
    """Walk the whole chain against its head and every checkpoint (see `trailcheck.verify_chain`)."""
    from medarchive.security import trailcheck  # noqa: PLC0415 - trailcheck imports this module

    return trailcheck.verify_chain(write_checkpoint=write_checkpoint)
