import dataclasses
import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

from medarchive.security import chain
from medarchive.security.checkpoints import FILE_NAME, UNSIGNED, Checkpoint, CheckpointFile

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
KEY = os.urandom(32)
KEYS = {"a1": KEY}


def _write(file: CheckpointFile, seqs: list[int], **kwargs: object) -> list[Checkpoint]:
    return [
        file.append(
            seq=seq,
            mac=f"{seq:064x}",
            at=T0 + dt.timedelta(minutes=seq),
            keyed_from=1,
            key_id="a1",
            key=KEY,
            algorithm="sm3",
            **kwargs,  # type: ignore[arg-type]
        )
        for seq in seqs
    ]


def _lines(file: CheckpointFile) -> list[str]:
    return file.path.read_text().splitlines(keepends=True)


def test_checkpoints_round_trip_in_an_owner_only_directory(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        file = CheckpointFile(tmp_path / "data-audit-checkpoints")
        written = _write(file, [3, 7, 12])
    finally:
        os.umask(old)
    assert stat.S_IMODE(file.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    read = file.read(KEYS)
    assert read.exists and not read.problems and not read.torn
    assert [(c.seq, c.mac, c.at) for c in read.checkpoints] == [(c.seq, c.mac, c.at) for c in written]
    assert read.last is not None and read.last.seq == 12 and read.signers == {"unsigned"}


def test_a_line_is_marked_unsigned_with_room_for_a_signature_and_a_timestamp(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path / "cp")
    _write(file, [1])
    doc = json.loads(_lines(file)[0])
    assert doc["signer"] == "unsigned" and doc["signature"] is None and doc["timestamp_token"] is None
    assert {"seq", "mac", "at", "keyed_from", "key_id", "algorithm", "prev", "line_mac", "v"} <= set(doc)
    assert doc["prev"] == chain.GENESIS and KEY.hex() not in file.path.read_text()


def test_a_signer_plugs_in(tmp_path: Path) -> None:
    class Stamper:  # stands in for the signed, timestamped checkpoints of the protection issue
        name = "test-stamper"

        def sign(self, payload: bytes) -> tuple[str | None, str | None]:
            return f"sig:{len(payload)}", "tst:1"

        def verify(self, payload: bytes, signature: str | None, timestamp_token: str | None) -> bool:
            return signature == f"sig:{len(payload)}" and timestamp_token == "tst:1"

    file = CheckpointFile(tmp_path / "cp")
    _write(file, [1, 2], signer=Stamper())
    read = file.read(KEYS, signers={"test-stamper": Stamper()})
    assert not read.problems and len(read.checkpoints) == 2
    assert all(c.signature == f"sig:{len(c.payload())}" and c.timestamp_token == "tst:1" for c in read.checkpoints)
    lines = _lines(file)
    doc = json.loads(lines[1])
    doc["signature"] = "sig:forged"
    file.path.write_text(lines[0] + json.dumps(doc) + "\n")
    read = file.read(KEYS, signers={"test-stamper": Stamper()})
    assert [p.code for p in read.problems] == ["checkpoint_bad_signature"]
    assert file.read(KEYS).signers == {"test-stamper"}  # without its verifier: reported by the caller
    doc.update(signer="unsigned", signature=None, timestamp_token=None)  # a downgrade to unsigned
    file.path.write_text(lines[0] + json.dumps(doc) + "\n")
    assert [p.code for p in file.read(KEYS).problems] == ["checkpoint_altered"]


def test_an_edited_line_fails_its_mac(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path / "cp")
    _write(file, [3, 7, 12])
    lines = _lines(file)
    doc = json.loads(lines[2])
    doc["seq"] = 5  # hide a tail cut after #5
    lines[2] = json.dumps(doc) + "\n"
    file.path.write_text("".join(lines))
    read = file.read(KEYS)
    assert [(p.code, p.params["line"]) for p in read.problems] == [("checkpoint_altered", 3)]
    assert [c.seq for c in read.checkpoints] == [3, 7]


def test_a_line_forged_with_another_key_fails(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path / "cp")
    _write(file, [3])
    file.append(seq=4, mac="0" * 64, at=T0, keyed_from=1, key_id="a1", key=os.urandom(32), algorithm="sm3")
    assert [p.code for p in file.read(KEYS).problems] == ["checkpoint_altered"]
    file.append(seq=5, mac="0" * 64, at=T0, keyed_from=1, key_id="zz", key=os.urandom(32), algorithm="sm3")
    assert [p.code for p in file.read(KEYS).problems] == ["checkpoint_altered", "checkpoint_unknown_key"]


def test_a_removed_middle_line_breaks_the_link(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path / "cp")
    _write(file, [3, 7, 12])
    lines = _lines(file)
    file.path.write_text(lines[0] + lines[2])
    read = file.read(KEYS)
    assert [(p.code, p.params) for p in read.problems] == [("checkpoint_link", {"line": 2, "previous": 1})]
    assert [c.seq for c in read.checkpoints] == [3, 12]  # still compared with the chain


def test_reordered_lines_break_the_link(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path / "cp")
    _write(file, [3, 7])
    lines = _lines(file)
    file.path.write_text(lines[1] + lines[0])
    assert {p.code for p in file.read(KEYS).problems} == {"checkpoint_link"}


def test_garbage_is_reported_with_its_line(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path / "cp")
    _write(file, [3])
    with file.path.open("a") as handle:
        handle.write('{"v": 1, "seq": "x"}\n')
    assert [(p.code, p.params["line"]) for p in file.read(KEYS).problems] == [("checkpoint_unreadable", 2)]


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_write(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path / "cp")
    _write(file, [3, 7])
    with file.path.open("a") as handle:
        handle.write('{"v":1,"seq":9,"ma')  # the power went out here
    read = file.read(KEYS)
    assert read.torn and not read.problems and [c.seq for c in read.checkpoints] == [3, 7]
    _write(file, [9])
    read = file.read(KEYS)
    assert not read.torn and not read.problems and [c.seq for c in read.checkpoints] == [3, 7, 9]


def test_a_long_file_links_each_append_to_its_last_line(tmp_path: Path) -> None:
    file = CheckpointFile(tmp_path / "cp")
    _write(file, list(range(1, 40)))  # more than one 4 KiB block, so the tail is read backwards in steps
    read = file.read(KEYS)
    assert not read.problems and len(read.checkpoints) == 39


def test_a_missing_file_is_no_checkpoints(tmp_path: Path) -> None:
    read = CheckpointFile(tmp_path / "nowhere").read(KEYS)
    assert not read.exists and read.checkpoints == [] and read.last is None


def test_the_payload_is_what_the_mac_covers() -> None:
    cp = Checkpoint(seq=1, mac="a" * 64, at=T0, keyed_from=1, key_id="a1", algorithm="sm3")
    assert cp.expected_line_mac(KEY) != dataclasses.replace(cp, seq=2).expected_line_mac(KEY)
    assert cp.expected_line_mac(KEY) == dataclasses.replace(cp, signature="s").expected_line_mac(KEY)
    assert UNSIGNED.verify(cp.payload(), None, None) and not UNSIGNED.verify(cp.payload(), "s", None)
    with pytest.raises(ValueError, match="timezone"):
        dataclasses.replace(cp, at=dt.datetime(2026, 1, 1)).payload()  # noqa: DTZ001


def test_the_file_name_is_stable() -> None:
    assert FILE_NAME == "audit-checkpoints.jsonl"
