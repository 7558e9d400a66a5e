"""Carriers: paths stay inside, zips are read as streams and refused when unsafe."""

from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import translation

from medarchive.capture.batch import carrier as module
from medarchive.capture.batch.carrier import (
    FolderCarrier,
    MissingFile,
    UnreadableFile,
    UnsafeCarrier,
    UnsafePath,
    VerifiedReader,
    ZipCarrier,
    choose_manifest,
    digest,
    local_file,
    open_carrier,
    relative_parts,
)
from medarchive.capture.batch.manifest import ManifestError


@pytest.fixture(autouse=True)
def _in_english() -> Iterator[None]:
    """These tests read what the messages say in English (the msgids); zh-Hans is the catalog's."""
    with translation.override("en"):
        yield


class _GbkName(zipfile.ZipInfo):
    """What Chinese Windows tools write: GBK names without the UTF-8 flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's own hook
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def _zip(path: Path, members: dict[str, bytes], *, gbk: bool = False) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = _GbkName(name) if gbk else zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("raw", "parts"),
    [("a.pdf", ["a.pdf"]), ("sub\\b.pdf", ["sub", "b.pdf"]), ("./x//y.pdf", ["x", "y.pdf"]), (" c.pdf ", ["c.pdf"])],
)
def test_relative_paths(raw: str, parts: list[str]) -> None:
    assert relative_parts(raw) == parts


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("../a.pdf", "leaves the carrier"),
        ("sub/../../a.pdf", "leaves the carrier"),
        ("..\\a.pdf", "leaves the carrier"),
        ("/etc/passwd", "absolute"),
        ("\\\\server\\share\\a.pdf", "absolute"),
        ("C:\\a.pdf", "absolute"),
        ("c:a.pdf", "absolute"),
        ("a\x00.pdf", "control characters"),
        ("./.", "names no file"),
    ],
)
def test_unsafe_relative_paths_are_refused(raw: str, fragment: str) -> None:
    with pytest.raises(UnsafePath, match=fragment):
        relative_parts(raw)


def test_an_empty_file_cell_is_a_missing_file() -> None:
    with pytest.raises(MissingFile, match="empty"):
        relative_parts("  ")


def test_the_manifest_is_the_only_table_or_the_one_with_a_manifest_name() -> None:
    assert choose_manifest(["a.pdf", "list.csv"], "c") == "list.csv"
    assert choose_manifest(["data.csv", "清单.xlsx", "a.pdf"], "c") == "清单.xlsx"
    with pytest.raises(ManifestError) as missing:
        choose_manifest(["a.pdf"], "c")
    assert missing.value.code == "manifest_missing" and missing.value.details == {"carrier": "c"}
    with pytest.raises(ManifestError) as several:
        choose_manifest(["one.csv", "two.xlsx"], "c")
    assert several.value.code == "manifest_ambiguous" and "one.csv、two.xlsx" in several.value.message
    with pytest.raises(ManifestError) as named:
        choose_manifest(["清单.csv", "manifest.xlsx"], "c")
    assert named.value.code == "manifest_ambiguous" and named.value.details["tables"] == ["manifest.xlsx", "清单.csv"]


def test_a_folder_carrier_finds_its_manifest_and_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.pdf").write_bytes(b"%PDF-1.7 b")
    (tmp_path / "目录.csv").write_text("文件\nsub/b.pdf\n", encoding="utf-8")
    with open_carrier(tmp_path) as carrier:
        assert carrier.kind == "folder" and carrier.manifest_name == "目录.csv"
        assert carrier.manifest_bytes().startswith("文件".encode())
        found = carrier.locate("sub\\b.pdf")
        assert (found.name, found.path, found.size) == ("b.pdf", "sub/b.pdf", 10)
        assert digest(found) == hashlib.sha256(b"%PDF-1.7 b").hexdigest()


def test_a_manifest_file_makes_its_folder_the_carrier(tmp_path: Path) -> None:
    manifest = tmp_path / "one.csv"
    manifest.write_text("file\na\n")
    (tmp_path / "two.csv").write_text("file\nb\n")
    carrier = open_carrier(manifest)
    assert carrier.manifest_name == "one.csv" and isinstance(carrier, FolderCarrier)


@pytest.mark.parametrize("name", ["missing.zip", "list.txt"])
def test_what_is_not_a_carrier_is_refused(tmp_path: Path, name: str) -> None:
    if name.endswith(".txt"):
        (tmp_path / name).write_text("x")
    with pytest.raises((MissingFile, ManifestError)):
        open_carrier(tmp_path / name)


def test_a_symlink_leading_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(b"secret")
    carrier_dir = tmp_path / "carrier"
    carrier_dir.mkdir()
    (carrier_dir / "m.csv").write_text("file\nlink.pdf\n")
    (carrier_dir / "link.pdf").symlink_to(outside)
    (carrier_dir / "inside.pdf").write_bytes(b"ok")
    (carrier_dir / "alias.pdf").symlink_to(carrier_dir / "inside.pdf")
    (carrier_dir / "dangling.pdf").symlink_to(tmp_path / "nowhere")
    carrier = open_carrier(carrier_dir)
    with pytest.raises(UnsafePath, match="outside the carrier"):
        carrier.locate("link.pdf")
    assert carrier.locate("alias.pdf").size == 2  # a link inside the carrier is fine
    with pytest.raises(MissingFile, match="broken link"):
        carrier.locate("dangling.pdf")


def test_missing_files_directories_and_pipes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("file\na\n")
    (tmp_path / "dir.pdf").mkdir()
    os.mkfifo(tmp_path / "pipe.pdf")
    carrier = open_carrier(tmp_path)
    with pytest.raises(MissingFile, match="not in the carrier"):
        carrier.locate("nope.pdf")
    for name in ("dir.pdf", "pipe.pdf"):
        with pytest.raises(UnreadableFile, match="not a regular file"):
            carrier.locate(name)


def test_a_decomposed_name_on_disk_matches_the_manifest(tmp_path: Path) -> None:
    name = "café.pdf"
    (tmp_path / unicodedata.normalize("NFD", name)).write_bytes(b"x")
    (tmp_path / "m.csv").write_text("file\n")
    assert open_carrier(tmp_path).locate(unicodedata.normalize("NFC", name)).size == 1


def test_a_zip_carrier_reads_members_as_streams_relative_to_its_manifest(tmp_path: Path) -> None:
    path = _zip(
        tmp_path / "c.zip",
        {"移交/清单.csv": "文件\n报告.pdf\n".encode(), "移交/报告.pdf": b"%PDF-1.7 r", "移交/sub/x.csv": b"a,b"},
        gbk=True,
    )
    with open_carrier(path) as carrier:
        assert carrier.kind == "zip" and carrier.manifest_name == "移交/清单.csv"
        found = carrier.locate("报告.pdf")
        assert found.path == "移交/报告.pdf" and found.size == 10
        with VerifiedReader.open(found, hashlib.sha256(b"%PDF-1.7 r").hexdigest()) as stream:
            assert stream.read() == b"%PDF-1.7 r"
        with pytest.raises(MissingFile, match=r"not in c\.zip"):
            carrier.locate("清单.pdf")
    assert not list(tmp_path.glob("移交*"))  # nothing was extracted


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({"m.csv": b"file\n", "../evil.pdf": b"x"}, "leaves the carrier"),
        ({"m.csv": b"file\n", "/etc/cron.d/x": b"x"}, "absolute"),
        ({"m.csv": b"file\n", "a.pdf": b"x", "./a.pdf": b"y"}, "a.pdf twice"),
    ],
)
def test_a_zip_with_an_unsafe_member_is_refused_whole(tmp_path: Path, members: dict[str, bytes], fragment: str) -> None:
    path = _zip(tmp_path / "c.zip", members)
    with pytest.raises(UnsafeCarrier, match=fragment):
        ZipCarrier(path)


def test_a_zip_with_a_symlink_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m.csv", "file\nlink\n")
        link = zipfile.ZipInfo("link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeCarrier, match="symbolic link"):
        ZipCarrier(path)


def test_a_zip_bomb_is_refused_by_ratio_and_by_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "BOMB_MIN_BYTES", 1000)
    path = _zip(tmp_path / "bomb.zip", {"m.csv": b"file\nz\n", "z": b"\0" * 1_000_000})
    with pytest.raises(UnsafeCarrier, match="zip bomb"):
        ZipCarrier(path)
    monkeypatch.setattr(module, "BOMB_MIN_BYTES", 10**9)
    monkeypatch.setattr(module, "MAX_CARRIER_BYTES", 999_999)
    with pytest.raises(UnsafeCarrier, match="expands to"):
        ZipCarrier(path)


def test_too_many_members_and_a_non_zip_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _zip(tmp_path / "c.zip", {"m.csv": b"file\n", "a": b"1", "b": b"2"})
    monkeypatch.setattr(module, "MAX_MEMBERS", 2)
    with pytest.raises(UnsafeCarrier, match="more than 2 members"):
        ZipCarrier(path)
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(UnsafeCarrier, match="not a readable zip"):
        open_carrier(tmp_path / "fake.zip")


def test_a_damaged_member_fails_its_read_not_the_process(tmp_path: Path) -> None:
    body = os.urandom(5000)
    path = _zip(tmp_path / "c.zip", {"m.csv": b"file\na.bin\n", "a.bin": body})
    raw = bytearray(path.read_bytes())
    at = raw.find(b"a.bin", 40) + 5 + 2000  # inside a.bin's compressed data (after its local header)
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with ZipCarrier(path) as carrier, pytest.raises(UnreadableFile, match="cannot be read"):
        digest(carrier.locate("a.bin"))


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "c.zip", {"m.csv": b"file\na\n", "a": b"x"})
    raw = bytearray(path.read_bytes())
    local = raw.find(b"PK\x03\x04", raw.find(b"PK\x03\x04") + 4)  # the second member's local header
    central = raw.find(b"PK\x01\x02", raw.find(b"PK\x01\x02") + 4)
    raw[local + 6] |= 0x1
    raw[central + 8] |= 0x1
    path.write_bytes(bytes(raw))
    with ZipCarrier(path) as carrier, pytest.raises(UnreadableFile, match="encrypted"):
        carrier.locate("a")


def test_a_file_that_changes_after_it_was_hashed_fails_at_the_end_of_its_read(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"first version")
    found = local_file(path)
    expected = digest(found)
    path.write_bytes(b"other version")
    with VerifiedReader.open(found, expected) as stream, pytest.raises(UnreadableFile, match="changed while"):
        stream.read()


def test_the_reader_opens_lazily_and_closes_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"x" * 10)
    opened: list[int] = []

    def opener() -> object:
        opened.append(1)
        return path.open("rb")

    found = local_file(path)
    found = type(found)(found.path, found.name, found.size, found.created, opener)  # type: ignore[arg-type]
    stream = VerifiedReader.open(found, None)
    assert opened == []
    assert stream.read() == b"x" * 10 and opened == [1]
    assert stream.read() == b""


def test_local_file_refuses_links(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x")
    (tmp_path / "l").symlink_to(tmp_path / "a")
    with pytest.raises(UnreadableFile):
        local_file(tmp_path / "l")
