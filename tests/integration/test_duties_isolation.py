"""Departments' obligations are their own: an event for the same key in another department neither
returns, takes over nor reveals them; only the department's own records fulfil them; visit numbers
are masked for readers without patient rights (API, pages, reminders)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from typing import Any

import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from medarchive.capture import review
from medarchive.capture.duties import notify, services
from medarchive.capture.duties.models import DutyRule, Obligation
from medarchive.capture.intake import Item, receive
from medarchive.capture.models import Channel
from medarchive.capture.services import Description, IncomingFile, update_draft
from medarchive.security.services import create_token

pytestmark = pytest.mark.django_db

DISCHARGE_RULE = "出院病案7日内归档"


@pytest.fixture(autouse=True)
def today(monkeypatch: pytest.MonkeyPatch) -> None:
    from medarchive.core import clock

    monkeypatch.setattr(clock, "today", lambda: dt.date(2025, 3, 10))


def at(day: str) -> dt.datetime:
    return timezone.make_aware(dt.datetime.fromisoformat(f"{day}T09:00"))


def discharge(actor: Any, visit: str, department: str, *, label: str = "", day: str = "2025-03-01") -> Obligation:
    [obligation] = services.record_event(
        "discharge",
        department_code=department,
        subject_key=visit,
        subject_label=label or f"住院号 {visit}",
        occurred_at=at(day),
        actor=actor,
    )
    return obligation


def arrive(actor: Any, department: str, visit: str, **metadata: Any) -> Any:
    """An inpatient record through the door, as every connector sends it."""
    body = b"%PDF-1.7\n" + f"{department} {visit} {sorted(metadata.items())}".encode() * 40
    item = Item(
        description=Description(
            class_code="BA-ZY",
            department_code=department,
            title="出院记录",
            date="2025-03-02",
            responsible="测试",
            metadata={"visit_number": visit, "patient_id": "P1", "patient_name": "甲", **metadata},
        ),
        files=[IncomingFile(name="doc.pdf", stream=io.BytesIO(body))],
    )
    outcome = receive([item], actor=actor, channel=Channel.WEB).outcomes[0]
    assert outcome.ok, outcome.error and outcome.error.message
    return outcome.record


def token(user: Any, scopes: list[str] | None = None) -> dict[str, str]:
    _, raw = create_token(user, actor=None, name="test", scopes=scopes)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def post_event(headers: dict[str, str], visit: str, department: str, label: str = "") -> Any:
    event = {
        "kind": "discharge",
        "department": department,
        "subject_key": visit,
        "subject_label": label,
        "occurred_at": "2025-03-05T09:00:00+08:00",
    }
    return Client().post("/api/v1/duties/events", json.dumps(event), content_type="application/json", **headers)


# --- one department's event never returns or takes over another's obligation ------------------------------


def test_same_key_from_another_department_opens_its_own_obligation(users: dict[str, Any]) -> None:
    nk = discharge(users["archivist"], "ZY-NK-1", "NK", label="NK 内科 3 病区 12 床")
    response = post_event(token(users["officer"]), "ZY-NK-1", "BGS", label="guess")
    assert response.status_code == 200, response.content
    [row] = response.json()
    assert row["department"] == "BGS"
    assert row["id"] != nk.pk
    assert "NK 内科" not in response.content.decode()
    assert Obligation.objects.filter(subject_key="ZY-NK-1").count() == 2
    nk.refresh_from_db()
    assert (nk.department.code, nk.subject_label, nk.occurred_on) == ("NK", "NK 内科 3 病区 12 床", dt.date(2025, 3, 1))
    assert discharge(users["archivist"], "ZY-NK-1", "NK").pk == nk.pk, "NK's repeat still finds NK's own"


def test_posting_first_does_not_capture_the_real_discharge(users: dict[str, Any]) -> None:
    bgs = discharge(users["officer"], "ZY-NK-2", "BGS", day="2025-03-01")
    nk = discharge(users["archivist"], "ZY-NK-2", "NK", day="2025-03-06")
    assert nk.pk != bgs.pk
    assert (nk.department.code, nk.due_on) == ("NK", dt.date(2025, 3, 13))
    bgs.refresh_from_db()
    assert bgs.department.code == "BGS" and bgs.due_on == dt.date(2025, 3, 8)


def test_unique_per_rule_department_and_key_in_the_database(users: dict[str, Any]) -> None:
    nk = discharge(users["archivist"], "ZY-U", "NK")
    rule = DutyRule.objects.get(name=DISCHARGE_RULE)
    fields = {
        "rule": rule,
        "kind": nk.kind,
        "expected_class": nk.expected_class,
        "subject_key": "ZY-U",
        "occurred_on": nk.occurred_on,
        "period_start": nk.period_start,
        "period_end": nk.period_end,
        "due_on": nk.due_on,
    }
    Obligation.objects.create(department=users["officer"].department, **fields)  # BGS: allowed
    with pytest.raises(IntegrityError), transaction.atomic():
        Obligation.objects.create(department=nk.department, **fields)


# --- only the obligation's own department's records fulfil it ----------------------------------------------


def test_another_departments_record_does_not_fulfil(users: dict[str, Any]) -> None:
    nk = discharge(users["archivist"], "ZY-F1", "NK")
    arrive(users["officer"], "BGS", "ZY-F1")
    nk.refresh_from_db()
    assert nk.fulfilled_at is None, "a BGS record with NK's visit number must not count for NK"
    own = arrive(users["officer_nk"], "NK", "ZY-F1")
    nk.refresh_from_db()
    assert nk.record_id == own.pk


def test_earlier_record_of_another_department_is_not_matched_later(users: dict[str, Any]) -> None:
    arrive(users["officer"], "BGS", "ZY-F2")
    nk = discharge(users["archivist"], "ZY-F2", "NK")
    assert nk.fulfilled_at is None
    assert services.reconcile() == 0
    nk.refresh_from_db()
    assert nk.fulfilled_at is None


def test_resubmitted_record_with_another_visit_number_reopens(users: dict[str, Any]) -> None:
    nk = discharge(users["archivist"], "ZY-R1", "NK")
    # Dates going backwards: an error at the door, so the record waits for review instead of auto-accepting.
    record = arrive(users["officer_nk"], "NK", "ZY-R1", admission_date="2025-03-05", discharge_date="2025-03-01")
    nk.refresh_from_db()
    assert nk.record_id == record.pk
    review.return_to_department(record.pk, actor=users["archivist"], comment="住院号有误")
    fixed = {**record.metadata, "visit_number": "ZY-R9", "admission_date": "2025-02-20"}
    update_draft(record.pk, {"metadata": fixed}, actor=users["officer_nk"])
    review.submit(record.pk, actor=users["officer_nk"])
    nk.refresh_from_db()
    assert (nk.fulfilled_at, nk.record_id, nk.received_count) == (None, None, 0)


# --- masking -----------------------------------------------------------------------------------------------


def test_event_response_masks_the_visit_number_without_patient_rights(users: dict[str, Any]) -> None:
    submit_only = token(users["officer"], scopes=["record:submit"])
    response = post_event(submit_only, "ZY-M1", "BGS", label="住院号 ZY-M1")
    assert response.status_code == 200, response.content
    [row] = response.json()
    assert (row["subject_key"], row["subject_label"]) == (services.MASK, services.MASK)
    assert "ZY-M1" not in response.content.decode()
    [full] = post_event(token(users["officer"]), "ZY-M1", "BGS").json()
    assert (full["id"], full["subject_key"], full["subject_label"]) == (row["id"], "ZY-M1", "住院号 ZY-M1")


def test_lists_and_page_mask_the_visit_number_for_a_viewer(users: dict[str, Any]) -> None:
    discharge(users["officer"], "ZY-M2", "BGS")
    march = (dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    [row] = services.list_obligations(users["viewer"], "BGS", *march)
    assert (row.key, row.label) == (services.MASK, services.MASK)
    assert row.as_dict()["subject_key"] == services.MASK
    [officer_row] = services.list_obligations(users["officer"], "BGS", *march)
    assert officer_row.as_dict()["subject_key"] == "ZY-M2"
    api = Client().get(
        "/api/v1/duties/obligations", {"department": "BGS", "period": "2025-03"}, **token(users["viewer"])
    )
    assert api.status_code == 200 and "ZY-M2" not in api.content.decode()
    browser = Client()
    browser.force_login(users["viewer"])
    page = re.sub(r"\s+", " ", browser.get("/duties/department/BGS/", {"period": "2025-03"}).content.decode())
    assert "ZY-M2" not in page and services.MASK in page


def test_periodic_obligations_stay_readable_for_a_viewer(users: dict[str, Any]) -> None:
    DutyRule.objects.filter(kind="periodic").update(created_at=at("2024-12-01"))
    services.open_periodic(dt.date(2025, 3, 15))
    rows = services.list_obligations(users["viewer"], "BGS", dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    assert [(r.key, r.label) for r in rows] == [("BGS:2025-03", "2025-03")]


def test_reminders_carry_visit_numbers_only_to_recipients_with_patient_rights(
    users: dict[str, Any], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    for name in ("officer_nk", "archivist"):
        users[name].email = f"{name}@hospital.example"
        users[name].save(update_fields=["email"])
    discharge(users["archivist"], "ZY-E1", "NK")
    # A recipient whose role gives no patient rights in NK (e.g. after a change of the grants).
    monkeypatch.setattr(notify, "may_read_label", lambda user, department_id: False)
    notify.send_reminders(dt.date(2025, 3, 20))
    [message] = mail.outbox
    assert "ZY-E1" not in message.body and services.MASK in message.body
    assert "ZY-E1" not in "".join(n.body for n in notify.notifications_of(users["officer_nk"]))
    monkeypatch.undo()
    discharge(users["archivist"], "ZY-E2", "NK")
    notify.send_reminders(dt.date(2025, 3, 20))
    assert "ZY-E2" in mail.outbox[-1].body, "the department's officer may read it"
