import dataclasses
import datetime as dt

import pytest

from medarchive.security import chain

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _build(n: int, algorithm: str = "sm3") -> list[chain.ChainEntry]:
    entries, prev = [], chain.GENESIS
    for seq in range(1, n + 1):
        entry = chain.ChainEntry(
            seq=seq,
            at=T0 + dt.timedelta(seconds=seq),
            actor_id=1,
            actor_name="王档案",
            action="record:content:read",
            object_type="record",
            object_id=f"r{seq}",
            result="success",
            source="10.0.0.1",
            details={"file": "病历.pdf"},
            algorithm=algorithm,
            prev_hash=prev,
        )
        entry = dataclasses.replace(entry, entry_hash=chain.seal(entry))
        entries.append(entry)
        prev = entry.entry_hash
    return entries


@pytest.mark.parametrize("algorithm", ["sm3", "sha256"])
def test_intact_chain_verifies(algorithm: str) -> None:
    entries = _build(5, algorithm)
    report = chain.verify(entries, head_seq=5, head_hash=entries[-1].entry_hash)
    assert report.ok and report.checked == 5


def test_edited_field_is_found_at_its_entry() -> None:
    entries = _build(5)
    entries[2] = dataclasses.replace(entries[2], actor_name="someone else")
    report = chain.verify(entries, head_seq=5, head_hash=entries[-1].entry_hash)
    assert not report.ok and report.first_bad_seq == 3 and "altered" in (report.problem or "")


def test_deleted_entry_is_found() -> None:
    entries = _build(5)
    del entries[1]
    report = chain.verify(entries, head_seq=5, head_hash=entries[-1].entry_hash)
    assert not report.ok and report.first_bad_seq == 2 and "missing" in (report.problem or "")


def test_reordered_entries_are_found() -> None:
    entries = _build(5)
    a, b = entries[1], entries[2]
    entries[1] = dataclasses.replace(b, seq=2)
    entries[2] = dataclasses.replace(a, seq=3)
    report = chain.verify(entries, head_seq=5, head_hash=entries[-1].entry_hash)
    assert not report.ok and report.first_bad_seq == 2


def test_cut_off_tail_is_found_through_the_head() -> None:
    entries = _build(5)
    report = chain.verify(entries[:4], head_seq=5, head_hash=entries[-1].entry_hash)
    assert not report.ok and report.first_bad_seq == 5 and "removed" in (report.problem or "")


def test_naive_timestamps_are_refused() -> None:
    entry = dataclasses.replace(_build(1)[0], at=dt.datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone"):
        chain.seal(entry)
