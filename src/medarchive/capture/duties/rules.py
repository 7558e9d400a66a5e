"""Pure duty logic: periods, due dates, obligation status, completeness and reminder stages.

No Django model or database: everything here is plain dates and values so it is unit-tested directly
(messages are lazy catalog entries).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import Collector, ValidationError


class Kind(StrEnum):
    EVENT = "event"  # a business event (discharge, contract signed) opens one obligation
    RECORD = "record"  # an arriving record matching a filter opens one obligation for another record
    PERIODIC = "periodic"  # each period, each department owes at least N records of a class


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Status(StrEnum):
    ON_TIME = "on_time"  # received by the due date
    LATE = "late"  # received after the due date
    MISSING = "missing"  # due date passed, not received
    PENDING = "pending"  # not received, not yet due


class Stage(StrEnum):
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


# Limits that keep rules meaningful: a duty due in 0 days or in 10 years is a typo.
MAX_DUE_DAYS = 366
MAX_REMIND_DAYS = 60
MAX_COUNT = 10_000
# No "__": the key becomes part of a JSON lookup, and "__" would start a Django lookup (visit__gt).
METADATA_KEY = re.compile(r"^(?=.{1,64}$)[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


# --- periods ------------------------------------------------------------------------------------------


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_start(period: Period | str, day: dt.date) -> dt.date:
    """First day of the period that contains `day`."""
    period = Period(period)
    if period is Period.MONTH:
        return day.replace(day=1)
    if period is Period.QUARTER:
        return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return dt.date(day.year, 1, 1)


def period_end(period: Period | str, start: dt.date) -> dt.date:
    """First day after the period starting at `start` (exclusive end)."""
    return _add_months(start, {Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}[Period(period)])


def previous_start(period: Period | str, start: dt.date) -> dt.date:
    return _add_months(start, -{Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}[Period(period)])


def period_label(period: Period | str, start: dt.date) -> str:
    period = Period(period)
    if period is Period.MONTH:
        return f"{start:%Y-%m}"
    if period is Period.QUARTER:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year}"


_LABEL = re.compile(r"^(?P<year>[0-9]{4})(?:-(?:(?P<month>[0-9]{2})|Q(?P<quarter>[1-4])))?$")


def parse_period(text: str) -> tuple[dt.date, dt.date]:
    """'2025-03', '2025-Q1' or '2025' → (first day, first day after). Clear error otherwise."""
    match = _LABEL.match(text.strip())
    if match is None:
        raise ValidationError(
            _("The period %(period)s is not of the form YYYY-MM, YYYY-Qn or YYYY (e.g. 2025-03, 2025-Q1, 2025)."),
            code="bad_period",
            field="period",
            period=text,
        )
    year = int(match["year"])
    if not 1900 <= year <= 2999:
        raise ValidationError(
            _("The period %(period)s: the year %(year)s is out of range."),
            code="bad_period",
            field="period",
            period=text,
            year=year,
        )
    if match["month"]:
        month = int(match["month"])
        if not 1 <= month <= 12:
            raise ValidationError(
                _("The period %(period)s: there is no month %(month)s."),
                code="bad_period",
                field="period",
                period=text,
                month=month,
            )
        start = dt.date(year, month, 1)
        return start, period_end(Period.MONTH, start)
    if match["quarter"]:
        start = dt.date(year, (int(match["quarter"]) - 1) * 3 + 1, 1)
        return start, period_end(Period.QUARTER, start)
    start = dt.date(year, 1, 1)
    return start, period_end(Period.YEAR, start)


# --- due dates and status -----------------------------------------------------------------------------


def due_after(day: dt.date, days: int) -> dt.date:
    """Due `days` after the triggering day (the whole due day counts as on time)."""
    return day + dt.timedelta(days=days)


def due_for_period(period: Period | str, start: dt.date, due_day: int) -> dt.date:
    """Due on day `due_day` of the month after the period (clamped to that month's length)."""
    following = period_end(period, start)
    last = calendar.monthrange(following.year, following.month)[1]
    return following.replace(day=min(due_day, last))


def status(due: dt.date, fulfilled_on: dt.date | None, today: dt.date) -> Status:
    if fulfilled_on is not None:
        return Status.ON_TIME if fulfilled_on <= due else Status.LATE
    return Status.MISSING if today > due else Status.PENDING


def reminder_stage(due: dt.date, today: dt.date, days_before: int) -> Stage | None:
    """Which reminder an open obligation is at today, if any."""
    if today > due:
        return Stage.OVERDUE
    if days_before > 0 and (due - today).days <= days_before:
        return Stage.DUE_SOON
    return None


@dataclass
class Completeness:
    """Counts for one department (or all) over one period."""

    expected: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0
    pending: int = 0

    @property
    def received(self) -> int:
        return self.on_time + self.late

    @property
    def settled(self) -> int:
        """What can already be judged: received or past due."""
        return self.expected - self.pending

    @property
    def score(self) -> float | None:
        """Share of settled obligations received on time (None when nothing is settled yet)."""
        return None if self.settled == 0 else self.on_time / self.settled

    @property
    def percent(self) -> int | None:
        score = self.score
        return None if score is None else round(score * 100)

    def add(self, state: Status) -> None:
        self.expected += 1
        setattr(self, state.value, getattr(self, state.value) + 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "received": self.received,
            "on_time": self.on_time,
            "late": self.late,
            "missing": self.missing,
            "pending": self.pending,
            "score": None if self.score is None else round(self.score, 4),
        }


def completeness(states: Iterable[Status]) -> Completeness:
    out = Completeness()
    for state in states:
        out.add(state)
    return out


# --- matching and validation ---------------------------------------------------------------------------


def class_family(code: str, parents: Mapping[str, str | None]) -> list[str]:
    """The class and its ancestors (BA-ZY → [BA-ZY, BA]): a duty for BA is met by a BA-ZY record."""
    family, seen = [], set()
    current: str | None = code
    while current and current not in seen:
        family.append(current)
        seen.add(current)
        current = parents.get(current)
    return family


def metadata_matches(wanted: Mapping[str, Any], metadata: Mapping[str, Any]) -> bool:
    """Every wanted key is present with the same value (compared as text, so 5 matches "5")."""
    return all(key in metadata and str(metadata[key]) == str(value) for key, value in wanted.items())


def match_value(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    if value is None or isinstance(value, dict | list) or str(value).strip() == "":
        return None
    return str(value).strip()


@dataclass(frozen=True)
class RuleSpec:
    """A rule as typed by the archivist, before it is checked against the database."""

    name: str
    kind: str
    expected_class: str
    department: str = ""  # empty: every department (event/record: the event's or record's)
    event_kind: str = ""
    trigger_class: str = ""
    trigger_filter: Mapping[str, Any] | None = None
    match_key: str = ""
    due_days: int = 0
    period: str = ""
    due_day: int = 0
    min_count: int = 1
    remind_days: int = 3
    description: str = ""


def check_spec(spec: RuleSpec) -> None:
    """Raise naming every problem with a rule's shape at once (`Problems`; one alone as itself)."""
    problems = Collector()
    name = spec.name.strip()
    if not name:
        problems.add(ValidationError(_("A duty rule needs a name."), code="required", field="name"))
    elif len(name) > 100:
        problems.add(
            ValidationError(
                _("A rule name has at most %(limit)s characters."), code="too_long", field="name", limit=100
            )
        )
    kind = None
    try:
        kind = Kind(spec.kind)
    except ValueError:
        problems.add(
            ValidationError(
                _("Unknown rule kind %(value)s; use one of %(choices)s."),
                code="invalid_choice",
                field="kind",
                value=spec.kind,
                choices=[k.value for k in Kind],
            )
        )
    if not spec.expected_class.strip():
        problems.add(
            ValidationError(
                _("Name the class of the records owed (e.g. BA-ZY)."), code="required", field="expected_class"
            )
        )
    if not 0 <= spec.remind_days <= MAX_REMIND_DAYS:
        problems.add(
            ValidationError(
                _("The reminder must come 0 to %(limit)s days before the due date."),
                code="out_of_range",
                field="remind_days",
                limit=MAX_REMIND_DAYS,
            )
        )
    if kind in (Kind.EVENT, Kind.RECORD):
        _check_linked(spec, kind, problems)
    if kind is Kind.PERIODIC:
        _check_periodic(spec, problems)
    problems.raise_if_any()


def _check_linked(spec: RuleSpec, kind: Kind, problems: Collector) -> None:
    if not 1 <= spec.due_days <= MAX_DUE_DAYS:
        problems.add(
            ValidationError(
                _("A duty is due 1 to %(limit)s days after its trigger, not %(value)s."),
                code="out_of_range",
                field="due_days",
                limit=MAX_DUE_DAYS,
                value=spec.due_days,
            )
        )
    if not METADATA_KEY.match(spec.match_key):
        problems.add(
            ValidationError(
                _("The match key %(value)s must be a metadata key such as visit_number or contract_no."),
                code="bad_metadata_key",
                field="match_key",
                value=spec.match_key,
            )
        )
    if kind is Kind.EVENT and not EVENT_NAME.match(spec.event_kind):
        problems.add(
            ValidationError(
                _("The event kind %(value)s must be a short lower-case name such as discharge."),
                code="bad_event_kind",
                field="event_kind",
                value=spec.event_kind,
            )
        )
    if kind is Kind.RECORD:
        if not spec.trigger_class.strip():
            problems.add(
                ValidationError(
                    _("A record rule names the class of the triggering record."),
                    code="required",
                    field="trigger_class",
                )
            )
        for key, value in (spec.trigger_filter or {}).items():
            if not METADATA_KEY.match(str(key)) or isinstance(value, dict | list) or value is None:
                problems.add(
                    ValidationError(
                        _("Trigger filter entry %(key)s: keys are metadata names, values plain text or numbers."),
                        code="bad_trigger_filter",
                        field="trigger_filter",
                        key=str(key),
                    )
                )


def _check_periodic(spec: RuleSpec, problems: Collector) -> None:
    try:
        Period(spec.period)
    except ValueError:
        problems.add(
            ValidationError(
                _("Unknown period %(value)s; use one of %(choices)s."),
                code="invalid_choice",
                field="period",
                value=spec.period,
                choices=[p.value for p in Period],
            )
        )
    if not 1 <= spec.due_day <= 28:
        problems.add(
            ValidationError(
                _("The due day %(value)s must be a day 1–28 of the month after the period."),
                code="out_of_range",
                field="due_day",
                value=spec.due_day,
            )
        )
    if not 1 <= spec.min_count <= MAX_COUNT:
        problems.add(
            ValidationError(
                _("The minimum count must be between 1 and %(limit)s."),
                code="out_of_range",
                field="min_count",
                limit=MAX_COUNT,
            )
        )
