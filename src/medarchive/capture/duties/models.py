"""Duty rules, the obligations they open, the reminders sent for them, and in-app notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from medarchive.capture.duties.rules import Kind, Period, Stage


class DutyRule(models.Model):
    """What a department owes the archive and by when (seed §2.1/§3.1). Rules are data: the
    archivist edits them; the shipped defaults come from `data/default-rules.json`."""

    name = models.CharField(_("规则名称"), max_length=100, unique=True)
    kind = models.CharField(_("类型"), max_length=16, choices=[(k.value, k.value) for k in Kind])
    active = models.BooleanField(_("启用"), default=True)
    # Null: every department (event and record rules: the event's or record's department).
    department = models.ForeignKey(
        "core.Department", verbose_name=_("部门"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    expected_class = models.CharField(_("应归档门类"), max_length=32)  # class code; its subclasses count too
    event_kind = models.CharField(max_length=32, blank=True)  # event rules: discharge, contract_signed …
    trigger_class = models.CharField(max_length=32, blank=True)  # record rules: class of the triggering record
    trigger_filter = models.JSONField(default=dict, blank=True)  # record rules: metadata that must match
    match_key = models.CharField(max_length=64, blank=True)  # metadata key linking trigger and owed record
    due_days = models.PositiveSmallIntegerField(default=0)  # event/record rules
    period = models.CharField(max_length=8, blank=True, choices=[(p.value, p.value) for p in Period])
    due_day = models.PositiveSmallIntegerField(default=0)  # periodic: day of the month after the period
    min_count = models.PositiveIntegerField(default=1)  # periodic: at least this many records
    remind_days = models.PositiveSmallIntegerField(default=3)  # "due soon" reminder this many days before
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Obligation(models.Model):
    """One thing owed: a record for a discharge or contract, or N records for a department's period."""

    rule = models.ForeignKey(DutyRule, on_delete=models.PROTECT, related_name="obligations")
    department = models.ForeignKey("core.Department", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16)  # the rule's kind when opened
    expected_class = models.CharField(max_length=32)  # copied: editing a rule never rewrites history
    # Event/record: the value the owed record carries under rule.match_key (visit number, contract
    # number). Periodic: "<department>:<period label>". Never a patient's name.
    subject_key = models.CharField(max_length=100)
    subject_label = models.CharField(max_length=200, blank=True)  # masked for readers without patient rights
    source = models.CharField(max_length=200, blank=True)  # the sending system / message / triggering record
    occurred_on = models.DateField()  # the event day, the triggering record's date, or the period start
    period_start = models.DateField(db_index=True)  # the period the obligation is counted in
    period_end = models.DateField()  # exclusive
    due_on = models.DateField(db_index=True)
    required_count = models.PositiveIntegerField(default=1)
    received_count = models.PositiveIntegerField(default=0)
    fulfilled_at = models.DateTimeField(null=True, blank=True, db_index=True)
    record = models.ForeignKey(
        "archiving.Record", null=True, blank=True, on_delete=models.PROTECT, related_name="duty_obligations"
    )
    trigger_record = models.ForeignKey(
        "archiving.Record", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_on", "pk"]
        # Per department: another department's event with the same key opens its own obligation and
        # never sees (nor takes over) this one.
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "department", "subject_key"], name="obligation_once_per_department_subject"
            )
        ]
        indexes = [models.Index(fields=["department", "period_start"])]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.subject_key}"


class Reminder(models.Model):
    """That a stage's reminder went out for an obligation: the unique row is what makes it once."""

    obligation = models.ForeignKey(Obligation, on_delete=models.CASCADE, related_name="reminders")
    stage = models.CharField(max_length=16, choices=[(s.value, s.value) for s in Stage])
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["obligation", "stage"], name="reminder_once_per_stage")]

    def __str__(self) -> str:
        return f"{self.obligation_id} {self.stage}"


class Notification(models.Model):
    """An in-app message for one user (reminders today; anything that needs a person later)."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return self.title
