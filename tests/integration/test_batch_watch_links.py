"""The watched folder against planted symbolic links: nothing is written through one, nothing read through one."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import translation

from medarchive.archiving.models import Record
from medarchive.capture.batch import folder as module
from medarchive.capture.batch.folder import scan
from medarchive.core.errors import ValidationError


@pytest.fixture(autouse=True)
def _in_english() -> Iterator[None]:
    """These tests read what the messages say in English (the msgids); zh-Hans is the catalog's."""
    with translation.override("en"):
        yield


LATER = 3600.0


@pytest.fixture
def his(archive: Any) -> Any:
    from medarchive.security.services import add_user

    return add_user("his", actor=None, role="interface", password="Correct-Horse-42")


@pytest.fixture
def watch(tmp_path: Path) -> Path:
    root = tmp_path / "watch"
    for name in ("inbox", "done", "failed"):
        (root / name).mkdir(parents=True)
    (root / "defaults.json").write_text(json.dumps({"门类": "WS", "部门": "BGS", "日期": "2025-03-01"}))
    return root


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the watch folder that the watcher's account may write (a config, a key …)."""
    path = tmp_path / "outside" / "victim.conf"
    path.parent.mkdir()
    path.write_text("precious\n")
    return path


def _pdf(tag: str) -> bytes:
    return b"%PDF-1.7\n" + f"watched {tag} ".encode() * 30


def _scan(watch: Path, actor: Any) -> Any:
    return scan(watch, actor, now=time.time() + LATER)


def test_an_error_file_is_never_written_through_a_link_planted_in_failed(his: Any, watch: Path, victim: Path) -> None:
    (watch / "failed" / "bad.pdf.error.txt").symlink_to(victim)
    (watch / "inbox" / "bad.pdf").write_bytes(b"")  # empty: 不合格

    (outcome,) = _scan(watch, his).outcomes

    assert (outcome.status, outcome.moved_to) == ("rejected", "failed")
    assert victim.read_text() == "precious\n"
    assert (watch / "failed" / "bad.pdf.error.txt").is_symlink()  # left as it was
    written = watch / "failed" / "bad~2.pdf.error.txt"
    assert "code: empty_file" in written.read_text(encoding="utf-8")
    assert (watch / "failed" / "bad~2.pdf").exists()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_a_dangling_link_in_failed_creates_nothing_where_it_points(his: Any, watch: Path, tmp_path: Path) -> None:
    planted = tmp_path / "outside-new.txt"
    (watch / "failed" / "bad.pdf.error.txt").symlink_to(planted)
    (watch / "failed" / "bad.pdf").symlink_to(tmp_path / "outside-data")
    (watch / "inbox" / "bad.pdf").write_bytes(_pdf("bad"))
    (watch / "inbox" / "bad.pdf.json").write_text(json.dumps({"日期": "2025-13-45"}))

    (outcome,) = _scan(watch, his).outcomes

    assert outcome.moved_to == "failed"
    assert not planted.exists() and not (tmp_path / "outside-data").exists()
    assert sorted(p.name for p in (watch / "failed").iterdir()) == [
        "bad.pdf",
        "bad.pdf.error.txt",
        "bad~2.pdf",
        "bad~2.pdf.error.txt",
        "bad~2.pdf.json",
    ]


def test_the_error_file_of_a_link_rejected_in_the_inbox_is_not_written_through_a_link(
    his: Any, watch: Path, victim: Path, tmp_path: Path
) -> None:
    (watch / "inbox" / "link.pdf").symlink_to(tmp_path / "elsewhere.pdf")
    (watch / "failed" / "link.pdf.error.txt").symlink_to(victim)

    (outcome,) = _scan(watch, his).outcomes

    assert (outcome.status, outcome.moved_to) == ("rejected", "failed")
    assert victim.read_text() == "precious\n"
    assert "symbolic links are not taken" in (watch / "failed" / "link~2.pdf.error.txt").read_text(encoding="utf-8")


def test_a_link_created_in_failed_after_the_name_was_chosen_fails_the_move_not_the_victim(
    his: Any, watch: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (watch / "inbox" / "bad.pdf").write_bytes(b"")
    chosen = module._free_name

    def racing(directory: Path, name: str, *companions: str) -> str:
        found = chosen(directory, name, *companions)
        (directory / f"{found}.error.txt").symlink_to(victim)  # planted between the check and the write
        return found

    monkeypatch.setattr(module, "_free_name", racing)
    (outcome,) = _scan(watch, his).outcomes

    assert outcome.moved_to == ""  # stays in the inbox for the next scan
    assert victim.read_text() == "precious\n"
    assert (watch / "inbox" / "bad.pdf").exists()


@pytest.mark.parametrize("name", ["inbox", "done", "failed"])
def test_a_watch_folder_whose_parts_are_links_is_refused(his: Any, watch: Path, tmp_path: Path, name: str) -> None:
    elsewhere = tmp_path / f"elsewhere-{name}"
    elsewhere.mkdir()
    (watch / name).rmdir()
    (watch / name).symlink_to(elsewhere, target_is_directory=True)
    (watch / "inbox" / "a.pdf").write_bytes(_pdf("a"))

    with pytest.raises(ValidationError, match=rf"{name} is a symbolic link"):
        _scan(watch, his)
    assert not Record.objects.exists()
    assert [p.name for p in elsewhere.iterdir()] == (["a.pdf"] if name == "inbox" else [])  # nothing moved


def test_a_missing_part_is_made_but_a_file_in_its_place_is_refused(his: Any, watch: Path) -> None:
    (watch / "done").rmdir()
    (watch / "failed").rmdir()
    (watch / "failed").write_text("not a folder")
    with pytest.raises(ValidationError, match="failed is not a folder"):
        _scan(watch, his)
    assert (watch / "done").is_dir()


def test_a_lock_file_that_is_a_link_is_refused_and_not_created_through(
    his: Any, watch: Path, tmp_path: Path, victim: Path
) -> None:
    (watch / ".lock").symlink_to(tmp_path / "created-by-watcher")
    with pytest.raises(ValidationError, match=r"\.lock is a symbolic link"):
        _scan(watch, his)
    assert not (tmp_path / "created-by-watcher").exists()
    (watch / ".lock").unlink()
    (watch / ".lock").symlink_to(victim)
    with pytest.raises(ValidationError, match=r"\.lock is a symbolic link"):
        _scan(watch, his)
    assert victim.read_text() == "precious\n"


def test_defaults_that_are_a_link_are_refused(his: Any, watch: Path, tmp_path: Path) -> None:
    real = tmp_path / "defaults-elsewhere.json"
    real.write_text(json.dumps({"门类": "WS", "部门": "BGS"}))
    (watch / "defaults.json").unlink()
    (watch / "defaults.json").symlink_to(real)
    (watch / "inbox" / "a.pdf").write_bytes(_pdf("a"))
    with pytest.raises(ValidationError, match=r"defaults\.json is a symbolic link"):
        _scan(watch, his)
    assert not Record.objects.exists()


def test_a_sidecar_swapped_for_a_link_after_it_was_listed_is_not_read(
    his: Any, watch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"题名": "read through a link", "metadata": {"patient_id": "SECRET"}}))
    (watch / "inbox" / "a.pdf").write_bytes(_pdf("a"))
    (watch / "inbox" / "a.pdf.json").write_text(json.dumps({"题名": "honest"}))
    listed = module._Pass.ready

    def swapping(self: Any) -> Any:
        drops = listed(self)
        sidecar = watch / "inbox" / "a.pdf.json"
        sidecar.unlink()
        sidecar.symlink_to(secret)  # between the listing (lstat: a regular file) and the read
        return drops

    monkeypatch.setattr(module._Pass, "ready", swapping)
    (outcome,) = _scan(watch, his).outcomes

    assert outcome.status == "rejected" and "The sidecar a.pdf.json cannot be read" in outcome.reason
    assert not Record.objects.exists()
    assert (watch / "failed" / "a.pdf.json").is_symlink()  # the link itself was moved, its target untouched
    assert secret.exists()


def test_a_drop_swapped_for_a_link_after_it_was_listed_is_not_read(
    his: Any, watch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(_pdf("secret"))
    (watch / "inbox" / "a.pdf").write_bytes(_pdf("a"))
    listed = module._Pass.ready

    def swapping(self: Any) -> Any:
        drops = listed(self)
        drop = watch / "inbox" / "a.pdf"
        drop.unlink()
        drop.symlink_to(secret)
        return drops

    monkeypatch.setattr(module._Pass, "ready", swapping)
    (outcome,) = _scan(watch, his).outcomes

    assert outcome.status == "rejected" and not Record.objects.exists()


def _unblock_readers(fifo: Path, seconds: float = 20) -> threading.Thread:
    """Writes `{}` to the FIFO once someone opens it for reading, so a reader that blocks on it
    (the behaviour this guards against) ends instead of hanging the test run."""

    def feed() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader yet (ENXIO), or gone
                time.sleep(0.05)
                continue
            with os.fdopen(fd, "wb") as writer:
                writer.write(b"{}")
            return

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


def test_a_fifo_as_sidecar_does_not_hang_the_scan(his: Any, watch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (watch / "inbox" / "a.pdf").write_bytes(_pdf("a"))
    (watch / "inbox" / "a.pdf.json").write_text("{}")
    listed = module._Pass.ready

    def swapping(self: Any) -> Any:
        drops = listed(self)
        sidecar = watch / "inbox" / "a.pdf.json"
        sidecar.unlink()
        os.mkfifo(sidecar)
        _unblock_readers(sidecar)
        return drops

    monkeypatch.setattr(module._Pass, "ready", swapping)
    (outcome,) = _scan(watch, his).outcomes
    assert outcome.status == "rejected" and "not a regular file" in outcome.reason
