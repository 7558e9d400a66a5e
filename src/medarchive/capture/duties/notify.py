"""Reminders: once per obligation and stage (due soon, overdue), an in-app notification for the
department's officers and an email through Django's mail backend.

"Once" is a unique (obligation, stage) row written in the same transaction as the notifications;
emails go out after that commit, so a crash between the two loses at most an email (the in-app
notification is there), and never sends one twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from medarchive.capture.duties import rules
from medarchive.capture.duties.models import Notification, Obligation, Reminder
from medarchive.capture.duties.rules import Stage
from medarchive.capture.duties.services import MASK, may_read_label
from medarchive.core import clock
from medarchive.core.models import Department
from medarchive.security.models import User
from medarchive.security.roles import Role

log = logging.getLogger(__name__)
KIND = "duty_reminder"


@dataclass
class ReminderRun:
    obligations: int = 0
    notifications: int = 0
    emails: int = 0
    failed_emails: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.obligations} obligations reminded, {self.notifications} notifications, {self.emails} emails sent"
        if self.failed_emails:
            text += f", {len(self.failed_emails)} emails failed"
        return text


def recipients(department: Department) -> list[User]:
    """The department's records officers; the archivists when it has none, so nothing goes unseen."""
    officers = list(User.objects.filter(role=Role.OFFICER, department=department, is_active=True).order_by("pk"))
    return officers or list(User.objects.filter(role=Role.ARCHIVIST, is_active=True).order_by("pk"))


def due_reminders(today: dt.date) -> dict[Department, dict[Stage, list[Obligation]]]:
    """Open obligations of active rules at a stage not yet reminded, grouped by department."""
    horizon = today + dt.timedelta(days=rules.MAX_REMIND_DAYS)
    sent = set(Reminder.objects.filter(obligation__fulfilled_at__isnull=True).values_list("obligation_id", "stage"))
    grouped: dict[Department, dict[Stage, list[Obligation]]] = defaultdict(lambda: defaultdict(list))
    candidates = Obligation.objects.filter(fulfilled_at__isnull=True, rule__active=True, due_on__lte=horizon)
    for obligation in candidates.select_related("rule", "department").order_by("due_on", "pk"):
        stage = rules.reminder_stage(obligation.due_on, today, obligation.rule.remind_days)
        if stage is None or (obligation.pk, stage.value) in sent:
            continue
        grouped[obligation.department][stage].append(obligation)
    return grouped


def send_reminders(today: dt.date | None = None) -> ReminderRun:
    today = today or clock.today()
    run = ReminderRun()
    outgoing: list[tuple[Notification, str]] = []
    with translation.override(settings.LANGUAGE_CODE):
        for department, stages in due_reminders(today).items():
            people = recipients(department)
            with transaction.atomic():
                # The stage rows first: they are the "already sent" marks the next run honours.
                Reminder.objects.bulk_create(
                    [Reminder(obligation=o, stage=stage) for stage, items in stages.items() for o in items]
                )
                texts: dict[bool, tuple[str, str]] = {}
                for person in people:
                    # Visit numbers identify patients: only recipients who may read them get them.
                    show = may_read_label(person, department.pk)
                    if show not in texts:
                        texts[show] = _message(department, stages, show_subject=show)
                    title, body = texts[show]
                    note = Notification.objects.create(
                        recipient=person,
                        kind=KIND,
                        title=title[:200],
                        body=body,
                        url=reverse("duties-department", args=[department.code]),
                    )
                    run.notifications += 1
                    if person.email:
                        outgoing.append((note, person.email))
            run.obligations += sum(len(items) for items in stages.values())
        _send(outgoing, run)
    return run


def _subject(obligation: Obligation, *, show: bool) -> str:
    if obligation.kind == rules.Kind.PERIODIC:
        return obligation.subject_key.split(":", 1)[-1]  # the period: names no one
    return obligation.subject_key if show else MASK


def _message(department: Department, stages: dict[Stage, list[Obligation]], *, show_subject: bool) -> tuple[str, str]:
    soon, late = stages.get(Stage.DUE_SOON, []), stages.get(Stage.OVERDUE, [])
    title = _("%(department)s: %(soon)d due soon, %(late)d overdue for the archive") % {
        "department": department.name,
        "soon": len(soon),
        "late": len(late),
    }
    lines = []
    for heading, items in ((_("Overdue"), late), (_("Due soon"), soon)):
        if not items:
            continue
        lines.append(f"{heading}:")
        # Visit or contract numbers and dates only: an email leaves the archive, a patient's name must not
        # (and a visit number only to a recipient with patient rights in the department).
        lines.extend(
            "  "
            + _("%(class)s for %(subject)s, due %(due)s (rule: %(rule)s)")
            % {
                "class": o.expected_class,
                "subject": _subject(o, show=show_subject),
                "due": o.due_on.isoformat(),
                "rule": o.rule.name,
            }
            for o in items
        )
    lines.append("")
    lines.append(_("See the duty dashboard: %(path)s") % {"path": reverse("duties-department", args=[department.code])})
    return title, "\n".join(lines)


def _send(outgoing: list[tuple[Notification, str]], run: ReminderRun) -> None:
    if not outgoing:
        return
    try:
        connection = get_connection(fail_silently=False)
        connection.open()
    except Exception as exc:  # a misconfigured or unreachable server must not lose the in-app notifications
        log.warning("reminder emails not sent: %s", type(exc).__name__)
        for note, _address in outgoing:
            _failed(note, f"mail server: {type(exc).__name__}: {exc}", run)
        return
    try:
        for note, address in outgoing:
            message = EmailMessage(subject=note.title, body=note.body, to=[address], connection=connection)
            try:
                message.send()
            except Exception as exc:  # a refused address or a dropped connection: noted, logged, next
                log.warning("reminder email to user %s failed: %s", note.recipient_id, type(exc).__name__)
                _failed(note, f"{type(exc).__name__}: {exc}", run)
                continue
            Notification.objects.filter(pk=note.pk).update(emailed_at=clock.now())
            run.emails += 1
    finally:
        connection.close()


def _failed(note: Notification, reason: str, run: ReminderRun) -> None:
    Notification.objects.filter(pk=note.pk).update(email_error=reason[:300])
    run.failed_emails.append(str(note.pk))


# --- the in-app list -----------------------------------------------------------------------------------


def unread_count(user: User) -> int:
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def notifications_of(user: User, *, limit: int = 100) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user)[:limit])


def mark_read(user: User, notification_id: int | None = None) -> int:
    """Mark one (or every) notification of `user` read; another user's ids are simply not found."""
    found = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_id is not None:
        found = found.filter(pk=notification_id)
    return found.update(read_at=clock.now())
