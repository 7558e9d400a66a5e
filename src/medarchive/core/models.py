"""Shared tables: the fonds (全宗), departments, and gap-free sequences."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Fonds(models.Model):
    """全宗: the archive of one hospital (立档单位)."""

    code = models.CharField(_("全宗号"), max_length=16, unique=True)
    name = models.CharField(_("全宗名称"), max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("全宗")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Department(models.Model):
    """A hospital department (科室/部门); records and users belong to one."""

    code = models.CharField(_("部门代码"), max_length=32, unique=True)
    name = models.CharField(_("部门名称"), max_length=200)
    fonds = models.ForeignKey(Fonds, on_delete=models.PROTECT, related_name="departments")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("部门")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Sequence(models.Model):
    """A named counter that only moves forward inside the transaction that uses it.

    Used for 电子文件号 and 件号: the row is locked (SELECT ... FOR UPDATE on PostgreSQL,
    the database write lock on SQLite) so two workers can never take the same number, and
    a rolled-back transaction returns its number, so the series stays gap-free.
    """

    name = models.CharField(max_length=200, unique=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class JobRun(models.Model):
    """When each periodic job last ran; the row lock keeps two workers from running one job at once."""

    name = models.CharField(max_length=100, primary_key=True)
    last_started = models.DateTimeField(null=True)
    last_finished = models.DateTimeField(null=True)
    last_outcome = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.name


class DepartmentAlias(models.Model):
    """A hospital system's name for a department: (kind, system, key) → Department.

    Kinds and how keys are normalised: `core.department_codes` (keys are stored normalised,
    so the unique constraint holds for what the resolver compares). The archivist keeps them.
    """

    kind = models.CharField(_("来源类型"), max_length=32)
    system = models.CharField(_("代码系统"), max_length=200, blank=True, default="")
    key = models.CharField(_("代码或名称"), max_length=200)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="aliases")
    note = models.CharField(_("备注"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("部门代码映射")
        ordering = ["kind", "system", "key"]
        constraints = [models.UniqueConstraint(fields=["kind", "system", "key"], name="department_alias_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.system}|{self.key} → {self.department_id}"
