"""Duties against the real database: events open obligations, records arriving at the door fulfil them."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.utils import timezone, translation

from medarchive.capture.duties import rules, services
from medarchive.capture.duties.models import DutyRule, Obligation
from medarchive.capture.duties.rules import RuleSpec
from medarchive.capture.intake import Item, receive
from medarchive.capture.models import Channel
from medarchive.capture.services import Description, IncomingFile
from medarchive.core.errors import Conflict, NotFound, PermissionDenied, Problems, ValidationError

pytestmark = pytest.mark.django_db

DISCHARGE_RULE = "出院病案7日内归档"
CONTRACT_RULE = "采购合同签订后30日内归档设备档案"
MONTHLY_RULE = "每月文书档案次月10日前归档"


def at(day: str, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour)))


def arrive(actor: Any, *, class_code: str, department: str = "NK", date: str = "2025-03-05", **metadata: Any) -> Any:
    """A record through the door, like every connector sends it."""
    body = b"%PDF-1.7\n" + repr((class_code, date, sorted(metadata.items()))).encode() * 40
    item = Item(
        description=Description(
            class_code=class_code,
            department_code=department,
            title=f"{class_code} {metadata}",
            date=date,
            responsible="测试",
            metadata=metadata,
        ),
        files=[IncomingFile(name="doc.pdf", stream=io.BytesIO(body))],
    )
    outcome = receive([item], actor=actor, channel=Channel.WEB).outcomes[0]
    assert outcome.ok, outcome.error and outcome.error.message
    return outcome.record


def discharge(users: dict[str, Any], visit: str, day: str = "2025-03-01", department: str = "NK") -> list[Obligation]:
    return services.record_event(
        "discharge",
        department_code=department,
        subject_key=visit,
        subject_label=f"住院号 {visit}",
        occurred_at=at(day),
        actor=users["archivist"],
        source="HIS^HOSP MSG1",
    )


def test_defaults_are_installed_by_the_migration(archive: Any) -> None:
    names = set(DutyRule.objects.values_list("name", flat=True))
    assert {DISCHARGE_RULE, CONTRACT_RULE, MONTHLY_RULE} <= names
    assert services.install_defaults() == 0  # idempotent


def test_discharge_opens_one_obligation_due_in_seven_days_and_is_idempotent(users: dict[str, Any]) -> None:
    first = discharge(users, "ZY2025-0001")
    assert len(first) == 1
    obligation = first[0]
    assert obligation.due_on == dt.date(2025, 3, 8)
    assert obligation.expected_class == "BA-ZY"
    assert obligation.department.code == "NK"
    assert obligation.fulfilled_at is None
    again = discharge(users, "ZY2025-0001")
    assert [o.pk for o in again] == [obligation.pk]
    assert Obligation.objects.count() == 1


def test_inpatient_record_with_the_visit_number_fulfils_it(users: dict[str, Any]) -> None:
    [obligation] = discharge(users, "ZY2025-0002")
    other = arrive(
        users["archivist"], class_code="BA-ZY", visit_number="ZY2025-9999", patient_id="P1", patient_name="甲"
    )
    obligation.refresh_from_db()
    assert obligation.fulfilled_at is None, "a record for another visit must not count"
    record = arrive(
        users["archivist"], class_code="BA-ZY", visit_number="ZY2025-0002", patient_id="P2", patient_name="乙"
    )
    obligation.refresh_from_db()
    assert obligation.record_id == record.pk
    assert obligation.fulfilled_at is not None
    assert other.pk != record.pk


def test_record_that_arrived_before_the_event_fulfils_it_at_once(users: dict[str, Any]) -> None:
    record = arrive(users["archivist"], class_code="BA-ZY", visit_number="ZY-EARLY", patient_id="P3", patient_name="丙")
    [obligation] = discharge(users, "ZY-EARLY")
    assert obligation.record_id == record.pk


def test_unknown_department_and_bad_subject_are_clear_errors(users: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        discharge(users, "ZY1", department="XX")
    assert (info.value.code, info.value.field, info.value.details["department"]) == (
        "unknown_department",
        "department",
        "XX",
    )
    with pytest.raises(ValidationError) as info:
        discharge(users, " ")
    assert info.value.field == "subject_key"
    with pytest.raises(ValidationError, match="事件类型"):
        services.record_event(
            "Discharge!",
            department_code="NK",
            subject_key="1",
            subject_label="",
            occurred_at=at("2025-03-01"),
            actor=users["archivist"],
        )


def test_only_who_may_submit_for_the_department_records_events(users: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied):
        services.record_event(
            "discharge",
            department_code="NK",
            subject_key="ZY-X",
            subject_label="",
            occurred_at=at("2025-03-01"),
            actor=users["officer"],  # BGS officer, NK event
        )
    assert Obligation.objects.count() == 0
    services.record_event(
        "discharge",
        department_code="NK",
        subject_key="ZY-X",
        subject_label="",
        occurred_at=at("2025-03-01"),
        actor=users["officer_nk"],
    )
    assert Obligation.objects.count() == 1


def test_unmatched_event_kind_opens_nothing(users: dict[str, Any]) -> None:
    assert (
        services.record_event(
            "contract_signed",
            department_code="NK",
            subject_key="HT-1",
            subject_label="",
            occurred_at=at("2025-03-01"),
            actor=users["archivist"],
        )
        == []
    )


def test_signed_contract_opens_equipment_file_duty(users: dict[str, Any]) -> None:
    contract = arrive(
        users["archivist"],
        class_code="KJ-SB",
        department="BGS",
        date="2025-04-01",
        doc_type="采购合同",
        contract_no="HT-7",
    )
    [obligation] = Obligation.objects.filter(rule__name=CONTRACT_RULE)
    assert obligation.subject_key == "HT-7"
    assert obligation.due_on == dt.date(2025, 5, 1)
    assert obligation.trigger_record_id == contract.pk
    assert obligation.fulfilled_at is None, "the contract itself is not the equipment file"
    arrive(
        users["archivist"],
        class_code="KJ-SB",
        department="BGS",
        date="2025-04-02",
        doc_type="采购合同",
        contract_no="HT-7",
    )
    obligation.refresh_from_db()
    assert obligation.fulfilled_at is None, "a second copy of the contract is not the equipment file"
    acceptance = arrive(
        users["archivist"],
        class_code="KJ-SB",
        department="BGS",
        date="2025-04-20",
        doc_type="验收报告",
        contract_no="HT-7",
    )
    obligation.refresh_from_db()
    assert obligation.record_id == acceptance.pk
    assert Obligation.objects.filter(rule__name=CONTRACT_RULE).count() == 1


def test_contract_without_number_opens_nothing(users: dict[str, Any]) -> None:
    arrive(users["archivist"], class_code="KJ-SB", department="BGS", doc_type="采购合同")
    assert not Obligation.objects.filter(rule__name=CONTRACT_RULE).exists()


def test_periodic_duty_counts_records_dated_in_the_month(users: dict[str, Any]) -> None:
    DutyRule.objects.filter(name=MONTHLY_RULE).update(min_count=2, created_at=at("2024-12-01"))
    opened = services.open_periodic(dt.date(2025, 3, 15))
    assert opened == 4  # Feb and Mar × BGS and NK
    assert services.open_periodic(dt.date(2025, 3, 20)) == 0
    march = Obligation.objects.get(subject_key="BGS:2025-03")
    assert march.due_on == dt.date(2025, 4, 10)
    assert march.required_count == 2
    arrive(users["officer"], class_code="WS", department="BGS", date="2025-03-03")
    arrive(users["officer"], class_code="WS", department="BGS", date="2025-02-28")  # another month
    march.refresh_from_db()
    assert (march.received_count, march.fulfilled_at) == (1, None)
    second = arrive(users["officer"], class_code="WS", department="BGS", date="2025-03-31")
    march.refresh_from_db()
    assert march.received_count == 2
    assert march.record_id == second.pk
    assert Obligation.objects.get(subject_key="BGS:2025-02").received_count == 1


def test_new_periodic_rule_does_not_blame_the_past(users: dict[str, Any]) -> None:
    DutyRule.objects.filter(name=MONTHLY_RULE).update(created_at=at("2025-03-02"))
    assert services.open_periodic(dt.date(2025, 3, 15)) == 2  # March only, for BGS and NK
    assert not Obligation.objects.filter(subject_key__endswith=":2025-02").exists()


def test_periodic_rule_for_one_department_and_a_quarter(users: dict[str, Any]) -> None:
    rule = services.add_rule(
        RuleSpec(
            name="季度人事档案", kind="periodic", expected_class="RS", department="NK", period="quarter", due_day=15
        ),
        actor=users["archivist"],
    )
    DutyRule.objects.filter(name=MONTHLY_RULE).update(active=False)
    assert services.open_periodic(dt.date(2025, 5, 3)) == 1
    [obligation] = Obligation.objects.filter(rule=rule)
    assert (obligation.subject_key, obligation.due_on) == ("NK:2025-Q2", dt.date(2025, 7, 15))
    assert obligation.period_end == dt.date(2025, 7, 1)


def test_withdrawn_record_reopens_the_obligation(users: dict[str, Any]) -> None:
    from medarchive.archiving.models import RecordState
    from medarchive.capture.duties.handlers import on_intake_changed

    [obligation] = discharge(users, "ZY-W")
    record = arrive(users["archivist"], class_code="BA-ZY", visit_number="ZY-W", patient_id="P", patient_name="丁")
    obligation.refresh_from_db()
    assert obligation.record_id == record.pk
    type(record).objects.filter(pk=record.pk).update(state=RecordState.WITHDRAWN)
    on_intake_changed(None, intake=record.intake, step="withdrawn")
    obligation.refresh_from_db()
    assert (obligation.fulfilled_at, obligation.record_id) == (None, None)


# --- rules --------------------------------------------------------------------------------------------


def spec(**fields: Any) -> RuleSpec:
    base: dict[str, Any] = {
        "name": "门诊病案3日内归档",
        "kind": "event",
        "event_kind": "visit_closed",
        "expected_class": "BA-MZ",
        "match_key": "visit_number",
        "due_days": 3,
    }
    return RuleSpec(**(base | fields))


def test_archivist_adds_updates_and_removes_rules(users: dict[str, Any]) -> None:
    rule = services.add_rule(spec(), actor=users["archivist"])
    assert rule.pk and rule.active
    rule = services.update_rule(rule.pk, {"due_days": 5, "active": False}, actor=users["archivist"])
    assert (rule.due_days, rule.active) == (5, False)
    services.remove_rule(rule.name, actor=users["archivist"])
    with pytest.raises(NotFound):
        services.get_rule(rule.name)


@pytest.mark.parametrize(
    ("fields", "field", "code", "english"),
    [
        ({"expected_class": "ZZ"}, "expected_class", "unknown_class", "The class ZZ does not exist"),
        ({"department": "XX"}, "department", "unknown_department", "The department XX does not exist"),
        ({"due_days": 0}, "due_days", "out_of_range", "due 1 to 366 days after its trigger, not 0"),
        ({"match_key": "visit_number__gt"}, "match_key", "bad_metadata_key", "must be a metadata key"),
        ({"kind": "weekly"}, "kind", "invalid_choice", "Unknown rule kind weekly"),
        ({"kind": "periodic", "period": "fortnight", "due_day": 5}, "period", "invalid_choice", "Unknown period"),
        ({"kind": "periodic", "period": "month", "due_day": 0}, "due_day", "out_of_range", "1–28"),
        ({"kind": "periodic", "period": "month", "due_day": 5, "min_count": 0}, "min_count", "out_of_range", "minimum"),
        ({"kind": "record", "trigger_class": "ZZ"}, "trigger_class", "unknown_class", "The class ZZ does not exist"),
        ({"kind": "record", "trigger_class": ""}, "trigger_class", "required", "triggering record"),
        ({"name": "  "}, "name", "required", "needs a name"),
    ],
)
def test_bad_rules_are_refused_with_the_field(
    users: dict[str, Any], fields: dict[str, Any], field: str, code: str, english: str
) -> None:
    with pytest.raises(ValidationError) as info:
        services.add_rule(spec(**fields), actor=users["archivist"])
    assert (info.value.code, info.value.field) == (code, field)
    with translation.override("en"):
        assert english in info.value.message
    assert not DutyRule.objects.filter(name="门诊病案3日内归档").exists()


def test_every_problem_of_a_rule_is_reported_at_once(users: dict[str, Any]) -> None:
    with pytest.raises(Problems) as info:
        services.add_rule(
            spec(name=DISCHARGE_RULE, expected_class="ZZ", due_days=0, department="XX"), actor=users["archivist"]
        )
    assert [(p.code, p.field) for p in info.value.problems] == [
        ("out_of_range", "due_days"),
        ("unknown_class", "expected_class"),
        ("unknown_department", "department"),
        ("rule_exists", "name"),
    ]
    assert info.value.status == 422
    assert info.value.by_field()["due_days"] == ["归档期限须为触发后 1 到 366 天，而不是 0 天。"]


def test_duplicate_rule_name_is_a_conflict(users: dict[str, Any]) -> None:
    with pytest.raises(Conflict) as info:
        services.add_rule(spec(name=DISCHARGE_RULE), actor=users["archivist"])
    assert (info.value.code, info.value.field, info.value.status) == ("rule_exists", "name", 409)
    other = services.add_rule(spec(), actor=users["archivist"])
    with pytest.raises(Conflict) as info:
        services.update_rule(other.pk, {"name": DISCHARGE_RULE}, actor=users["archivist"])
    assert info.value.code == "rule_exists"


def test_rule_with_history_cannot_be_removed(users: dict[str, Any]) -> None:
    discharge(users, "ZY-H")
    with pytest.raises(Conflict) as info:
        services.remove_rule(DISCHARGE_RULE, actor=users["archivist"])
    assert info.value.code == "rule_in_use" and info.value.details["count"] == 1


@pytest.mark.parametrize("who", ["officer", "clinician", "viewer", "sysadmin", "auditor", "interface_less"])
def test_only_the_archivist_manages_rules(users: dict[str, Any], who: str) -> None:
    actor = users.get(who, users["researcher"])
    with pytest.raises(PermissionDenied):
        services.add_rule(spec(), actor=actor)
    with pytest.raises(PermissionDenied):
        services.update_rule(DISCHARGE_RULE, {"due_days": 1}, actor=actor)
    with pytest.raises(PermissionDenied):
        services.remove_rule(DISCHARGE_RULE, actor=actor)
    assert DutyRule.objects.get(name=DISCHARGE_RULE).due_days == 7


def test_draft_submitted_later_fulfils_and_a_return_keeps_it_received(users: dict[str, Any], make_record: Any) -> None:
    from medarchive.capture import review

    DutyRule.objects.filter(name=MONTHLY_RULE).update(created_at=at("2024-12-01"))
    services.open_periodic(dt.date(2025, 3, 15))
    march = Obligation.objects.get(subject_key="BGS:2025-03")
    draft = make_record(actor=users["officer"], department="BGS", class_code="WS", date="2025-03-02")
    services.reconcile()
    march.refresh_from_db()
    assert march.fulfilled_at is None, "a draft has not reached the archive"
    review.submit(draft.pk, actor=users["officer"])
    march.refresh_from_db()
    assert march.record_id == draft.pk
    review.return_to_department(draft.pk, actor=users["archivist"], comment="请补充签发人")
    assert services.reconcile() == 0
    march.refresh_from_db()
    assert march.record_id == draft.pk and march.received_count == 1


def test_a_failure_in_duties_never_refuses_a_record(
    users: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    [obligation] = discharge(users, "ZY-BOOM")

    def boom(record: Any) -> None:
        Obligation.objects.filter(pk=obligation.pk).update(received_count=99)  # rolled back with the savepoint
        raise RuntimeError("bug in duties")

    monkeypatch.setattr(services, "on_record_received", boom)
    record = arrive(users["archivist"], class_code="BA-ZY", visit_number="ZY-BOOM", patient_id="P", patient_name="戊")
    assert type(record).objects.filter(pk=record.pk).exists()
    obligation.refresh_from_db()
    assert (obligation.fulfilled_at, obligation.received_count) == (None, 0)
    assert "could not update obligations" in caplog.text
    monkeypatch.undo()
    assert services.reconcile() == 1, "the worker catches up"
    obligation.refresh_from_db()
    assert obligation.record_id == record.pk


def test_obligations_count_in_the_period_of_their_trigger(users: dict[str, Any]) -> None:
    discharge(users, "ZY-JAN", day="2025-01-31")
    discharge(users, "ZY-FEB", day="2025-02-01")
    archivist = users["archivist"]
    assert services.completeness(archivist, *rules.parse_period("2025-01")).total.expected == 1
    assert services.completeness(archivist, *rules.parse_period("2025-Q1")).total.expected == 2
    assert services.completeness(archivist, *rules.parse_period("2025")).total.expected == 2
    assert services.completeness(archivist, *rules.parse_period("2024")).total.expected == 0
    with pytest.raises(ValidationError, match="期间的结束早于开始"):
        services.completeness(archivist, dt.date(2025, 2, 1), dt.date(2025, 1, 1))
