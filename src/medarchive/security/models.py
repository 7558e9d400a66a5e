"""Users, API tokens and the append-only audit trail."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from medarchive.core.models import Department
from medarchive.security.roles import Role

ROLE_LABELS = {
    Role.SYSADMIN: _("System administrator"),
    Role.SECADMIN: _("Security administrator"),
    Role.AUDITOR: _("Security auditor"),
    Role.ARCHIVIST: _("Archivist"),
    Role.OFFICER: _("Department records officer"),
    Role.INTERFACE: _("System interface account"),
    Role.CLINICIAN: _("Clinician"),
    Role.RESEARCHER: _("Researcher"),
    Role.VIEWER: _("Read-only user"),
}


class User(AbstractUser):
    """A person or system account. One role each keeps the separation of duties legible."""

    role = models.CharField(_("角色"), max_length=16, choices=[(r.value, label) for r, label in ROLE_LABELS.items()])
    department = models.ForeignKey(
        Department, verbose_name=_("部门"), null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    display_name = models.CharField(_("姓名"), max_length=100, blank=True)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def __str__(self) -> str:
        return self.display_name or self.username


class ApiToken(models.Model):
    """A bearer token for a hospital system or script. Only its SHA-256 is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)  # shown in listings; not a secret
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)  # empty list = every action the user's role allows
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"


class AuditEntry(models.Model):
    """One audited event. Rows are never updated or deleted (database triggers refuse it).

    `entry_hash` is the seal over prev_hash and the canonical JSON of the other fields: from
    the head's `keyed_from` on HMAC-H(audit key `key_id`, ...), before it (entries of an older
    version) H(...), H = SM3 by default. Editing, deleting or re-ordering any row breaks the
    chain at that row; rebuilding it needs the audit key, which is not in the database.
    """

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True)
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    result = models.CharField(max_length=16)  # success | denied | failure
    source = models.CharField(max_length=64, blank=True)  # IP address or "cli"
    details = models.JSONField(default=dict)
    algorithm = models.CharField(max_length=8)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16, blank=True, default="")  # "" = unkeyed (before keyed_from)
    # The unsealed entry (PendingAuditEntry.id) this one was sealed from; not part of the seal.
    sealed_from = models.BigIntegerField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.result}"


class PendingAuditEntry(models.Model):
    """A read, audited before its answer left and not yet in the chain (ADR 0020).

    Reads append here without touching the chain head, so concurrent readers never queue on it;
    the sealer moves these rows into the chain in id order, with a bounded lag. Triggers refuse any
    UPDATE, and a DELETE of a row that has not been sealed into an `AuditEntry`.
    """

    at = models.DateTimeField()
    actor_id = models.BigIntegerField(null=True)
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    result = models.CharField(max_length=16)
    source = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"unsealed {self.action} {self.result}"


class AuditHead(models.Model):
    """The chain's tip, locked by every writer: serialises appends and detects a cut-off tail.

    One row, created by the migration. Triggers refuse to delete it and refuse any UPDATE that
    does not advance it by exactly one to an entry that exists; `keyed_from` (the first entry
    sealed with the audit key) never changes.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64, default="0" * 64)
    keyed_from = models.BigIntegerField(default=1)

    def __str__(self) -> str:
        return f"head #{self.seq}"
