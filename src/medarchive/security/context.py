"""Per-request facts that the audit trail needs but services should not take as arguments."""

from __future__ import annotations

from contextvars import ContextVar

# Where the current request came from: an IP address, "cli", "worker".
source: ContextVar[str] = ContextVar("medarchive_audit_source", default="")

# Scopes of the API token in use; empty = the user's whole role.
token_scopes: ContextVar[frozenset[str]] = ContextVar("medarchive_token_scopes", default=frozenset())
