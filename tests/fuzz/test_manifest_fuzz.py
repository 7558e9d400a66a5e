"""Fuzzing the manifest reader (hypothesis): whatever the bytes, it answers a Manifest or a ManifestError.

The corpus in `corpus/manifest/` seeds the mutations and is checked as it is: `ok-*` files must
read, `bad-*` files must be refused with a ManifestError. An input that once broke the reader is
kept there as `crash-*` (it must then read or be refused, nothing else). Hypothesis keeps no
example database (`database=None`): the corpus is the memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medarchive.capture.batch.carrier import relative_parts
from medarchive.capture.batch.manifest import FILE_SEPARATORS, Manifest, ManifestError, read_manifest, row_from_mapping
from medarchive.core.errors import ValidationError

CORPUS = Path(__file__).parent / "corpus" / "manifest"
SEEDS = sorted(CORPUS.iterdir())
FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _read(data: bytes, name: str) -> Manifest | None:
    """The reader's contract: a well-formed Manifest, or ManifestError; nothing else escapes."""
    try:
        manifest = read_manifest(data, name=name)
    except ManifestError as exc:
        assert exc.message and exc.field == "manifest"
        return None
    assert manifest.rows and manifest.sha256 == hashlib.sha256(data).hexdigest() and manifest.size == len(data)
    numbers = [row.number for row in manifest.rows]
    assert numbers == sorted(set(numbers)) and numbers[0] >= 2
    for row in manifest.rows:
        assert all(f and f == f.strip() for f in row.files)
        assert not any(FILE_SEPARATORS.search(f) for f in row.files)
        assert row.problem is None or isinstance(row.problem, ValidationError)
        assert row.size is None or row.size >= 0
        assert all(isinstance(k, str) and k for k in row.metadata)
    return manifest


def test_the_corpus_is_there() -> None:
    assert any(p.name.startswith("ok-") for p in SEEDS) and any(p.name.startswith("bad-") for p in SEEDS)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_each_corpus_file_reads_or_is_refused_as_its_name_says(path: Path) -> None:
    manifest = _read(path.read_bytes(), path.name)
    if path.name.startswith("ok-"):
        assert manifest is not None
    elif path.name.startswith("bad-"):
        assert manifest is None


@FUZZ
@given(data=st.binary(max_size=4096), name=st.sampled_from(["m.csv", "m.xlsx", "m.tsv"]))
def test_random_bytes(data: bytes, name: str) -> None:
    _read(data, name)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    seed = draw(st.sampled_from(SEEDS))
    data = bytearray(seed.read_bytes())
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b",", b";", b"\n", b'"', b"#", b"\x00", b"\xff", "；".encode(), b"\t"]))
        elif op == "delete" and data:
            del data[at]
        elif op == "truncate":
            del data[at:]
        elif op == "repeat" and data:
            data[at:at] = data[at : at + draw(st.integers(1, 64))] * draw(st.integers(1, 20))
    return bytes(data), seed.name


@FUZZ
@given(case=_mutated())
def test_mutated_corpus(case: tuple[bytes, str]) -> None:
    _read(*case)


CELL = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30)
FILE = st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters=";；"), max_size=20)


@FUZZ
@given(rows=st.lists(st.tuples(CELL, FILE), min_size=1, max_size=20))
def test_a_csv_written_by_the_csv_module_reads_back(rows: list[tuple[str, str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["题名", "文件"])
    writer.writerows(rows)
    expected = [
        (title.strip(), [file.strip()] if file.strip() else [])
        for title, file in rows
        if (title.strip() or file.strip()) and not (title.strip().startswith("#") and title.strip() != "#")
    ]
    manifest = _read(out.getvalue().encode("utf-8"), "m.csv")
    if not expected:
        assert manifest is None
        return
    assert manifest is not None
    assert [(r.fields.get("title", ""), r.files) for r in manifest.rows] == expected


XLSX_CELL = st.one_of(
    st.none(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2100, 1, 1)),
    st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20),
)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(XLSX_CELL, min_size=1, max_size=6), max_size=8))
def test_random_workbooks(rows: list[list[object]]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["题名", "日期", "文件", "页数", "患者ID", "字节数"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    _read(out.getvalue(), "m.xlsx")


@FUZZ
@given(values=st.dictionaries(CELL, st.one_of(CELL, st.integers(), st.floats(allow_nan=False), st.none()), max_size=8))
def test_sidecar_mappings(values: dict[str, object]) -> None:
    try:
        row, ignored = row_from_mapping(values)
    except ManifestError:
        return  # two names for one column
    assert isinstance(ignored, list) and row.number == 1


@FUZZ
@given(raw=st.lists(st.sampled_from(["a", "b", ".", "..", "/", "\\", ":", "C:", " ", "\x00", "~", "é"])).map("".join))
def test_carrier_paths_never_leave_the_carrier(raw: str) -> None:
    try:
        parts = relative_parts(raw)
    except ValidationError:
        return
    assert parts and all(p not in {"", ".", ".."} and "/" not in p and "\\" not in p for p in parts)
    assert "\x00" not in "".join(parts) and not raw.strip().startswith(("/", "\\"))
