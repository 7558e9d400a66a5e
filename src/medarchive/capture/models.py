"""Capture bookkeeping: idempotency keys so a retried submission never creates twice."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """Binds a caller-chosen key to the record it created (unique per caller, so retries collide)."""

    key = models.CharField(max_length=200)
    record = models.ForeignKey("archiving.Record", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Keys are per caller: one hospital system's keys never collide with another's, and a
        # reused key does not reveal someone else's record.
        constraints = [models.UniqueConstraint(fields=["created_by", "key"], name="idempotency_key_per_caller")]

    def __str__(self) -> str:
        return self.key
