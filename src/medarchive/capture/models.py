"""Capture bookkeeping: idempotency keys so a retried submission never creates twice."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """Binds a client-chosen key to the record it created (unique, so concurrent retries collide)."""

    key = models.CharField(max_length=200, unique=True)
    record = models.ForeignKey("archiving.Record", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key
