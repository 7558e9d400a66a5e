"""Classification schemes, retention tables, records (件), volumes (卷) and their files."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from medarchive.core.models import Department, Fonds


class ClassificationScheme(models.Model):
    """A version of the hospital's classification scheme (ARC-01). Exactly one is active."""

    fonds = models.ForeignKey(Fonds, on_delete=models.PROTECT, related_name="schemes")
    version = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["fonds", "version"], name="scheme_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class ArchiveClass(models.Model):
    """门类 or a subclass (e.g. KJ → KJ-SB 设备) within one scheme version."""

    ITEM, VOLUME = "item", "volume"

    scheme = models.ForeignKey(ClassificationScheme, on_delete=models.CASCADE, related_name="classes")
    code = models.CharField(_("分类号"), max_length=32)
    name = models.CharField(_("类目名称"), max_length=100)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    aggregation = models.CharField(max_length=8, choices=[(ITEM, _("件")), (VOLUME, _("卷"))], default=ITEM)
    default_retention = models.CharField(max_length=16)
    required_fields = models.JSONField(default=list)  # extra metadata keys this class must have
    # Quality rules at the door (CAP-02/03/05): formats (MIME types identified from content),
    # max_bytes per file, date_order pairs of metadata dates, auto_accept when nothing is found.
    intake_rules = models.JSONField(default=dict)
    description = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scheme", "code"], name="class_code_unique_in_scheme")]
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class RetentionTable(models.Model):
    """A version of the 保管期限表 (ARC-05)."""

    fonds = models.ForeignKey(Fonds, on_delete=models.PROTECT, related_name="retention_tables")
    version = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["fonds", "version"], name="retention_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class RetentionRule(models.Model):
    """One term: Y (永久), D30, D10, or a hospital term such as MR30 (住院病案, last discharge + 30 y)."""

    table = models.ForeignKey(RetentionTable, on_delete=models.CASCADE, related_name="rules")
    code = models.CharField(_("保管期限代码"), max_length=16)
    name = models.CharField(max_length=100)
    years = models.PositiveSmallIntegerField(null=True, blank=True)  # null = permanent
    trigger = models.CharField(max_length=32)  # see archiving.retention.Trigger
    note = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["table", "code"], name="retention_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class RecordState(models.TextChoices):
    DRAFT = "draft", _("草稿")
    SUBMITTED = "submitted", _("已提交")
    ACCEPTED = "accepted", _("已接收")
    ARCHIVED = "archived", _("已归档")
    ON_HOLD = "on_hold", _("冻结")
    DISPOSED = "disposed", _("已销毁")
    WITHDRAWN = "withdrawn", _("已撤回")


# 业务状态 as stored in 业务实体 rows: fixed Chinese terms, whatever the UI language.
BUSINESS_STATES = {
    RecordState.DRAFT: "草稿",
    RecordState.SUBMITTED: "已提交",
    RecordState.ACCEPTED: "已接收",
    RecordState.ARCHIVED: "已归档",
    RecordState.ON_HOLD: "冻结",
    RecordState.DISPOSED: "已销毁",
    RecordState.WITHDRAWN: "已撤回",
}
SECURITY_LEVELS = ["公开", "内部", "秘密", "机密", "绝密"]
OPEN_STATUSES = ["开放", "控制", "延期开放", "未审核"]


class Volume(models.Model):
    """卷: a file assembled of items (科研/基建/设备 projects)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    fonds = models.ForeignKey(Fonds, on_delete=models.PROTECT)
    archive_class = models.ForeignKey(ArchiveClass, on_delete=models.PROTECT)
    department = models.ForeignKey(Department, on_delete=models.PROTECT)
    title = models.CharField(_("案卷题名"), max_length=500)
    year = models.PositiveSmallIntegerField(_("年度"))
    retention = models.CharField(_("保管期限"), max_length=16)
    volume_number = models.PositiveIntegerField(_("案卷号"), null=True, blank=True)
    archival_code = models.CharField(_("档号"), max_length=100, null=True, blank=True, unique=True)
    item_count = models.PositiveIntegerField(_("卷内文件数"), null=True, blank=True)  # fixed when archived
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.archival_code or self.title


class Record(models.Model):
    """件: the unit of capture and archiving (CAP-01).

    Core DA/T 46 metadata are typed columns; the rest lives in `metadata`, validated by
    the JSON schema version named in `metadata_schema`.
    """

    id = models.UUIDField(_("系统标识"), primary_key=True, default=uuid.uuid4, editable=False)
    electronic_no = models.CharField(_("电子文件号"), max_length=64, unique=True, editable=False)
    fonds = models.ForeignKey(Fonds, on_delete=models.PROTECT, related_name="records")
    archive_class = models.ForeignKey(ArchiveClass, verbose_name=_("门类"), on_delete=models.PROTECT)
    department = models.ForeignKey(Department, verbose_name=_("部门"), on_delete=models.PROTECT, related_name="records")
    volume = models.ForeignKey(Volume, null=True, blank=True, on_delete=models.PROTECT, related_name="items")
    state = models.CharField(
        _("状态"), max_length=16, choices=RecordState.choices, default=RecordState.DRAFT, db_index=True
    )
    title = models.CharField(_("题名"), max_length=500)
    responsible = models.CharField(_("责任者"), max_length=200)
    date = models.DateField(_("日期"))
    year = models.PositiveSmallIntegerField(_("年度"))
    doc_number = models.CharField(_("文号"), max_length=100, blank=True)
    security_level = models.CharField(_("密级"), max_length=8, default="内部")
    retention = models.CharField(_("保管期限"), max_length=16)
    open_status = models.CharField(_("开放标识"), max_length=8, default="未审核")
    organization = models.CharField(_("机构或问题"), max_length=64)
    archival_code = models.CharField(_("档号"), max_length=100, null=True, blank=True, unique=True)
    item_number = models.PositiveIntegerField(_("件号"), null=True, blank=True)
    metadata = models.JSONField(_("扩展元数据"), default=dict)
    metadata_schema = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["department", "state"]),
            models.Index(fields=["archive_class", "year"]),
        ]

    def __str__(self) -> str:
        return f"{self.archival_code or self.electronic_no} {self.title}"


class Component(models.Model):
    """A computer file of a record with its 电子属性 (CAP-03), captured automatically."""

    MAIN, ATTACHMENT = "main", "attachment"

    record = models.ForeignKey(Record, on_delete=models.PROTECT, related_name="components")
    sequence = models.PositiveSmallIntegerField(_("文档序号"))
    role = models.CharField(_("文档主从声明"), max_length=16, default=MAIN)
    filename = models.CharField(_("计算机文件名"), max_length=255)
    original_filename = models.CharField(max_length=1024, blank=True)
    size = models.BigIntegerField(_("计算机文件大小"))
    mime_type = models.CharField(_("MIME媒体类型"), max_length=100)
    format_name = models.CharField(_("格式名称"), max_length=100)
    format_version = models.CharField(_("格式版本"), max_length=32, blank=True)
    created = models.DateTimeField(_("创建时间"), null=True, blank=True)
    creating_application = models.CharField(_("文档创建程序"), max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)  # exact-duplicate check at the door
    sm3 = models.CharField(max_length=64)
    blob = models.ForeignKey("preservation.Blob", on_delete=models.PROTECT, related_name="components")
    captured_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sequence"]
        constraints = [models.UniqueConstraint(fields=["record", "sequence"], name="component_sequence_unique")]

    def __str__(self) -> str:
        return self.filename


class BusinessEvent(models.Model):
    """业务实体 (CAP-06): one business action on a record, kept with the record for good."""

    record = models.ForeignKey(Record, on_delete=models.PROTECT, related_name="business_events")
    action = models.CharField(_("业务行为"), max_length=32)
    state = models.CharField(_("业务状态"), max_length=32)
    at = models.DateTimeField(_("行为时间"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    basis = models.CharField(_("行为依据"), max_length=200, blank=True)
    description = models.TextField(_("行为描述"), blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.action} {self.at:%Y-%m-%d}"
