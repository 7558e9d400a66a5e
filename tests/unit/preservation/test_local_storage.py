"""What is particular to LocalStorage (the shared contract is in tests/integration/test_s3_storage.py)."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from medarchive.core.errors import ConfigurationError, ValidationError
from medarchive.preservation.storage.local import LocalStorage

ADDRESS = "ab" + "cd" + "0" * 60


def staged_files(storage: LocalStorage) -> list[str]:
    return sorted(p.name for p in storage.staging.iterdir())


def test_objects_are_fanned_out_by_address_prefix(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with storage.stage() as staged:
        staged.write(b"cipher")
        staged.commit(ADDRESS)

    path = tmp_path / "ab" / ADDRESS
    assert path.read_bytes() == b"cipher"
    assert storage.path_for(ADDRESS) == path
    assert staged_files(storage) == []
    assert (tmp_path / "LAYOUT").read_text(encoding="ascii") == "medarchive blob store\nlevels: 1\n"
    assert list(storage.addresses()) == [ADDRESS]


def test_a_store_made_with_two_levels_keeps_them(tmp_path: Path) -> None:
    old = tmp_path / "ab" / "cd"
    old.mkdir(parents=True)
    (old / ADDRESS).write_bytes(b"cipher")
    other = "ef" + "01" + "1" * 60
    storage = LocalStorage(tmp_path)
    assert storage.levels == 2
    assert storage.path_for(ADDRESS) == old / ADDRESS
    with storage.stage() as staged:
        staged.write(b"more")
        staged.commit(other)
    assert (tmp_path / "ef" / "01" / other).read_bytes() == b"more"
    assert list(storage.addresses()) == [ADDRESS, other]
    assert LocalStorage(tmp_path).levels == 2  # recorded in LAYOUT, not guessed again


@pytest.mark.parametrize("content", [b"levels: 7\n", b"", b"\xff\xfe levels: 1"])
def test_an_unreadable_layout_file_is_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "LAYOUT").write_bytes(content)
    with pytest.raises(ConfigurationError, match="layout") as caught:
        LocalStorage(tmp_path)
    assert caught.value.code == "bad_store_layout" and caught.value.details["path"] == str(tmp_path / "LAYOUT")


def test_commit_fsyncs_the_file_and_the_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with storage.stage() as staged:
        staged.write(b"cipher")
        staged.commit(ADDRESS)

    assert synced[0].startswith(str(storage.staging))  # the data, before it is linked
    assert synced[1] == str(tmp_path)  # the new "ab" entry
    assert synced[-1] == str(tmp_path / "ab")  # the object's own entry
    assert len(synced) == 3

    synced.clear()
    with storage.stage() as staged:  # a second object in the same directory: no new directory to sync
        staged.write(b"cipher")
        staged.commit("ab" + "ee" + "0" * 60)
    assert synced == [synced[0], str(tmp_path / "ab")]


def test_commit_without_hard_links_falls_back_to_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    first, second = storage.stage(), storage.stage()
    first.write(b"first")
    second.write(b"second")

    assert first.commit(ADDRESS) is True
    assert second.commit(ADDRESS) is False
    assert storage.path_for(ADDRESS).read_bytes() == b"first"
    assert staged_files(storage) == []


def test_other_link_errors_abort_the_staged_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)

    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", disk_full)
    staged = storage.stage()
    staged.write(b"data")

    with pytest.raises(OSError, match="No space left"):
        staged.commit(ADDRESS)
    assert staged_files(storage) == []
    assert not storage.exists(ADDRESS)


def test_cleanup_keeps_staging_that_may_still_be_in_progress(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    young, old = storage.stage(), storage.stage()
    young.write(b"y")
    old.write(b"o")
    [old_path] = [p for p in storage.staging.iterdir() if p.name != Path(young._path).name]
    two_hours_ago = time.time() - 7200
    os.utime(old_path, (two_hours_ago, two_hours_ago))

    assert storage.cleanup_staging() == 1

    assert staged_files(storage) == [Path(young._path).name]
    young.abort()
    old.abort()  # its file is already gone: still fine


def test_dropped_staged_write_removes_its_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    staged = storage.stage()
    staged.write(b"forgotten")
    assert len(staged_files(storage)) == 1

    del staged

    assert staged_files(storage) == []


@pytest.mark.parametrize(
    "address",
    ["../../../etc/passwd", "AB" + "0" * 62, "0" * 63, "0" * 65, "/" + "0" * 63, ".staging"],
)
def test_addresses_that_are_not_64_lowercase_hex_are_refused(tmp_path: Path, address: str) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(ValidationError) as caught:
        storage.exists(address)
    assert caught.value.field == "address" and caught.value.code == "bad_address"
    with pytest.raises(ValidationError), storage.stage() as staged:
        staged.commit(address)


def test_addresses_ignore_stray_and_misplaced_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with storage.stage() as staged:
        staged.commit(ADDRESS)
    (tmp_path / "README").write_text("not a blob")
    (tmp_path / "ab" / ("ce" + ADDRESS[2:].replace("0", "1"))).write_bytes(b"x")  # belongs under ce/
    nested = tmp_path / "ab" / "ce"
    nested.mkdir()
    (nested / ("ab" + "1" * 62)).write_bytes(b"x")  # a second level this store does not use
    (tmp_path / "ab" / "notes.txt").write_text("x")

    assert list(storage.addresses()) == [ADDRESS]
