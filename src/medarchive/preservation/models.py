"""Stored blobs (one per distinct content) and PREMIS-style preservation events."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Blob(models.Model):
    """An encrypted, content-addressed object in the blob store.

    The data key is stored here wrapped by a master key (`key_id`); rotating the master
    key re-wraps this column and never touches the content. Digests are of the plaintext,
    computed in the same pass that encrypted it, and kept apart from the content (CAP-04).
    """

    PENDING, STORED = "pending", "stored"

    address = models.CharField(max_length=64, primary_key=True)
    # A row is written `pending` before its file is committed and becomes `stored` with the
    # record that uses it; a pending row left by a dead writer is reclaimed by `recover()`.
    state = models.CharField(max_length=8, default=PENDING, db_index=True)
    owner = models.CharField(max_length=100, blank=True)  # "host:pid" of the writer while pending
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    sm3 = models.CharField(max_length=64)
    suite = models.CharField(max_length=16)
    key_id = models.CharField(max_length=32)
    wrapped_key = models.BinaryField()
    stored_size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    last_fixity_at = models.DateTimeField(null=True, blank=True)
    last_fixity_ok = models.BooleanField(null=True)

    def __str__(self) -> str:
        return self.address


class PreservationEvent(models.Model):
    """A PREMIS event (PRE-04): what happened to which object, when, by which agent, with what outcome."""

    INGESTION = "ingestion"
    FIXITY_CHECK = "fixity check"
    MESSAGE_DIGEST_CALCULATION = "message digest calculation"
    ENCRYPTION = "encryption"
    KEY_ROTATION = "key rotation"

    event_type = models.CharField(max_length=48)
    at = models.DateTimeField()
    outcome = models.CharField(max_length=16)  # success | failure
    detail = models.TextField(blank=True)
    blob = models.ForeignKey(Blob, null=True, on_delete=models.PROTECT, related_name="events")
    component = models.ForeignKey("archiving.Component", null=True, on_delete=models.PROTECT, related_name="events")
    agent = models.CharField(max_length=150)  # user name or "medarchive/<version>"
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["event_type", "outcome"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.outcome}"
