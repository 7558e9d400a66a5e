"""The watched folder (CAP-08): drops are captured once and moved; restarts and crashes capture nothing twice."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation

from medarchive.archiving.models import Record
from medarchive.capture.batch import folder as module
from medarchive.capture.batch.folder import ORPHAN_SECONDS, Watcher, scan, scan_as
from medarchive.capture.models import Submission
from medarchive.core.errors import PermissionDenied, ValidationError


@pytest.fixture(autouse=True)
def _in_english() -> Iterator[None]:
    """These tests read what the messages say in English (the msgids); zh-Hans is the catalog's."""
    with translation.override("en"):
        yield


LATER = 3600.0  # scans look from an hour on: every drop has settled


@pytest.fixture
def his(archive: Any) -> Any:
    from medarchive.security.services import add_user

    return add_user("his", actor=None, role="interface", password="Correct-Horse-42")


@pytest.fixture
def watch(tmp_path: Path) -> Path:
    root = tmp_path / "watch"
    (root / "inbox").mkdir(parents=True)
    (root / "defaults.json").write_text(json.dumps({"门类": "WS", "部门": "BGS", "日期": "2025-03-01"}))
    return root


def _pdf(tag: str) -> bytes:
    return b"%PDF-1.7\n" + f"watched {tag} ".encode() * 30


def _drop(watch: Path, name: str, data: bytes, sidecar: dict[str, Any] | str | None = None) -> Path:
    path = watch / "inbox" / name
    path.write_bytes(data)
    if isinstance(sidecar, dict):
        (watch / "inbox" / f"{name}.json").write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
    elif isinstance(sidecar, str):
        (watch / "inbox" / f"{name}.csv").write_text(sidecar, encoding="utf-8")
    return path


def _scan(watch: Path, actor: Any, **kw: Any) -> Any:
    return scan(watch, actor, now=time.time() + LATER, **kw)


def _names(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def test_drops_with_and_without_sidecars_are_captured_once_and_moved_to_done(his: Any, watch: Path) -> None:
    _drop(watch, "plain.pdf", _pdf("plain"))
    _drop(
        watch,
        "出院记录.pdf",
        _pdf("json"),
        {
            "题名": "出院记录",
            "门类": "住院病案",
            "部门": "内科",
            "metadata": {"patient_id": "P1", "patient_name": "张三"},
        },
    )
    _drop(watch, "notice.pdf", _pdf("csv"), 'title,doc_number,keywords\n关于开会的通知,院办〔2025〕1号,"会议,通知"\n')

    summary = _scan(watch, his)

    assert [(o.name, o.status, o.moved_to) for o in summary.outcomes] == [
        ("notice.pdf", "received", "done"),
        ("plain.pdf", "received", "done"),
        ("出院记录.pdf", "received", "done"),
    ]
    assert _names(watch / "inbox") == []
    assert _names(watch / "done") == sorted(
        ["notice.pdf", "notice.pdf.csv", "plain.pdf", "出院记录.pdf", "出院记录.pdf.json"]
    )
    plain = Record.objects.get(title="plain")  # the file's name stands in for 题名
    assert (plain.archive_class.code, plain.department.code, str(plain.date)) == ("WS", "BGS", "2025-03-01")
    inpatient = Record.objects.get(title="出院记录")
    assert (inpatient.archive_class.code, inpatient.state) == ("BA-ZY", "accepted")
    assert inpatient.metadata == {"patient_id": "P1", "patient_name": "张三"}
    notice = Record.objects.get(doc_number="院办〔2025〕1号")
    assert notice.metadata == {"keywords": ["会议", "通知"]}
    submission = Submission.objects.get()
    assert submission.channel == "folder" and submission.received_count == 3
    assert str(summary) == "3 received, 0 already in, 0 不合格, 0 waiting"


def test_a_bad_drop_goes_to_failed_with_the_reason_next_to_it(his: Any, watch: Path) -> None:
    _drop(watch, "bad.pdf", _pdf("bad"), {"日期": "2025-13-45"})
    _drop(watch, "empty.pdf", b"")
    _drop(watch, "broken.pdf", _pdf("broken"), {"题名": ["not", "text"], "门类": {"nested": 1}})

    summary = _scan(watch, his)

    assert {o.name: o.status for o in summary.outcomes} == dict.fromkeys(
        ["bad.pdf", "empty.pdf", "broken.pdf"], "rejected"
    )
    assert _names(watch / "failed") == sorted(
        [
            "bad.pdf",
            "bad.pdf.json",
            "bad.pdf.error.txt",
            "empty.pdf",
            "empty.pdf.error.txt",
            "broken.pdf",
            "broken.pdf.json",
            "broken.pdf.error.txt",
        ]
    )
    bad = (watch / "failed" / "bad.pdf.error.txt").read_text(encoding="utf-8")
    assert "code: bad_date" in bad and "2025-13-45" in bad and "field: date" in bad and "不合格" in bad
    assert "code: empty_file" in (watch / "failed" / "empty.pdf.error.txt").read_text(encoding="utf-8")
    assert "must be a value, not an object" in (watch / "failed" / "broken.pdf.error.txt").read_text(encoding="utf-8")
    assert not Record.objects.exists()
    assert Submission.objects.get().failed_count == 3


def test_a_file_still_being_written_waits(his: Any, watch: Path) -> None:
    _drop(watch, "fresh.pdf", _pdf("fresh"))
    _drop(watch, "copying.pdf.part", b"half")
    _drop(watch, ".hidden.pdf", _pdf("hidden"))
    _drop(watch, "~$draft.docx", b"lock")

    early = scan(watch, his, settle_seconds=60, now=time.time())
    assert early.outcomes == [] and early.waiting == 1 and not Record.objects.exists()

    later = _scan(watch, his, settle_seconds=60)
    assert [o.name for o in later.outcomes] == ["fresh.pdf"]
    assert _names(watch / "inbox") == sorted([".hidden.pdf", "copying.pdf.part", "~$draft.docx"])


def test_a_file_waits_for_its_sidecar_to_settle_too(his: Any, watch: Path) -> None:
    path = _drop(watch, "a.pdf", _pdf("a"), {"题名": "甲"})
    old = time.time() - 600
    os.utime(path, (old, old))
    summary = scan(watch, his, settle_seconds=60, now=time.time())
    assert summary.waiting == 1 and summary.outcomes == []  # the sidecar (and the file's ctime) are fresh


def test_the_long_running_watcher_wants_the_same_file_on_two_scans(his: Any, watch: Path) -> None:
    watcher = Watcher(watch, his, settle_seconds=0)
    path = _drop(watch, "a.pdf", _pdf("a"))
    assert watcher.scan(now=time.time() + LATER).waiting == 1
    path.write_bytes(_pdf("a, still growing"))
    assert watcher.scan(now=time.time() + LATER).waiting == 1
    taken = watcher.scan(now=time.time() + LATER)
    assert [o.status for o in taken.outcomes] == ["received"] and taken.waiting == 0


def test_a_crash_between_capture_and_move_captures_nothing_twice(
    his: Any, watch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _drop(watch, "a.pdf", _pdf("a"), {"题名": "甲"})
    real_move = module._move

    def crash(*args: Any) -> None:
        raise SystemExit("killed")  # the process dies after the record's commit, before the move

    monkeypatch.setattr(module, "_move", crash)
    with pytest.raises(SystemExit):
        _scan(watch, his)
    assert Record.objects.count() == 1 and _names(watch / "inbox") == ["a.pdf", "a.pdf.json"]
    monkeypatch.setattr(module, "_move", real_move)

    summary = _scan(watch, his)

    (outcome,) = summary.outcomes
    assert (outcome.status, outcome.moved_to) == ("replayed", "done")
    assert outcome.record == Record.objects.get().electronic_no and Record.objects.count() == 1
    assert _names(watch / "done") == ["a.pdf", "a.pdf.json"]


def test_a_sidecar_left_behind_by_a_crash_follows_its_file(his: Any, watch: Path) -> None:
    (watch / "done").mkdir()
    (watch / "done" / "a.pdf").write_bytes(_pdf("a"))
    (watch / "inbox" / "a.pdf.json").write_text("{}")
    summary = _scan(watch, his)
    assert summary.outcomes == [] and _names(watch / "done") == ["a.pdf", "a.pdf.json"]


def test_a_sidecar_waits_for_its_file_and_at_last_is_failed(his: Any, watch: Path) -> None:
    (watch / "inbox" / "late.pdf.json").write_text("{}")
    assert scan(watch, his, now=time.time()).waiting == 1
    summary = scan(watch, his, now=time.time() + ORPHAN_SECONDS + 1)
    assert [(o.name, o.status) for o in summary.outcomes] == [("late.pdf.json", "rejected")]
    assert "No file late.pdf arrived" in (watch / "failed" / "late.pdf.json.error.txt").read_text(encoding="utf-8")


def test_the_same_content_dropped_twice_is_already_in_and_names_never_clash(his: Any, watch: Path) -> None:
    _drop(watch, "a.pdf", _pdf("a"))
    _scan(watch, his)
    _drop(watch, "a.pdf", _pdf("a"))  # the same file again, same name

    summary = _scan(watch, his)

    assert [(o.name, o.status) for o in summary.outcomes] == [("a.pdf", "replayed")]
    assert Record.objects.count() == 1
    assert _names(watch / "done") == ["a.pdf", "a~2.pdf"]


def test_the_same_content_described_otherwise_goes_to_failed_with_the_reason(his: Any, watch: Path) -> None:
    # Not "already in": the second drop says something else about the file (another name, so another
    # title); dropping it into done/ would lose that silently.
    _drop(watch, "a.pdf", _pdf("a"))
    _scan(watch, his)
    _drop(watch, "copy of a.pdf", _pdf("a"))

    summary = _scan(watch, his)

    assert [(o.name, o.status) for o in summary.outcomes] == [("copy of a.pdf", "rejected")]
    record = Record.objects.get()
    error = (watch / "failed" / "copy of a.pdf.error.txt").read_text(encoding="utf-8")
    assert record.electronic_no in error
    assert "code: identifier_reused" in error
    assert (watch / "failed" / "copy of a.pdf").read_bytes() == _pdf("a")


def test_a_symbolic_link_in_the_inbox_is_not_followed(his: Any, watch: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(_pdf("secret"))
    (watch / "inbox" / "link.pdf").symlink_to(secret)

    summary = _scan(watch, his)

    assert [(o.name, o.status) for o in summary.outcomes] == [("link.pdf", "rejected")]
    assert (watch / "failed" / "link.pdf").is_symlink() and not Record.objects.exists()
    assert "symbolic links are not taken" in (watch / "failed" / "link.pdf.error.txt").read_text(encoding="utf-8")


def test_the_modification_date_can_stand_in_for_the_date(his: Any, watch: Path) -> None:
    path = _drop(watch, "scan.pdf", _pdf("scan"), {"日期": "@modified"})
    stamp = dt.datetime(2024, 5, 6, 12, tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))
    _scan(watch, his)
    assert str(Record.objects.get().date) == "2024-05-06"


def test_a_csv_sidecar_must_hold_one_row(his: Any, watch: Path) -> None:
    _drop(watch, "a.pdf", _pdf("a"), "题名\n一\n二\n")
    (outcome,) = _scan(watch, his).outcomes
    assert outcome.status == "rejected" and "one row" in outcome.reason


def test_without_class_anywhere_the_drop_fails_naming_it(his: Any, watch: Path) -> None:
    (watch / "defaults.json").unlink()
    _drop(watch, "a.pdf", _pdf("a"), {"日期": "2025-01-01", "部门": "BGS"})
    (outcome,) = _scan(watch, his).outcomes
    assert outcome.status == "rejected" and outcome.reason == "Class is required."


def test_a_broken_defaults_file_stops_the_scan_before_anything_moves(his: Any, watch: Path) -> None:
    (watch / "defaults.json").write_text("{not json")
    _drop(watch, "a.pdf", _pdf("a"))
    with pytest.raises(ValidationError, match=r"defaults\.json"):
        _scan(watch, his)
    assert _names(watch / "inbox") == ["a.pdf"]


def test_a_second_watcher_on_the_same_folder_skips_while_the_first_scans(his: Any, watch: Path) -> None:
    _drop(watch, "a.pdf", _pdf("a"))
    with (watch / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        summary = _scan(watch, his)
    assert summary.busy and str(summary).startswith("skipped") and _names(watch / "inbox") == ["a.pdf"]


def test_who_may_watch_and_what_must_exist(his: Any, users: dict[str, Any], tmp_path: Path, watch: Path) -> None:
    with pytest.raises(PermissionDenied):
        _scan(watch, users["viewer"])
    with pytest.raises(ValidationError, match="does not exist"):
        _scan(tmp_path / "nowhere", his)


def test_the_periodic_job_body(his: Any, watch: Path) -> None:
    assert scan_as(None, "his").startswith("skipped")
    assert scan_as(watch, "").startswith("skipped")
    assert scan_as(watch, "ghost") == "skipped: no active user 'ghost'"
    assert scan_as(watch, "his") == "0 received, 0 already in, 0 不合格, 0 waiting"


def test_the_worker_scans_the_configured_folder_as_the_configured_user(
    users: dict[str, Any], tmp_path: Path, settings: Any
) -> None:
    import dataclasses

    from medarchive.capture.tasks import watch_folder

    assert watch_folder().startswith("skipped")  # nothing configured
    (tmp_path / "inbox").mkdir()
    settings.CONFIG = dataclasses.replace(settings.CONFIG, watch_dir=tmp_path, watch_user="officer")
    outcome = watch_folder()
    assert "skipped" not in outcome, outcome
