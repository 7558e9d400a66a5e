"""The DICOM spool: instances sealed on disk, read back chunk by chunk, leftovers told from live associations."""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

import pytest

from medarchive.capture.dicom.spool import Spool, SpoolError
from medarchive.preservation.keys import KeyRing

ORIGIN = {"calling_ae": "CT01", "peer": "127.0.0.1:4242", "department": "NK"}
SECRET = b"PATIENT-NAME-WANG-XIAODONG " * 10


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool", KeyRing.generate())


def test_an_instance_is_sealed_on_disk_and_read_back_exactly(spool: Spool) -> None:
    big = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, the last one short
    held = spool.begin(ORIGIN)
    entry = held.add([b"\0" * 128 + b"DICM", SECRET, memoryview(big)])

    assert entry.path.name == "000001.sealed"
    assert entry.read_all() == b"\0" * 128 + b"DICM" + SECRET + big
    reader = entry.reader()
    assert reader.read(10) == b"\0" * 10 and 0 < len(reader.read(1 << 20)) <= 1 << 20  # short reads, as raw files
    reader.close()
    for path in held.folder.iterdir():
        assert SECRET[:20] not in path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(held.folder.stat().st_mode) == 0o700
    assert held.add([b"second"]).path.name == "000002.sealed"


def test_a_live_association_is_not_a_leftover_until_it_lets_go(spool: Spool) -> None:
    held = spool.begin(ORIGIN)
    held.add([b"one"])
    assert list(spool.leftovers()) == []

    held.release()
    (again,) = spool.leftovers()
    assert again.folder == held.folder and again.origin == ORIGIN
    assert [e.read_all() for e in again.instances()] == [b"one"]
    assert list(spool.leftovers()) == []  # held again, by this capture
    again.remove()
    assert not held.folder.exists() and list(spool.leftovers()) == []


def test_a_folder_locked_by_another_process_is_left_alone(spool: Spool) -> None:
    held = spool.begin(ORIGIN)
    held.add([b"one"])
    held.release()
    with (held.folder / ".lock").open("a") as other:  # another open file description: another holder
        fcntl.flock(other, fcntl.LOCK_EX)
        assert list(spool.leftovers()) == []
    assert len(list(spool.leftovers())) == 1


def test_half_written_instances_and_folders_never_used_are_cleared(spool: Spool) -> None:
    held = spool.begin(ORIGIN)
    held.add([b"confirmed"])
    (held.folder / "000002.part").write_bytes(b"never answered Success")
    held.release()
    stray = spool.root / "0123456789abcdef"
    stray.mkdir()

    (found,) = spool.leftovers()
    found.clear_unconfirmed()
    assert [e.path.name for e in found.instances()] == ["000001.sealed"]
    assert not stray.exists()


def test_a_damaged_or_foreign_instance_cannot_be_read_back(spool: Spool, tmp_path: Path) -> None:
    held = spool.begin(ORIGIN)
    entry = held.add([SECRET])
    data = bytearray(entry.path.read_bytes())
    data[-5] ^= 0x01
    entry.path.write_bytes(bytes(data))
    with pytest.raises(SpoolError, match="cannot be read"):
        entry.read_all()

    entry.path.write_bytes(b"not a spool file at all")
    with pytest.raises(SpoolError, match="no spool header"):
        entry.read_all()

    other = Spool(tmp_path / "other", KeyRing.generate()).begin(ORIGIN).add([SECRET])
    os.replace(other.path, entry.path)  # sealed under another archive's keys
    with pytest.raises(SpoolError, match="cannot be read"):
        entry.read_all()


def test_links_in_the_spool_are_not_followed(spool: Spool, tmp_path: Path) -> None:
    held = spool.begin(ORIGIN)
    entry = held.add([SECRET])
    held.release()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(entry.path.read_bytes())
    entry.path.unlink()
    entry.path.symlink_to(elsewhere)
    with pytest.raises(OSError, match="symbolic links"):
        entry.read_all()

    (held.folder / ".lock").unlink()
    (held.folder / ".lock").symlink_to(tmp_path / "lock-elsewhere")
    assert list(spool.leftovers()) == []  # a planted lock link: not taken, not created through
    assert not (tmp_path / "lock-elsewhere").exists()
