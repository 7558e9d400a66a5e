"""Retention terms and due dates (ARC-05, MED-01). Pure logic.

The due date runs from a trigger event, not from the archiving date: a 住院病案 is kept
30 years from the *last* discharge, so a new discharge moves it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Trigger(StrEnum):
    FORMATION_YEAR = "formation_year"  # end of the year the record was formed (文书)
    FISCAL_YEAR_END = "fiscal_year_end"  # 会计: after the fiscal year closes
    LAST_DISCHARGE = "last_discharge"  # 住院病案
    LAST_VISIT = "last_visit"  # 门(急)诊病案
    ASSET_DISPOSAL = "asset_disposal"  # 固定资产卡片, device records
    NONE = "none"  # permanent


@dataclass(frozen=True)
class Term:
    code: str
    years: int | None  # None = permanent
    trigger: Trigger


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def due_date(term: Term, *, record_date: dt.date, events: dict[str, dt.date] | None = None) -> dt.date | None:
    """The first day the record may be appraised for disposal, or None when kept permanently
    or when the trigger event has not happened yet (an open case is never due)."""
    if term.years is None or term.trigger is Trigger.NONE:
        return None
    events = events or {}
    if term.trigger in {Trigger.FORMATION_YEAR, Trigger.FISCAL_YEAR_END}:
        start = dt.date(record_date.year, 12, 31) + dt.timedelta(days=1)
    else:
        trigger_day = events.get(term.trigger.value)
        if trigger_day is None:
            return None
        start = trigger_day
    return _add_years(start, term.years)
