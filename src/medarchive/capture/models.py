"""Capture bookkeeping: idempotency keys, submissions with their registers, and the review at the door."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotencyKey(models.Model):
    """Binds a caller-chosen key to the record it created (unique per caller, so retries collide)."""

    key = models.CharField(max_length=200)
    record = models.ForeignKey("archiving.Record", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # SHA-256 of what arrived under the key (capture/identity.py): the same key with another digest
    # is a different message that reused the identifier, never a retry. Empty for keys kept before.
    digest = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        # Keys are per caller: one hospital system's keys never collide with another's, and a
        # reused key does not reveal someone else's record.
        constraints = [models.UniqueConstraint(fields=["created_by", "key"], name="idempotency_key_per_caller")]

    def __str__(self) -> str:
        return self.key


class Channel(models.TextChoices):
    """How a submission reached the archive (CAP-07/08)."""

    WEB = "web", _("网页上传")
    REST = "rest", _("接口推送")
    IMPORT = "import", _("批量导入")
    FOLDER = "folder", _("监控文件夹")
    HL7 = "hl7", _("HL7 v2")
    FHIR = "fhir", _("FHIR")
    DICOM = "dicom", _("DICOM")


class Submission(models.Model):
    """One push, import or message: many records plus its 归档登记表 / 移交接收登记表 (CAP-07/08)."""

    RECEIVED, REJECTED = "received", "rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    source = models.CharField(_("来源"), max_length=200, blank=True)  # sending system, file, carrier
    key = models.CharField(max_length=200, null=True, blank=True)  # the caller's idempotency key
    digest = models.CharField(max_length=64, blank=True, default="")  # of the request, where the channel has one
    state = models.CharField(max_length=16, default=RECEIVED)
    declared_count = models.PositiveIntegerField(_("登记件数"), null=True, blank=True)
    declared_bytes = models.BigIntegerField(_("登记字节数"), null=True, blank=True)
    received_count = models.PositiveIntegerField(_("接收件数"), default=0)
    received_bytes = models.BigIntegerField(_("接收字节数"), default=0)
    failed_count = models.PositiveIntegerField(_("不合格件数"), default=0)
    # The register as stored (CAP-08): per item, its label, outcome and reason.
    report = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "key"], condition=models.Q(key__isnull=False), name="submission_key_per_caller"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.created_at:%Y-%m-%d %H:%M}"


class ReviewState(models.TextChoices):
    PENDING = "pending", _("待审核")
    RETURNED = "returned", _("已退回")
    ACCEPTED = "accepted", _("已接收")
    WITHDRAWN = "withdrawn", _("已撤回")


class Intake(models.Model):
    """A record's passage through the door: its submission, the quality findings and the review (CAP-02/03)."""

    record = models.OneToOneField("archiving.Record", on_delete=models.PROTECT, related_name="intake")
    submission = models.ForeignKey(Submission, on_delete=models.PROTECT, related_name="intakes")
    label = models.CharField(max_length=200, blank=True)  # row number, message id, file name
    state = models.CharField(max_length=16, choices=ReviewState.choices, default=ReviewState.PENDING, db_index=True)
    findings = models.JSONField(default=list)  # [{rule, severity, field, message, ...}]
    # Findings made on arrival that no recheck can see again (a reused identifier): kept in `findings`.
    arrival_findings = models.JSONField(default=list)
    errors = models.PositiveSmallIntegerField(default=0)
    warnings = models.PositiveSmallIntegerField(default=0)
    comment = models.TextField(_("审核意见"), blank=True)
    rounds = models.PositiveSmallIntegerField(default=1)  # 1 + resubmissions
    checked_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.record_id} {self.state}"


class TextFingerprint(models.Model):
    """SimHash of a file's text in four 16-bit bands: two texts within 3 bits share a band (pigeonhole)."""

    component = models.OneToOneField("archiving.Component", on_delete=models.PROTECT, related_name="fingerprint")
    simhash = models.BigIntegerField()  # signed 64-bit
    band0 = models.PositiveIntegerField(db_index=True)
    band1 = models.PositiveIntegerField(db_index=True)
    band2 = models.PositiveIntegerField(db_index=True)
    band3 = models.PositiveIntegerField(db_index=True)
    characters = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.simhash:016x}"


class Upload(models.Model):
    """A resumable upload of one large file: pieces arrive over several requests (CAP-07).

    Each piece is sealed with a per-upload data key (wrapped by the key ring like a blob's)
    before it touches the disk; a completed upload is then captured like any other file.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField()  # declared total
    offset = models.BigIntegerField(default=0)  # bytes received so far
    key_id = models.CharField(max_length=32)
    wrapped_key = models.BinaryField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)  # taken by a submission

    def __str__(self) -> str:
        return f"{self.filename} {self.offset}/{self.size}"

    @property
    def complete(self) -> bool:
        return self.offset == self.size
