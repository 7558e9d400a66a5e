"""Append-only audit trail (SEC-04): the database refuses what only an attacker would do.

`AUDIT_GUARDS` is what migration 0002 installed; `CHAIN_GUARDS` (migration 0005) add the
head: it cannot be deleted, re-created while entries exist, or moved other than one step
forward onto the entry just written; and an entry can only be the one after the head.
`PENDING_GUARDS` (migration 0006): an unsealed read entry cannot be changed, nor deleted
before it has been sealed into the chain.
An attacker with DDL rights can drop these; the keyed chain and the checkpoints are what
still catch them then (ADR 0013).
"""

from medarchive.core.dbtriggers import Guard

AUDIT_GUARDS = [
    Guard(
        name="audit_append_only",
        table="security_auditentry",
        events=("UPDATE", "DELETE"),
        reason="audit log is append-only",
    ),
]

_HEAD_ADVANCES = (
    "NOT (NEW.id = OLD.id AND NEW.seq = OLD.seq + 1 AND NEW.keyed_from = OLD.keyed_from"
    " AND EXISTS (SELECT 1 FROM security_auditentry e WHERE e.seq = NEW.seq AND e.entry_hash = NEW.entry_hash))"
)

CHAIN_GUARDS = [
    Guard(
        name="audit_entry_follows_head",
        table="security_auditentry",
        events=("INSERT",),
        reason="an audit entry must follow the chain head",
        condition="NEW.seq IS NOT (SELECT h.seq + 1 FROM security_audithead h WHERE h.id = 1)",
        pg_condition="NEW.seq IS DISTINCT FROM (SELECT h.seq + 1 FROM security_audithead h WHERE h.id = 1)",
    ),
    Guard(
        name="audit_head_kept",
        table="security_audithead",
        events=("DELETE",),
        reason="the audit chain head cannot be deleted",
    ),
    Guard(
        name="audit_head_advances",
        table="security_audithead",
        events=("UPDATE",),
        reason="the audit chain head only advances by one entry",
        condition=_HEAD_ADVANCES,
    ),
    Guard(
        name="audit_head_single",
        table="security_audithead",
        events=("INSERT",),
        reason="the audit chain head cannot be re-created",
        condition="EXISTS (SELECT 1 FROM security_auditentry) OR EXISTS (SELECT 1 FROM security_audithead)",
    ),
]

PENDING_GUARDS = [
    Guard(
        name="audit_pending_unchanged",
        table="security_pendingauditentry",
        events=("UPDATE",),
        reason="an unsealed audit entry cannot be changed",
    ),
    Guard(
        name="audit_pending_sealed_first",
        table="security_pendingauditentry",
        events=("DELETE",),
        reason="an unsealed audit entry can only leave once sealed into the chain",
        condition="NOT EXISTS (SELECT 1 FROM security_auditentry e WHERE e.sealed_from = OLD.id)",
    ),
]
