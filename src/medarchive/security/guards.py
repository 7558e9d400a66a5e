"""Append-only audit trail (SEC-04): the database refuses UPDATE and DELETE of audit rows."""

from medarchive.core.dbtriggers import Guard

AUDIT_GUARDS = [
    Guard(
        name="audit_append_only",
        table="security_auditentry",
        events=("UPDATE", "DELETE"),
        reason="audit log is append-only",
    ),
]
