"""Duty pages and the /api/v1/duties API: who sees what, masking, filters, rule editing, bad input."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from medarchive.capture.duties import notify, services
from medarchive.capture.duties.models import DutyRule, Notification, Obligation
from medarchive.security.models import AuditEntry
from medarchive.security.services import create_token

pytestmark = pytest.mark.django_db
MARCH = "2025-03"


@pytest.fixture
def duties(users: dict[str, Any]) -> dict[str, Any]:
    """NK: one missing, one on time; BGS: one late, one pending (today is 10 March 2025 in these tests)."""

    def event(visit: str, day: str, department: str) -> Obligation:
        [o] = services.record_event(
            "discharge",
            department_code=department,
            subject_key=visit,
            subject_label=f"患者王五 {visit}",
            occurred_at=timezone.make_aware(dt.datetime.fromisoformat(f"{day}T09:00")),
            actor=users["archivist"],
        )
        return o

    missing = event("ZY-NK-1", "2025-03-01", "NK")
    on_time = event("ZY-NK-2", "2025-03-01", "NK")
    late = event("ZY-BGS-1", "2025-03-01", "BGS")
    pending = event("ZY-BGS-2", "2025-03-08", "BGS")
    Obligation.objects.filter(pk=on_time.pk).update(
        fulfilled_at=timezone.make_aware(dt.datetime.fromisoformat("2025-03-05T12:00"))
    )
    Obligation.objects.filter(pk=late.pk).update(
        fulfilled_at=timezone.make_aware(dt.datetime.fromisoformat("2025-03-09T12:00"))
    )
    return {"missing": missing, "on_time": on_time, "late": late, "pending": pending}


@pytest.fixture(autouse=True)
def today(monkeypatch: Any) -> None:
    from medarchive.core import clock

    monkeypatch.setattr(clock, "today", lambda: dt.date(2025, 3, 10))


def browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- completeness ----------------------------------------------------------------------------------------


def test_report_counts_per_department(users: dict[str, Any], duties: dict[str, Any]) -> None:
    report = services.completeness(users["archivist"], dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    by_code = {r.department.code: r.counts.as_dict() for r in report.rows}
    assert by_code["NK"] | {} == {
        "expected": 2,
        "received": 1,
        "on_time": 1,
        "late": 0,
        "missing": 1,
        "pending": 0,
        "score": 0.5,
    }
    assert by_code["BGS"]["late"] == 1 and by_code["BGS"]["pending"] == 1 and by_code["BGS"]["score"] == 0.0
    assert report.total.expected == 4
    other = services.completeness(users["archivist"], dt.date(2025, 4, 1), dt.date(2025, 5, 1))
    assert other.total.expected == 0 and other.total.score is None


def test_officer_sees_only_own_department(users: dict[str, Any], duties: dict[str, Any]) -> None:
    report = services.completeness(users["officer"], dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    assert [r.department.code for r in report.rows] == ["BGS"]
    with pytest.raises(services.PermissionDenied):
        services.completeness(users["officer"], dt.date(2025, 3, 1), dt.date(2025, 4, 1), department_code="NK")
    with pytest.raises(services.PermissionDenied):
        services.list_obligations(users["officer"], "NK", dt.date(2025, 3, 1), dt.date(2025, 4, 1))


@pytest.mark.parametrize("who", ["researcher", "sysadmin", "auditor", "secadmin"])
def test_roles_without_department_reach_see_no_duties(users: dict[str, Any], duties: dict[str, Any], who: str) -> None:
    with pytest.raises(services.PermissionDenied):
        services.completeness(users[who], dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    response = browser(users[who]).get("/duties/")
    assert response.status_code == 403
    assert "ZY-" not in text(response)


def test_patient_label_masked_without_patient_rights(users: dict[str, Any], duties: dict[str, Any]) -> None:
    march = (dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    officer_rows = services.list_obligations(users["officer"], "BGS", *march)
    assert {r.label for r in officer_rows} == {"患者王五 ZY-BGS-1", "患者王五 ZY-BGS-2"}
    viewer_rows = services.list_obligations(users["viewer"], "BGS", *march)
    assert {r.label for r in viewer_rows} == {services.MASK}
    page = text(browser(users["viewer"]).get("/duties/department/BGS/", {"period": MARCH}))
    assert "ZY-BGS-1" not in page and "王五" not in page, "the visit number identifies a patient too"


def test_obligation_lists_are_audited(users: dict[str, Any], duties: dict[str, Any]) -> None:
    services.list_obligations(users["officer"], "BGS", dt.date(2025, 3, 1), dt.date(2025, 4, 1), status="late")
    entry = AuditEntry.objects.filter(action=services.AUDIT_LIST).latest("seq")
    assert entry.object_id == "BGS"
    assert entry.details["shown"] == [duties["late"].pk]


def test_status_filter_and_bad_status(users: dict[str, Any], duties: dict[str, Any]) -> None:
    march = (dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    rows = services.list_obligations(users["archivist"], "NK", *march, status="missing")
    assert [r.obligation.pk for r in rows] == [duties["missing"].pk]
    with pytest.raises(services.ValidationError, match="状态 lost 不存在"):
        services.list_obligations(users["archivist"], "NK", *march, status="lost")


# --- pages ------------------------------------------------------------------------------------------------


def test_dashboard_shows_counts_and_chart(users: dict[str, Any], duties: dict[str, Any]) -> None:
    response = browser(users["archivist"]).get("/duties/", {"period": MARCH})
    assert response.status_code == 200
    page = text(response)
    assert '<svg class="duty-chart" role="img"' in page
    assert page.count('<g class="bar"') == 2
    for status in ("s-on_time", "s-late", "s-missing", "s-pending"):
        assert f'<rect class="{status}"' in page
    assert "/duties/department/NK/?period=2025-03" in page
    assert "50%" in page  # NK: 1 on time of 2 settled


def test_dashboard_for_officer_and_anonymous(users: dict[str, Any], duties: dict[str, Any]) -> None:
    page = text(browser(users["officer"]).get("/duties/", {"period": MARCH}))
    assert "/duties/department/BGS/" in page and "/duties/department/NK/" not in page
    assert Client().get("/duties/").status_code == 302  # to the login page


def test_bad_period_is_explained(users: dict[str, Any], duties: dict[str, Any]) -> None:
    response = browser(users["archivist"]).get("/duties/", {"period": "2025-13"})
    assert response.status_code == 422
    assert "没有 13 月" in text(response)


def test_department_page_filters_by_status(users: dict[str, Any], duties: dict[str, Any]) -> None:
    client = browser(users["archivist"])
    page = text(client.get("/duties/department/NK/", {"period": MARCH, "status": "missing"}))
    assert "ZY-NK-1" in page and "ZY-NK-2" not in page
    assert client.get("/duties/department/XX/").status_code == 422
    assert browser(users["officer"]).get("/duties/department/NK/").status_code == 403


def test_archivist_adds_a_rule_in_the_form(users: dict[str, Any]) -> None:
    client = browser(users["archivist"])
    form = {
        "name": "门诊病案3日内归档",
        "kind": "event",
        "expected_class": "BA-MZ",
        "event_kind": "visit_closed",
        "match_key": "visit_number",
        "due_days": "3",
        "remind_days": "1",
    }
    response = client.post("/duties/rules/", form)
    assert response.status_code == 302
    assert DutyRule.objects.get(name="门诊病案3日内归档").due_days == 3
    again = client.post("/duties/rules/", form)
    assert again.status_code == 409
    assert "已有名为" in text(again)
    bad = client.post("/duties/rules/", form | {"name": "x", "due_days": "0"})
    assert bad.status_code == 422
    assert 'aria-invalid="true"' in text(bad)
    bad_json = client.post("/duties/rules/", form | {"name": "y", "kind": "record", "trigger_filter": "[1]"})
    assert bad_json.status_code == 422
    assert re.search(r'id="r-filter"[^>]*aria-invalid="true"', text(bad_json)), "the field is marked"


def test_every_problem_of_a_rule_form_is_listed_beside_its_field(users: dict[str, Any]) -> None:
    client = browser(users["archivist"])
    form = {"name": "门诊病案", "kind": "event", "expected_class": "BA-MZ", "match_key": "visit_number"}
    assert client.post("/duties/rules/", form | {"due_days": "3", "event_kind": "visit_closed"}).status_code == 302
    # The same name again, a number the form cannot read, no event, a deadline of 0 days: all at once.
    bad = client.post("/duties/rules/", form | {"due_days": "0", "remind_days": "三天", "event_kind": ""})
    assert bad.status_code == 422
    page = text(bad)
    summary = re.search(r'id="error-summary".*?</div>', page, re.S)
    assert summary is not None
    assert summary.group(0).count("<li>") == 4, summary.group(0)
    for element in ("r-name", "r-remind", "r-event", "r-days"):
        assert re.search(rf'id="{element}"[^>]*aria-invalid="true"', page), element
        assert f'id="{element}-errors"' in page, element
        assert f'href="#{element}"' in summary.group(0), element
    assert "_days" not in summary.group(0) and "_kind" not in summary.group(0)  # no internal field names
    assert "三天" in page  # what was typed is kept
    assert DutyRule.objects.filter(name="门诊病案").count() == 1


def test_rule_switch_and_remove_in_the_page(users: dict[str, Any]) -> None:
    client = browser(users["archivist"])
    rule = DutyRule.objects.get(kind="periodic")
    assert client.post(f"/duties/rules/{rule.pk}/disable/").status_code == 302
    rule.refresh_from_db()
    assert not rule.active
    assert client.post(f"/duties/rules/{rule.pk}/remove/").status_code == 302
    assert not DutyRule.objects.filter(pk=rule.pk).exists()
    assert client.get(f"/duties/rules/{rule.pk}/remove/").status_code == 405


def test_officer_reads_rules_but_cannot_change_them(users: dict[str, Any]) -> None:
    client = browser(users["officer"])
    page = text(client.get("/duties/rules/"))
    assert "出院病案7日内归档" in page and "Add a rule" not in page and "添加" not in page
    rule = DutyRule.objects.get(kind="event")
    assert client.post(f"/duties/rules/{rule.pk}/disable/").status_code == 403
    assert client.post("/duties/rules/", {"name": "x", "kind": "event"}).status_code == 403
    assert DutyRule.objects.get(pk=rule.pk).active


def test_notifications_page_and_mark_read(users: dict[str, Any], duties: dict[str, Any]) -> None:
    notify.send_reminders(dt.date(2025, 3, 10))
    note = Notification.objects.get(recipient=users["officer_nk"])
    client = browser(users["officer_nk"])
    page = text(client.get("/duties/notifications/"))
    assert note.title in page
    other = browser(users["officer"])
    other.post("/duties/notifications/read/", {"id": note.pk})
    note.refresh_from_db()
    assert note.read_at is None, "another user cannot mark it read"
    client.post("/duties/notifications/read/", {"id": note.pk})
    note.refresh_from_db()
    assert note.read_at is not None


def test_notifications_link_tag_shows_the_unread_count(users: dict[str, Any], duties: dict[str, Any]) -> None:
    from django.template import Context, Template
    from django.test import RequestFactory

    notify.send_reminders(dt.date(2025, 3, 10))
    request = RequestFactory().get("/")
    request.user = users["officer_nk"]
    html = Template("{% load duties %}{% notifications_link %}").render(Context({"request": request}))
    assert 'href="/duties/notifications/"' in html and ">1</span>" in html
    request.user = users["clinician"]
    assert ">1</span>" not in Template("{% load duties %}{% notifications_link %}").render(
        Context({"request": request})
    )


# --- API --------------------------------------------------------------------------------------------------


def api(user: Any) -> dict[str, str]:
    _, raw = create_token(user, actor=None, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_api_status_and_obligations(users: dict[str, Any], duties: dict[str, Any]) -> None:
    client = Client()
    response = client.get("/api/v1/duties/status", {"period": MARCH}, **api(users["officer"]))
    assert response.status_code == 200, response.content
    body = response.json()
    assert [d["code"] for d in body["departments"]] == ["BGS"]
    assert body["total"]["late"] == 1
    rows = client.get("/api/v1/duties/obligations", {"department": "BGS", "period": MARCH}, **api(users["viewer"]))
    assert {r["subject_label"] for r in rows.json()} == {services.MASK}
    denied = client.get("/api/v1/duties/obligations", {"department": "NK"}, **api(users["officer"]))
    assert denied.status_code == 403
    assert client.get("/api/v1/duties/status", {"period": "march"}, **api(users["officer"])).status_code == 422
    assert client.get("/api/v1/duties/status").status_code == 401


def test_api_events_are_idempotent(users: dict[str, Any]) -> None:
    client = Client()
    event = {
        "kind": "discharge",
        "department": "NK",
        "subject_key": "ZY-API-1",
        "occurred_at": "2025-03-01T09:00:00+08:00",
        "source": "HIS",
    }
    first = client.post(
        "/api/v1/duties/events", json.dumps(event), content_type="application/json", **api(users["archivist"])
    )
    assert first.status_code == 200, first.content
    second = client.post(
        "/api/v1/duties/events", json.dumps(event), content_type="application/json", **api(users["archivist"])
    )
    assert [o["id"] for o in first.json()] == [o["id"] for o in second.json()]
    assert first.json()[0]["due_on"] == "2025-03-08"
    bad = client.post(
        "/api/v1/duties/events",
        json.dumps(event | {"department": "XX"}),
        content_type="application/json",
        **api(users["archivist"]),
    )
    assert bad.status_code == 422 and bad.json()["field"] == "department"


def test_api_rules_crud(users: dict[str, Any]) -> None:
    client = Client()
    headers = api(users["archivist"])
    rule = {
        "name": "季度人事档案",
        "kind": "periodic",
        "expected_class": "RS",
        "period": "quarter",
        "due_day": 15,
        "min_count": 2,
    }
    created = client.post("/api/v1/duties/rules", json.dumps(rule), content_type="application/json", **headers)
    assert created.status_code == 201, created.content
    rule_id = created.json()["id"]
    patched = client.patch(
        f"/api/v1/duties/rules/{rule_id}", json.dumps({"min_count": 3}), content_type="application/json", **headers
    )
    assert patched.json()["min_count"] == 3
    zero = client.patch(
        f"/api/v1/duties/rules/{rule_id}", json.dumps({"due_day": 0}), content_type="application/json", **headers
    )
    assert zero.status_code == 422 and zero.json()["field"] == "due_day"
    duplicate = client.post("/api/v1/duties/rules", json.dumps(rule), content_type="application/json", **headers)
    assert duplicate.status_code == 409
    officer = client.post(
        "/api/v1/duties/rules",
        json.dumps(rule | {"name": "z"}),
        content_type="application/json",
        **api(users["officer"]),
    )
    assert officer.status_code == 403
    assert client.delete(f"/api/v1/duties/rules/{rule_id}", **headers).status_code == 204
    assert client.delete(f"/api/v1/duties/rules/{rule_id}", **headers).status_code == 404
    names = [r["name"] for r in client.get("/api/v1/duties/rules", **api(users["officer"])).json()]
    assert "出院病案7日内归档" in names
