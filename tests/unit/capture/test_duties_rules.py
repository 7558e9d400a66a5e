"""Pure duty logic: periods, due dates, status, reminder stages, completeness, rule shapes, the chart."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from medarchive.capture.duties import chart, rules
from medarchive.capture.duties.rules import Completeness, Period, RuleSpec, Stage, Status
from medarchive.core.errors import ValidationError

days = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2990, 12, 31))


@given(days, st.sampled_from(list(Period)))
def test_period_contains_the_day_and_round_trips_through_its_label(day: dt.date, period: Period) -> None:
    start = rules.period_start(period, day)
    end = rules.period_end(period, start)
    assert start <= day < end
    assert rules.parse_period(rules.period_label(period, start)) == (start, end)
    assert rules.period_end(period, rules.previous_start(period, start)) == start


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2025-03", dt.date(2025, 3, 1), dt.date(2025, 4, 1)),
        ("2025-12", dt.date(2025, 12, 1), dt.date(2026, 1, 1)),
        ("2025-Q4", dt.date(2025, 10, 1), dt.date(2026, 1, 1)),
        (" 2024 ", dt.date(2024, 1, 1), dt.date(2025, 1, 1)),
    ],
)
def test_parse_period(text: str, start: dt.date, end: dt.date) -> None:
    assert rules.parse_period(text) == (start, end)


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("2025-13", "there is no month 13"),
        ("2025-00", "there is no month 0"),
        ("2025-Q5", "is not of the form YYYY-MM"),
        ("March", "is not of the form YYYY-MM"),
        ("", "is not of the form YYYY-MM"),
        ("0999", "out of range"),
        ("２０２５", "is not of the form YYYY-MM"),  # full-width digits are not a period
    ],
)
def test_bad_periods_are_named(text: str, english: str) -> None:
    with pytest.raises(ValidationError) as info:
        rules.parse_period(text)
    assert (info.value.code, info.value.field, info.value.details["period"]) == ("bad_period", "period", text)
    with translation.override("en"):
        assert english in info.value.message
    with translation.override("zh-hans"):
        assert info.value.message.startswith(f"期间 {text}")


def test_due_dates() -> None:
    assert rules.due_after(dt.date(2025, 2, 25), 7) == dt.date(2025, 3, 4)
    assert rules.due_for_period(Period.MONTH, dt.date(2025, 1, 1), 10) == dt.date(2025, 2, 10)
    assert rules.due_for_period(Period.QUARTER, dt.date(2025, 10, 1), 15) == dt.date(2026, 1, 15)
    assert rules.due_for_period(Period.YEAR, dt.date(2024, 1, 1), 28) == dt.date(2025, 1, 28)


@given(days, st.integers(min_value=1, max_value=28), st.sampled_from(list(Period)))
def test_periodic_due_date_falls_after_the_period(day: dt.date, due_day: int, period: Period) -> None:
    start = rules.period_start(period, day)
    due = rules.due_for_period(period, start, due_day)
    assert due >= rules.period_end(period, start)
    assert due.day == due_day


def test_status_on_the_due_day_is_on_time() -> None:
    due = dt.date(2025, 3, 8)
    assert rules.status(due, dt.date(2025, 3, 8), dt.date(2025, 4, 1)) is Status.ON_TIME
    assert rules.status(due, dt.date(2025, 3, 9), dt.date(2025, 4, 1)) is Status.LATE
    assert rules.status(due, None, dt.date(2025, 3, 8)) is Status.PENDING
    assert rules.status(due, None, dt.date(2025, 3, 9)) is Status.MISSING


def test_reminder_stages() -> None:
    due = dt.date(2025, 3, 8)
    assert rules.reminder_stage(due, dt.date(2025, 3, 5), 2) is None
    assert rules.reminder_stage(due, dt.date(2025, 3, 6), 2) is Stage.DUE_SOON
    assert rules.reminder_stage(due, dt.date(2025, 3, 8), 2) is Stage.DUE_SOON
    assert rules.reminder_stage(due, dt.date(2025, 3, 9), 2) is Stage.OVERDUE
    assert rules.reminder_stage(due, dt.date(2025, 3, 8), 0) is None, "0 days before: no early reminder"


def test_completeness_score_counts_only_what_is_settled() -> None:
    counts = rules.completeness([Status.ON_TIME, Status.LATE, Status.MISSING, Status.PENDING, Status.ON_TIME])
    assert (counts.expected, counts.received, counts.settled) == (5, 3, 4)
    assert counts.score == 0.5 and counts.percent == 50
    assert Completeness().score is None and Completeness().percent is None
    assert rules.completeness([Status.PENDING]).score is None
    assert counts.as_dict()["score"] == 0.5


def test_class_family_and_cycles() -> None:
    parents: dict[str, str | None] = {"BA-ZY": "BA", "BA": None, "X": "Y", "Y": "X"}
    assert rules.class_family("BA-ZY", parents) == ["BA-ZY", "BA"]
    assert rules.class_family("X", parents) == ["X", "Y"], "a cycle in bad data ends"
    assert rules.class_family("NEW", parents) == ["NEW"]


def test_metadata_matching() -> None:
    assert rules.metadata_matches({"doc_type": "采购合同"}, {"doc_type": "采购合同", "x": 1})
    assert not rules.metadata_matches({"doc_type": "采购合同"}, {"doc_type": "验收报告"})
    assert not rules.metadata_matches({"doc_type": "采购合同"}, {})
    assert rules.metadata_matches({"n": 5}, {"n": "5"})
    assert rules.metadata_matches({}, {})
    assert rules.match_value({"visit_number": " ZY1 "}, "visit_number") == "ZY1"
    for empty in ({}, {"visit_number": ""}, {"visit_number": None}, {"visit_number": ["a"]}):
        assert rules.match_value(empty, "visit_number") is None


def spec(**fields: object) -> RuleSpec:
    base: dict[str, object] = {
        "name": "r",
        "kind": "event",
        "expected_class": "BA-ZY",
        "event_kind": "discharge",
        "match_key": "visit_number",
        "due_days": 7,
    }
    return RuleSpec(**(base | fields))  # type: ignore[arg-type]


def test_good_specs_pass() -> None:
    rules.check_spec(spec())
    rules.check_spec(
        spec(kind="record", trigger_class="KJ-SB", trigger_filter={"doc_type": "采购合同"}, match_key="contract_no")
    )
    rules.check_spec(spec(kind="periodic", period="month", due_day=10, min_count=3))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"kind": "daily"}, "kind"),
        ({"expected_class": " "}, "expected_class"),
        ({"due_days": 0}, "due_days"),
        ({"due_days": -3}, "due_days"),
        ({"due_days": rules.MAX_DUE_DAYS + 1}, "due_days"),
        ({"remind_days": -1}, "remind_days"),
        ({"remind_days": rules.MAX_REMIND_DAYS + 1}, "remind_days"),
        ({"match_key": ""}, "match_key"),
        ({"match_key": "visit__number"}, "match_key"),
        ({"match_key": "Visit"}, "match_key"),
        ({"match_key": "a" * 65}, "match_key"),
        ({"event_kind": ""}, "event_kind"),
        ({"event_kind": "出院"}, "event_kind"),
        ({"kind": "record", "trigger_class": ""}, "trigger_class"),
        ({"kind": "record", "trigger_class": "KJ-SB", "trigger_filter": {"a__b": "x"}}, "trigger_filter"),
        ({"kind": "record", "trigger_class": "KJ-SB", "trigger_filter": {"doc_type": ["x"]}}, "trigger_filter"),
        ({"kind": "periodic", "period": "week", "due_day": 5}, "period"),
        ({"kind": "periodic", "period": "month", "due_day": 0}, "due_day"),
        ({"kind": "periodic", "period": "month", "due_day": 31}, "due_day"),
        ({"kind": "periodic", "period": "month", "due_day": 5, "min_count": 0}, "min_count"),
    ],
)
def test_bad_specs_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        rules.check_spec(spec(**fields))
    assert info.value.field == field


@given(st.text(max_size=80))
def test_metadata_key_never_contains_a_lookup(key: str) -> None:
    if rules.METADATA_KEY.match(key):
        assert "__" not in key and key.isascii() and key == key.lower() and key[0].isalpha()


def test_chart_scales_bars_to_the_largest_department() -> None:
    big = rules.completeness([Status.ON_TIME] * 6 + [Status.MISSING] * 2)
    small = rules.completeness([Status.LATE, Status.PENDING])
    drawn = chart.build([("内科", big), ("院办公室", small), ("空", Completeness())])
    first, second, empty = drawn.bars
    assert [s.status for s in first.segments] == ["on_time", "missing"]
    assert sum(s.width for s in first.segments) == pytest.approx(chart.BAR_WIDTH)
    assert sum(s.width for s in second.segments) == pytest.approx(chart.BAR_WIDTH / 4)
    assert second.segments[0].x == chart.LABEL_WIDTH
    assert empty.segments == [] and empty.percent is None
    assert first.percent == 75
    assert drawn.height > second.y + chart.BAR_HEIGHT
    assert chart.build([]).bars == []
