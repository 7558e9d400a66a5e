"""Writing and verifying the audit trail (SEC-04).

`record_event` must run inside the caller's transaction, so the entry commits or rolls
back together with the change it describes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from medarchive.core import clock
from medarchive.core.errors import PermissionDenied
from medarchive.security import chain, context
from medarchive.security.models import AuditEntry, AuditHead, User
from medarchive.security.roles import Action


def record_event(
    action: Action | str,
    *,
    actor: User | None,
    object_type: str = "",
    object_id: str = "",
    result: str = "success",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record_event() must run inside the transaction of the change it records")
    _check_details(details or {})
    seq, prev_hash = _advance_head()
    entry = chain.ChainEntry(
        seq=seq,
        at=clock.now(),
        actor_id=actor.pk if actor else None,
        actor_name=actor.username if actor else "system",
        action=str(action),
        object_type=object_type,
        object_id=str(object_id),
        result=result,
        source=context.source.get(),
        details=details or {},
        algorithm=settings.CONFIG.audit_hash,
        prev_hash=prev_hash,
    )
    sealed = chain.seal(entry)
    row = AuditEntry.objects.create(
        seq=entry.seq,
        at=entry.at,
        actor_id=entry.actor_id,
        actor_name=entry.actor_name,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        result=entry.result,
        source=entry.source,
        details=entry.details,
        algorithm=entry.algorithm,
        prev_hash=entry.prev_hash,
        entry_hash=sealed,
    )
    AuditHead.objects.filter(id=1).update(entry_hash=sealed)
    return row


# Taking the next number locks the head (row lock on PostgreSQL, the write lock on SQLite) until
# the transaction ends, so appends are serialised and a rolled-back change leaves no gap.
_ADVANCE = f"UPDATE {AuditHead._meta.db_table} SET seq = seq + 1 WHERE id = 1 RETURNING seq, entry_hash"  # noqa: S608


def _advance_head() -> tuple[int, str]:
    """(the new entry's seq, the previous entry's hash), in one statement once the head exists."""
    with connection.cursor() as cursor:
        cursor.execute(_ADVANCE)
        row = cursor.fetchone()
        if row is None:
            AuditHead.objects.bulk_create([AuditHead(id=1)], ignore_conflicts=True)
            cursor.execute(_ADVANCE)
            row = cursor.fetchone()
    return int(row[0]), str(row[1])


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


def _entries(up_to: int) -> Iterator[chain.ChainEntry]:
    for row in AuditEntry.objects.filter(seq__lte=up_to).order_by("seq").iterator(chunk_size=2000):
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
        )


def verify_chain() -> chain.ChainReport:
    # Verify up to the head as read now: entries appended during the walk are not "removed" ones.
    head = AuditHead.objects.filter(id=1).first()
    head_seq, head_hash = (head.seq, head.entry_hash) if head else (0, chain.GENESIS)
    return chain.verify(_entries(head_seq), head_seq=head_seq, head_hash=head_hash)
