"""Reminders: once per obligation and stage, to the department's officers, in-app and by email."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from medarchive.capture.duties import notify, services, tasks
from medarchive.capture.duties.models import DutyRule, Notification, Obligation, Reminder
from medarchive.core.jobs import run_due

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def locmem(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def emails(users: dict[str, Any]) -> dict[str, Any]:
    for name in ("officer", "officer_nk", "archivist"):
        users[name].email = f"{name}@hospital.example"
        users[name].save(update_fields=["email"])
    return users


def discharge(users: dict[str, Any], visit: str, day: dt.date, department: str = "NK") -> Obligation:
    [obligation] = services.record_event(
        "discharge",
        department_code=department,
        subject_key=visit,
        subject_label="张三",  # even if a sender puts a name here, no email may carry it
        occurred_at=timezone.make_aware(dt.datetime.combine(day, dt.time(9))),
        actor=users["archivist"],
    )
    return obligation


def test_due_soon_then_overdue_each_once(emails: dict[str, Any]) -> None:
    # Discharged 1 March: due 8 March; the rule reminds 2 days before.
    discharge(emails, "ZY-100", dt.date(2025, 3, 1))
    assert notify.send_reminders(dt.date(2025, 3, 5)).obligations == 0, "not yet in the reminder window"
    assert mail.outbox == []

    run = notify.send_reminders(dt.date(2025, 3, 6))
    assert (run.obligations, run.notifications, run.emails) == (1, 1, 1)
    [message] = mail.outbox
    assert message.to == ["officer_nk@hospital.example"]
    assert "ZY-100" in message.body and "2025-03-08" in message.body
    assert "张三" not in message.body and "张三" not in message.subject

    again = notify.send_reminders(dt.date(2025, 3, 7))
    assert (again.obligations, again.notifications, again.emails) == (0, 0, 0), "never twice for one stage"
    assert len(mail.outbox) == 1

    late = notify.send_reminders(dt.date(2025, 3, 9))
    assert (late.obligations, late.emails) == (1, 1)
    assert len(mail.outbox) == 2
    assert notify.send_reminders(dt.date(2025, 3, 20)).obligations == 0
    assert len(mail.outbox) == 2
    assert sorted(Reminder.objects.values_list("stage", flat=True)) == ["due_soon", "overdue"]


def test_fulfilled_and_inactive_obligations_get_no_reminder(emails: dict[str, Any]) -> None:
    done = discharge(emails, "ZY-200", dt.date(2025, 3, 1))
    Obligation.objects.filter(pk=done.pk).update(fulfilled_at=timezone.now())
    discharge(emails, "ZY-201", dt.date(2025, 3, 1), department="BGS")
    DutyRule.objects.filter(kind="event").update(active=False)
    assert notify.send_reminders(dt.date(2025, 3, 20)).obligations == 0
    assert mail.outbox == []


def test_one_message_per_officer_for_many_obligations(emails: dict[str, Any]) -> None:
    for n in range(3):
        discharge(emails, f"ZY-3{n}", dt.date(2025, 3, 1), department="BGS")
    run = notify.send_reminders(dt.date(2025, 3, 10))
    assert (run.obligations, run.notifications, run.emails) == (3, 1, 1)
    [message] = mail.outbox
    assert message.to == ["officer@hospital.example"]
    assert all(f"ZY-3{n}" in message.body for n in range(3))
    note = Notification.objects.get(recipient=emails["officer"])
    assert note.url == "/duties/department/BGS/"
    assert note.emailed_at is not None
    assert notify.unread_count(emails["officer"]) == 1
    assert notify.unread_count(emails["officer_nk"]) == 0


def test_department_without_officer_reminds_the_archivists(emails: dict[str, Any]) -> None:
    from medarchive.core.services import add_department

    add_department("FSK", "放射科", actor=None)
    discharge(emails, "ZY-400", dt.date(2025, 3, 1), department="FSK")
    notify.send_reminders(dt.date(2025, 3, 10))
    [message] = mail.outbox
    assert message.to == ["archivist@hospital.example"]


def test_recipient_without_email_still_gets_the_in_app_notification(users: dict[str, Any]) -> None:
    discharge(users, "ZY-500", dt.date(2025, 3, 1))
    run = notify.send_reminders(dt.date(2025, 3, 10))
    assert (run.notifications, run.emails) == (1, 0)
    assert mail.outbox == []
    assert Notification.objects.filter(recipient=users["officer_nk"]).count() == 1


def test_failing_mail_server_keeps_the_notification_and_does_not_resend(emails: dict[str, Any], settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    discharge(emails, "ZY-600", dt.date(2025, 3, 1))
    run = notify.send_reminders(dt.date(2025, 3, 10))
    assert (run.notifications, run.emails, len(run.failed_emails)) == (1, 0, 1)
    note = Notification.objects.get()
    assert note.emailed_at is None and "mail server" in note.email_error
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert notify.send_reminders(dt.date(2025, 3, 11)).emails == 0


def test_one_refused_message_does_not_stop_the_others(emails: dict[str, Any], monkeypatch: Any) -> None:
    from django.core.mail.backends import locmem

    real = locmem.EmailBackend.send_messages

    def refuse_bgs(self: Any, messages: list[Any]) -> int:
        if any("officer@" in m.to[0] for m in messages):
            raise ConnectionError("recipient refused")
        return real(self, messages)

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", refuse_bgs)
    discharge(emails, "ZY-610", dt.date(2025, 3, 1), department="BGS")
    discharge(emails, "ZY-611", dt.date(2025, 3, 1), department="NK")
    run = notify.send_reminders(dt.date(2025, 3, 10))
    assert (run.notifications, run.emails, len(run.failed_emails)) == (2, 1, 1)
    assert [m.to for m in mail.outbox] == [["officer_nk@hospital.example"]]
    assert "recipient refused" in Notification.objects.get(recipient=emails["officer"]).email_error


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_mark_read_is_per_user(emails: dict[str, Any]) -> None:
    discharge(emails, "ZY-700", dt.date(2025, 3, 1))
    notify.send_reminders(dt.date(2025, 3, 10))
    note = Notification.objects.get()
    assert notify.mark_read(emails["officer"], note.pk) == 0, "someone else's notification is not found"
    assert notify.mark_read(emails["officer_nk"], note.pk) == 1
    assert notify.unread_count(emails["officer_nk"]) == 0


def test_worker_runs_the_duty_jobs(emails: dict[str, Any]) -> None:
    discharge(emails, "ZY-800", dt.date(2020, 1, 1))
    names = dict(run_due(force=True))
    assert "reminded" in names["duties.remind"]
    assert "periodic obligations opened" in names["duties.open_and_reconcile"]
    assert len(mail.outbox) == 1
    assert tasks.remind().startswith("0 obligations reminded")
