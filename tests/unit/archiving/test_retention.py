import datetime as dt

from medarchive.archiving.retention import Term, Trigger, due_date


def test_permanent_is_never_due() -> None:
    assert due_date(Term("Y", None, Trigger.NONE), record_date=dt.date(2020, 5, 1)) is None


def test_formation_year_terms_run_from_the_next_first_of_january() -> None:
    assert due_date(Term("D10", 10, Trigger.FORMATION_YEAR), record_date=dt.date(2020, 5, 1)) == dt.date(2031, 1, 1)


def test_inpatient_record_runs_from_the_last_discharge_and_moves_with_it() -> None:
    term = Term("MR30", 30, Trigger.LAST_DISCHARGE)
    first = due_date(term, record_date=dt.date(2001, 1, 1), events={"last_discharge": dt.date(2010, 3, 4)})
    later = due_date(term, record_date=dt.date(2001, 1, 1), events={"last_discharge": dt.date(2019, 7, 8)})
    assert first == dt.date(2040, 3, 4)
    assert later == dt.date(2049, 7, 8)


def test_open_case_without_trigger_event_is_not_due() -> None:
    assert due_date(Term("MR15", 15, Trigger.LAST_VISIT), record_date=dt.date(2020, 1, 1)) is None


def test_leap_day_trigger() -> None:
    term = Term("MR15", 15, Trigger.LAST_VISIT)
    assert due_date(term, record_date=dt.date(2020, 1, 1), events={"last_visit": dt.date(2020, 2, 29)}) == dt.date(
        2035, 2, 28
    )
