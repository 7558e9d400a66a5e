"""The review at the door (CAP-02): accept, return to the department, fix, resubmit, withdraw.

The archive reviews what the checks could not settle; the department sees what came back and
either fixes and resubmits it or withdraws it. Nothing is deleted on rejection: a returned
record keeps its files until the department withdraws it, and even then it stays as a
withdrawn record with its history. Each step is one transaction: the record's state, the
intake, its 业务实体 row and its audit entry (CAP-06).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from medarchive.archiving.models import Record, RecordState
from medarchive.archiving.services import locked_record, record_step, wrong_state
from medarchive.capture import intake as door
from medarchive.capture.models import Channel, IdempotencyKey, Intake, ReviewState, Submission
from medarchive.capture.services import update_draft
from medarchive.capture.signals import intake_changed
from medarchive.core import clock
from medarchive.core.errors import Conflict, MedarchiveError, PermissionDenied, ValidationError
from medarchive.core.labels import Listed, with_labels
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.roles import Action

COMMENT_LIMIT = 2000


def _comment(text: str, *, required: bool) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ValidationError(
            _("A comment is required: tell the department what to fix."), code="required", field="comment"
        )
    if len(text) > COMMENT_LIMIT:
        raise ValidationError(
            _("The comment is longer than %(limit)s characters."), code="too_long", field="comment", limit=COMMENT_LIMIT
        )
    return text


def _intake_of(record: Record) -> Intake:
    found = Intake.objects.select_for_update().filter(record=record).first()
    if found is None:
        raise Conflict(
            _("Record %(record)s has not been submitted to the archive."),
            code="not_submitted",
            field="state",
            record=record.electronic_no,
        )
    return found


def _expect(intake: Intake, record: Record, *states: ReviewState) -> None:
    if intake.state not in states:
        raise Conflict(
            with_labels(
                _("Record %(record)s is “%(state)s” at the door; this step needs it “%(needed)s”."),
                state=ReviewState(intake.state).label,
                needed=Listed([s.label for s in states], alternatives=True),
            ),
            code="wrong_review_state",
            field="state",
            record=record.electronic_no,
            state=str(intake.state),
            needed=[str(s) for s in states],
        )


def submit(record_id: Any, *, actor: User) -> Record:
    """Hand a draft to the archive: first submission, or a resubmission after it was returned."""
    with transaction.atomic():
        record = locked_record(record_id, actor=actor, action=Action.RECORD_SUBMIT)
        if record.state != RecordState.DRAFT:
            raise wrong_state(record, Action.RECORD_SUBMIT, {RecordState.DRAFT})
        intake = Intake.objects.select_for_update().filter(record=record).first()
        record.state = RecordState.SUBMITTED
        record.save(update_fields=["state", "updated_at"])
        if intake is None:
            submission = Submission.objects.create(channel=Channel.WEB, source=actor.username, created_by=actor)
            intake = Intake.objects.create(record=record, submission=submission, label=record.title[:200])
            verb, step = "提交", "received"
            door.fingerprint(list(record.components.all()))
        else:
            _expect(intake, record, ReviewState.RETURNED)
            intake.state, intake.rounds = ReviewState.PENDING, intake.rounds + 1
            intake.save(update_fields=["state", "rounds"])
            verb, step = "重新提交", "resubmitted"
        record_step(record, Action.RECORD_SUBMIT, actor=actor, verb=verb, details={"round": intake.rounds})
        door.check(record, intake, actor=actor)
        intake_changed.send(sender=Intake, intake=intake, step=step)
    return record


def accept(record_id: Any, *, actor: User, comment: str = "", override: bool = False) -> Record:
    """Accept a record into the archive. Errors found at the door block it unless the archivist
    overrides them, with a reason that is kept as the 行为依据."""
    comment = _comment(comment, required=override)
    with transaction.atomic():
        record = locked_record(record_id, actor=actor, action=Action.RECORD_ACCEPT)
        intake = Intake.objects.select_for_update().filter(record=record).first()
        if intake is None:  # captured before the door existed (or by an older client): accept as is
            if record.state != RecordState.SUBMITTED:
                raise wrong_state(record, Action.RECORD_ACCEPT, {RecordState.SUBMITTED})
        else:
            _expect(intake, record, ReviewState.PENDING)
            if intake.errors and not override:
                raise Conflict(
                    _(
                        "Record %(record)s has %(errors)s error(s) from the checks: fix them, return it to the "
                        "department, or accept it with an override and a reason."
                    ),
                    code="blocking_findings",
                    field="findings",
                    record=record.electronic_no,
                    errors=intake.errors,
                    findings=[f["message"] for f in intake.findings if f["severity"] == "error"],
                )
            intake.state, intake.comment = ReviewState.ACCEPTED, comment
            intake.reviewed_by, intake.reviewed_at = actor, clock.now()
            intake.save(update_fields=["state", "comment", "reviewed_by", "reviewed_at"])
        record.state = RecordState.ACCEPTED
        record.save(update_fields=["state", "updated_at"])
        overridden = intake.errors if intake else 0
        basis = f"人工接收（不顾 {overridden} 项错误）：{comment}" if override else comment
        record_step(
            record,
            Action.RECORD_ACCEPT,
            actor=actor,
            verb="接收",
            basis=basis[:200],
            details={"override": override},
        )
        if intake is not None:
            intake_changed.send(sender=Intake, intake=intake, step="accepted")
    return record


def return_to_department(record_id: Any, *, actor: User, comment: str) -> Record:
    comment = _comment(comment, required=True)
    with transaction.atomic():
        record = locked_record(record_id, actor=actor, action=Action.RECORD_REVIEW)
        intake = _intake_of(record)
        _expect(intake, record, ReviewState.PENDING)
        intake.state, intake.comment = ReviewState.RETURNED, comment
        intake.reviewed_by, intake.reviewed_at = actor, clock.now()
        intake.save(update_fields=["state", "comment", "reviewed_by", "reviewed_at"])
        record.state = RecordState.DRAFT
        record.save(update_fields=["state", "updated_at"])
        record_step(record, Action.RECORD_REVIEW, actor=actor, verb="退回", basis=comment[:200], description=comment)
        intake_changed.send(sender=Intake, intake=intake, step="returned")
    return record


def withdraw(record_id: Any, *, actor: User, reason: str) -> Record:
    """The department takes a returned (or still pending) record back for good."""
    reason = _comment(reason, required=True)
    with transaction.atomic():
        record = locked_record(record_id, actor=actor, action=Action.RECORD_WITHDRAW)
        intake = _intake_of(record)
        _expect(intake, record, ReviewState.RETURNED, ReviewState.PENDING)
        intake.state = ReviewState.WITHDRAWN
        intake.save(update_fields=["state"])
        # The caller's keys for it are retired: the same content, corrected, may be sent again.
        IdempotencyKey.objects.filter(record=record).delete()
        record.state = RecordState.WITHDRAWN
        record.save(update_fields=["state", "updated_at"])
        record_step(record, Action.RECORD_WITHDRAW, actor=actor, verb="撤回", basis=reason[:200], description=reason)
        intake_changed.send(sender=Intake, intake=intake, step="withdrawn")
    return record


def fix(record_id: Any, changes: dict[str, Any], *, actor: User) -> Record:
    """The archivist corrects the description at the door; the checks run again at once."""
    with transaction.atomic():
        record = locked_record(record_id, actor=actor, action=Action.RECORD_REVIEW)
        _expect(_intake_of(record), record, ReviewState.PENDING)
        return update_draft(record.pk, changes, actor=actor)  # re-checks a record at the door


def recheck(record_id: Any, *, actor: User) -> Intake:
    with transaction.atomic():
        record = locked_record(record_id, actor=actor, action=Action.RECORD_REVIEW)
        intake = _intake_of(record)
        _expect(intake, record, ReviewState.PENDING)
        door.check(record, intake, actor=actor)
    return intake


@dataclass
class BulkOutcome:
    record_id: str
    ok: bool
    message: str = ""


def accept_many(record_ids: list[Any], *, actor: User) -> list[BulkOutcome]:
    """Bulk accept from the queue: each record on its own; one that cannot be accepted (errors,
    already handled) is reported and the rest go on."""
    outcomes = []
    for record_id in record_ids:
        try:
            record = accept(record_id, actor=actor)
        except MedarchiveError as exc:
            if isinstance(exc, PermissionDenied):
                audit.record_refusal(exc)
            outcomes.append(BulkOutcome(str(record_id), False, exc.message))
        else:
            outcomes.append(BulkOutcome(str(record.pk), True, record.electronic_no))
    return outcomes
