"""Which database settings can lose an acknowledged commit in a power cut."""

from __future__ import annotations

import pytest

from medarchive.preservation.durability import assess


@pytest.mark.parametrize("level", ["2", "3", "FULL", "extra"])
def test_sqlite_wal_with_full_or_extra_is_durable(level: str) -> None:
    assert assess("sqlite", {"synchronous": level, "journal_mode": "wal"}) == []


@pytest.mark.parametrize(("level", "named"), [("1", "NORMAL"), ("0", "OFF"), ("normal", "NORMAL")])
def test_sqlite_wal_below_full_loses_the_last_commits(level: str, named: str) -> None:
    (problem,) = assess("sqlite", {"synchronous": level, "journal_mode": "wal"})
    assert f"synchronous={named} in WAL mode" in problem and "MEDARCHIVE_SQLITE_SYNCHRONOUS=FULL" in problem


def test_sqlite_rollback_journal_is_durable_unless_off() -> None:
    assert assess("sqlite", {"synchronous": "1", "journal_mode": "delete"}) == []
    assert assess("sqlite", {"synchronous": "0", "journal_mode": "delete"}) != []


def test_postgresql_on_is_durable() -> None:
    values = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    assert assess("postgresql", values) == []
    assert assess("postgresql", {**values, "synchronous_commit": "remote_apply"}) == []
    assert assess("postgresql", {**values, "synchronous_commit": "local"}) == []


@pytest.mark.parametrize(
    ("name", "said"),
    [("fsync", "fsync=off"), ("synchronous_commit", "synchronous_commit=off"), ("full_page_writes", "torn pages")],
)
def test_postgresql_each_setting_that_loses_commits_is_named(name: str, said: str) -> None:
    values = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", name: "off"}
    (problem,) = assess("postgresql", values)
    assert said in problem


def test_other_databases_are_not_judged() -> None:
    assert assess("mysql", {}) == []
