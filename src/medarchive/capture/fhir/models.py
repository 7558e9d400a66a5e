"""What the FHIR endpoint keeps besides the records: Binaries awaiting their DocumentReference,
and the SHA-1 that R4's attachment.hash needs (the archive's own fixity is SHA-256 + SM3)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class PendingBinary(models.Model):
    """A Binary posted before the DocumentReference that points at it (`Binary/<id>`).

    The content is sealed like every blob (fresh data key, wrapped by the master key) and kept
    under an address of its own, derived from the Binary's id, so it never shares an object with
    a record's content. A DocumentReference that uses it re-stages the bytes into a record and
    the object is deleted; an unused Binary expires (`tasks.JOBS`).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    content_type = models.CharField(max_length=100)  # as declared by the sender
    mime_type = models.CharField(max_length=100)  # identified from the content
    format_name = models.CharField(max_length=100)
    size = models.BigIntegerField()
    sha1 = models.CharField(max_length=40)
    sha256 = models.CharField(max_length=64)
    address = models.CharField(max_length=64, unique=True)
    suite = models.CharField(max_length=16)
    key_id = models.CharField(max_length=32)
    wrapped_key = models.BinaryField()
    stored = models.BooleanField(default=False)  # the sealed object was committed
    record = models.ForeignKey(
        "archiving.Record", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # the record that took the content
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Binary/{self.pk}"


class AttachmentDigest(models.Model):
    """SHA-1 of stored content, for DocumentReference.content.attachment.hash (R4: base64 SHA-1).

    Keyed by the content's SHA-256 (the archive's own digest): a function of the bytes, so one row
    serves every file with that content and needs no write inside the record's transaction.
    Computed from the decoded bytes at FHIR capture (no extra read); for content captured through
    other channels, once, from the decrypted blob with size and SHA-256 verified in the same pass.
    """

    CAPTURE, BACKFILL = "capture", "backfill"

    sha256 = models.CharField(max_length=64, primary_key=True)
    sha1 = models.CharField(max_length=40)
    source = models.CharField(max_length=16, default=CAPTURE)
    computed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha1
