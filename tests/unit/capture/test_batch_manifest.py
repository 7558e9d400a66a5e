"""The manifest reader: encodings, headers, declarations and every way a manifest can be wrong."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator

import openpyxl
import pytest
from django.utils import translation

from medarchive.capture.batch.manifest import (
    MAX_COLUMNS,
    ManifestError,
    cell_text,
    normalize_date,
    read_manifest,
    row_from_mapping,
    target_of,
)


@pytest.fixture(autouse=True)
def _in_english() -> Iterator[None]:
    """These tests read what the messages say in English (the msgids); zh-Hans is the catalog's."""
    with translation.override("en"):
        yield


CHINESE = (
    "题名,责任者,日期,门类,部门,文件,患者ID,患者姓名,页数\n出院记录,内科,2025-03-01,BA-ZY,NK,a.pdf;b.pdf,P001,张三,3\n"
)


def _xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (CHINESE.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + CHINESE.encode("utf-8"), "utf-8"),
        (CHINESE.encode("gb18030"), "gb18030"),
        (CHINESE.encode("utf-16"), "utf-16"),
    ],
)
def test_chinese_headers_in_every_accepted_encoding_map_to_the_same_row(data: bytes, encoding: str) -> None:
    manifest = read_manifest(data, name="清单.csv")
    assert manifest.encoding == encoding and manifest.format == "csv"
    (row,) = manifest.rows
    assert row.number == 2
    assert row.fields == {
        "title": "出院记录",
        "responsible": "内科",
        "date": "2025-03-01",
        "class_code": "BA-ZY",
        "department_code": "NK",
    }
    assert row.files == ["a.pdf", "b.pdf"]
    assert row.metadata == {"patient_id": "P001", "patient_name": "张三", "pages": 3}
    assert manifest.ignored == []


def test_english_aliases_decorated_headers_and_tabs_are_accepted() -> None:
    data = (
        "*Title（必填）\tDate (YYYY-MM-DD)\tClass\tDept\tFile name\tmeta.ward\tpatient_id\n"
        "通知\t2025/3/1\tWS\tBGS\tx.pdf\t3病区\tP9\n"
    )
    (row,) = read_manifest(data.encode(), name="m.tsv").rows
    assert row.fields == {"title": "通知", "date": "2025-03-01", "class_code": "WS", "department_code": "BGS"}
    assert row.files == ["x.pdf"] and row.metadata == {"ward": "3病区", "patient_id": "P9"}


def test_schema_titles_are_headers_too_and_unknown_columns_are_reported_not_stored() -> None:
    data = "文件名,患者标识,住院号,出院日期,关键词,序号,档号\na.pdf,P1,Z100,2025年3月9日,出院，小结,1,Z001-XX\n"
    manifest = read_manifest(data.encode(), name="m.csv")
    (row,) = manifest.rows
    assert row.metadata == {
        "patient_id": "P1",
        "admission_no": "Z100",
        "discharge_date": "2025-03-09",
        "keywords": ["出院，小结"],
    }
    assert manifest.ignored == ["序号", "档号"]


def test_several_files_split_on_ascii_and_fullwidth_semicolons() -> None:
    (row,) = read_manifest("文件\n a.pdf ；b.pdf;; sub/c.pdf \n".encode(), name="m.csv").rows
    assert row.files == ["a.pdf", "b.pdf", "sub/c.pdf"]


def test_declarations_and_comments_are_not_records() -> None:
    data = "# 移交清单 2025\n#总件数,2\n#总字节数=1234\n文件,题名\na.pdf,一\n#comment,x\nb.pdf,二\n"
    manifest = read_manifest(data.encode(), name="m.csv")
    assert [r.number for r in manifest.rows] == [5, 7]
    assert (manifest.declared.item_count, manifest.declared.total_bytes) == (2, 1234)
    assert manifest.declared.any


def test_no_declaration_means_no_register() -> None:
    manifest = read_manifest(b"file\na.pdf\n", name="m.csv")
    assert not manifest.declared.any


def test_a_lone_hash_is_a_header_like_any_other() -> None:
    manifest = read_manifest("#,文件\n1,a.pdf\n".encode(), name="m.csv")
    assert [r.files for r in manifest.rows] == [["a.pdf"]] and manifest.ignored == ["#"]


def test_blank_rows_are_skipped_and_row_numbers_match_the_spreadsheet() -> None:
    manifest = read_manifest(b"\nfile,title\n,\na.pdf,x\n\n\nb.pdf,y\n", name="m.csv")
    assert [r.number for r in manifest.rows] == [4, 7]


def test_short_rows_are_padded_and_quoted_cells_keep_separators() -> None:
    manifest = read_manifest(b'file,title,doc_number\n"a.pdf;b.pdf","x, y"\n', name="m.csv")
    (row,) = manifest.rows
    assert row.files == ["a.pdf", "b.pdf"] and row.fields == {"title": "x, y"}


def test_size_and_sha256_columns_are_read_per_row() -> None:
    digest = "AB" * 32
    (row,) = read_manifest(f'文件,字节数,sha256\na.pdf,"1,024",{digest}\n'.encode(), name="m.csv").rows
    assert row.size == 1024 and row.sha256 == [digest.lower()] and row.problem is None


@pytest.mark.parametrize(
    ("cells", "field", "code", "fragment"),
    [
        ("a.pdf,1.5MB,", "size", "size_not_a_number", "1.5MB"),
        ("a.pdf,-3,", "size", "size_not_a_number", "-3"),
        ("a.pdf,,nothex", "sha256", "sha256_malformed", "nothex"),
        ("a.pdf;b.pdf,," + "a" * 64, "sha256", "sha256_count_mismatch", "1 SHA-256 digests for 2 files"),
    ],
)
def test_a_bad_check_cell_marks_only_its_row(cells: str, field: str, code: str, fragment: str) -> None:
    manifest = read_manifest(f"文件,字节数,sha256\n{cells}\nok.pdf,,\n".encode(), name="m.csv")
    bad, good = manifest.rows
    assert bad.problem is not None and (bad.problem.code, bad.problem.field) == (code, field)
    assert fragment in bad.problem.message
    assert good.problem is None


def test_a_metadata_value_of_the_wrong_type_is_kept_for_the_schema_check_to_name() -> None:
    (row,) = read_manifest("文件,页数,金额\na.pdf,三页,12.5\n".encode(), name="m.csv").rows
    assert row.metadata == {"pages": "三页", "amount": 12.5}


def test_xlsx_first_sheet_with_dates_numbers_and_declarations() -> None:
    data = _xlsx(
        [
            ["#总件数", 1],
            ["题名", "日期", "文件名", "患者ID", "页数", "字节数"],
            ["检验报告", dt.datetime(2025, 3, 1), "r.pdf", 12345, 2.0, 100],  # noqa: DTZ001 - Excel has no zones
        ]
    )
    manifest = read_manifest(data, name="清单.xlsx")
    assert manifest.format == "xlsx" and manifest.encoding is None
    (row,) = manifest.rows
    assert row.number == 3
    assert row.fields == {"title": "检验报告", "date": "2025-03-01"}
    assert row.metadata == {"patient_id": "12345", "pages": 2} and row.size == 100
    assert manifest.declared.item_count == 1


def test_the_manifest_is_identified_by_its_sha256() -> None:
    one = read_manifest(b"file\na.pdf\n", name="m.csv")
    two = read_manifest(b"file\na.pdf\n", name="other.csv")
    three = read_manifest(b"file\nb.pdf\n", name="m.csv")
    assert one.sha256 == two.sha256 != three.sha256 and one.size == 11
    assert one.summary()["columns"] == {"file": "files"}


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (b"", "m.csv", "manifest_empty"),
        (b"\n\n \n", "m.csv", "manifest_no_header"),
        (b"title,date\nx,2025-01-01\n", "m.csv", "manifest_no_file_column"),
        (b"file,title\n", "m.csv", "manifest_no_records"),
        ("题名,标题,文件\na,b,c\n".encode(), "m.csv", "manifest_duplicate_column"),
        (b"file\na.pdf\x00\n", "m.csv", "manifest_binary"),
        (b"file\n\x80\x80abc\xff", "m.csv", "manifest_encoding"),
        (b"#items,many\nfile\na\n", "m.csv", "manifest_bad_declaration"),
        (b"#items,1\n#items,2\nfile\na\n", "m.csv", "manifest_declared_twice"),
        (b"not a workbook", "m.xlsx", "manifest_not_xlsx"),
        (b"PK\x03\x04garbage", "m.xlsx", "manifest_unreadable_xlsx"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 50, "m.xls", "manifest_old_xls"),
        (b'file\n"a.pdf\n' + b"x" * 200_000 + b"\n", "m.csv", "manifest_bad_csv"),
        (b"file," + b"c," * MAX_COLUMNS + b"z\na\n", "m.csv", "manifest_too_many_columns"),
    ],
)
def test_an_unusable_manifest_is_refused_with_a_reason(data: bytes, name: str, code: str) -> None:
    with pytest.raises(ManifestError) as caught:
        read_manifest(data, name=name)
    problem = caught.value.as_problem()
    assert (problem["code"], problem["field"]) == (code, "manifest") and name in caught.value.message
    assert "%(" not in caught.value.message  # every placeholder filled


def test_a_workbook_that_inflates_too_far_is_refused_before_openpyxl_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from medarchive.capture.batch import manifest as module

    data = _xlsx([["file"], ["a.pdf"]])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        expanded = sum(i.file_size for i in archive.infolist())
    monkeypatch.setattr(module, "MAX_XLSX_EXPANDED", expanded - 1)
    with pytest.raises(ManifestError, match="expands to") as caught:
        read_manifest(data, name="m.xlsx")
    assert caught.value.code == "manifest_xlsx_too_large" and caught.value.details["max_bytes"] == expanded - 1


def test_a_manifest_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from medarchive.capture.batch import manifest as module

    monkeypatch.setattr(module, "MAX_MANIFEST_BYTES", 10)
    with pytest.raises(ManifestError, match="larger than 10 bytes") as caught:
        read_manifest(b"file\nabcdefghij.pdf\n", name="m.csv")
    assert caught.value.code == "manifest_too_large"


def test_too_many_rows_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from medarchive.capture.batch import manifest as module

    monkeypatch.setattr(module, "MAX_ROWS", 2)
    with pytest.raises(ManifestError, match="more than 2 records") as caught:
        read_manifest(b"file\na\nb\nc\n", name="m.csv")
    assert caught.value.code == "manifest_too_many_records"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-03-01", "2025-03-01"),
        ("2025/3/1", "2025-03-01"),
        ("2025.03.01", "2025-03-01"),
        ("20250301", "2025-03-01"),
        ("2025年3月1日", "2025-03-01"),
        ("２０２５年３月１日", "2025-03-01"),
        ("2025-03-01 08:30:00", "2025-03-01"),
        ("2025-02-30", "2025-02-30"),  # impossible: left for capture to refuse by name
        ("March 1st", "March 1st"),
        ("", ""),
    ],
)
def test_dates_are_normalised_only_when_unambiguous(raw: str, expected: str) -> None:
    assert normalize_date(raw) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (3.0, "3"),
        (2.5, "2.5"),
        (True, "true"),
        (dt.datetime(2025, 3, 1), "2025-03-01"),  # noqa: DTZ001 - spreadsheet cells are naive
        (dt.datetime(2025, 3, 1, 8, 30), "2025-03-01 08:30:00"),  # noqa: DTZ001
        (dt.date(2025, 3, 1), "2025-03-01"),
        ("  x ", "x"),
    ],
)
def test_cells_become_text(value: object, text: str) -> None:
    assert cell_text(value) == text


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("题名", "title"),
        ("Title", "title"),
        ("分类号", "subclass"),
        ("科室", "department_code"),
        ("ICD-10 编码", "metadata.icd10"),
        ("meta.original_filenames", None),
        ("metadata.床号", "metadata.床号"),
        ("whatever", None),
    ],
)
def test_header_targets(header: str, target: str | None) -> None:
    assert target_of(header) == target


def test_a_mapping_becomes_one_row_for_sidecars() -> None:
    row, ignored = row_from_mapping({"题名": "x", "日期": "2025/1/2", "meta.ward": 3, "colour": "red"})
    assert row.fields == {"title": "x", "date": "2025-01-02"} and row.metadata == {"ward": "3"}
    assert ignored == ["colour"]
