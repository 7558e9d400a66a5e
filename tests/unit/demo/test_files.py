"""Synthetic demo files: formats, Chinese content, determinism and the document mix."""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import random
import re
import shutil
import subprocess
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image

from medarchive.demo import files
from medarchive.demo.files import (
    CLASS_CODES,
    DEPARTMENT_NAMES,
    DEPARTMENTS,
    OPEN_STATUSES,
    RETENTION_CODES,
    SCAN_DPI,
    SCAN_SIZE,
    SECURITY_LEVELS,
    DemoDocument,
    chinese_pdf,
    generate_documents,
    photo,
    rmb_upper,
    scanned_page,
    spreadsheet,
    word_document,
)

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
MAX_BYTES = 200 * 1024

TITLE = "关于加强病案管理的通知"
PARAGRAPHS = [
    "为进一步规范我院病案管理工作，提高病案质量，现将有关事项通知如下。",
    "一、各临床科室应在患者出院后7个工作日内将病历提交病案室。",
]


# ---- helpers -------------------------------------------------------------------------

_ESCAPES = {
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"b": b"\b",
    b"f": b"\f",
    b"(": b"(",
    b")": b")",
    b"\\": b"\\",
}


def _unescape_pdf_string(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i : i + 1]
        if byte != b"\\":
            out += byte
            i += 1
            continue
        nxt = raw[i + 1 : i + 2]
        octal = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(), 8) & 0xFF)
            i += 1 + len(octal.group())
        elif nxt in _ESCAPES:
            out += _ESCAPES[nxt]
            i += 2
        else:  # line continuation or unknown escape: drop the backslash
            i += 1
    return bytes(out)


def pdf_text(data: bytes) -> str:
    """Text shown by Tj operators, decoded from reportlab's ASCII85+Flate content streams.

    STSong-Light is used with the UniGB-UCS2-H CMap, so every shown string is UTF-16BE.
    """
    import zlib

    shown: list[str] = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = match.group(1).strip()
        try:
            stream = zlib.decompress(base64.a85decode(raw.removesuffix(b"~>")))
        except ValueError:
            continue
        for literal in re.finditer(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj", stream, re.S):
            shown.append(_unescape_pdf_string(literal.group(1)).decode("utf-16-be"))
    return "".join(shown)


def zip_members(data: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return set(archive.namelist())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- PDF -----------------------------------------------------------------------------


def test_chinese_pdf_is_a_pdf_using_the_builtin_cid_font() -> None:
    data = chinese_pdf(TITLE, PARAGRAPHS)
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    assert b"/BaseFont /STSong-Light" in data
    assert b"/Encoding /UniGB-UCS2-H" in data
    assert b"/Helvetica" not in data  # every text run uses the CJK font


def test_chinese_pdf_content_stream_holds_the_chinese_text() -> None:
    text = pdf_text(chinese_pdf(TITLE, PARAGRAPHS, doc_number="昭一医发〔2025〕12号"))
    assert TITLE in text
    assert "昭一医发〔2025〕12号" in text
    # wrapped paragraphs come back in order once the line breaks are removed
    assert PARAGRAPHS[0] in text
    assert PARAGRAPHS[1] in text


def test_red_header_layout_has_red_banner_and_resets_render_mode() -> None:
    data = chinese_pdf(
        TITLE,
        PARAGRAPHS,
        red_header=True,
        doc_number="昭一医发〔2025〕12号",
        addressee="院内各科室：",
        signed_on=datetime.date(2025, 3, 7),
    )
    text = pdf_text(data)
    assert f"{files.HOSPITAL_NAME}文件" in text
    assert "2025年3月7日" in text
    plain = chinese_pdf(TITLE, PARAGRAPHS)
    assert f"{files.HOSPITAL_NAME}文件" not in pdf_text(plain)


def test_long_pdf_breaks_pages() -> None:
    data = chinese_pdf(TITLE, PARAGRAPHS * 40, red_header=True)
    assert len(re.findall(rb"/Type /Page(?!s)", data)) >= 2
    assert "— 2 —" in pdf_text(data)


def test_pdf_is_deterministic() -> None:
    assert chinese_pdf(TITLE, PARAGRAPHS) == chinese_pdf(TITLE, PARAGRAPHS)


def test_pdftotext_extracts_the_chinese_title() -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    data = chinese_pdf(TITLE, PARAGRAPHS, red_header=True, doc_number="昭一医发〔2025〕12号")
    result = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-", "-"], input=data, capture_output=True, check=True, timeout=30
    )
    extracted = re.sub(r"\s+", "", result.stdout.decode("utf-8"))
    assert TITLE in extracted
    assert "昭一医发〔2025〕12号" in extracted


# ---- scans and photos --------------------------------------------------------------------

SCAN_LINES = [
    "昭阳市第一人民医院住院病案首页",
    "姓名：张某某　性别：男　年龄：56岁",
    "出院主要诊断：社区获得性肺炎",
]


def test_scanned_page_is_a_200_dpi_grayscale_a4_jpeg() -> None:
    data = scanned_page(SCAN_LINES, random.Random(1))
    assert data.startswith(JPEG_MAGIC)
    assert len(data) < MAX_BYTES
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.mode == "L"
        assert image.size == SCAN_SIZE
        assert tuple(round(v) for v in image.info["dpi"]) == (SCAN_DPI, SCAN_DPI)


def test_scanned_page_is_deterministic_per_rng_seed() -> None:
    assert scanned_page(SCAN_LINES, random.Random(5)) == scanned_page(SCAN_LINES, random.Random(5))
    assert scanned_page(SCAN_LINES, random.Random(5)) != scanned_page(SCAN_LINES, random.Random(6))


def test_scanned_page_stays_small_even_when_full() -> None:
    data = scanned_page(SCAN_LINES * 40, random.Random(2))
    assert len(data) <= files.SCAN_MAX_BYTES


def test_scanned_page_falls_back_to_ascii_without_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "find_cjk_font", lambda *args: None)
    data = scanned_page(SCAN_LINES, random.Random(1))
    assert data.startswith(JPEG_MAGIC)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == SCAN_SIZE


def test_ascii_transliteration() -> None:
    assert files.ascii_transliteration("姓名：张某某　性别：男　年龄：56岁") == "Name:~ Sex:M Age:56 y"
    assert files.ascii_transliteration("ICD-10：J18.9").isascii()


def test_find_cjk_font_returns_none_for_a_directory_without_fonts(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no fonts here", encoding="utf-8")
    assert files.find_cjk_font((str(tmp_path),)) is None


def test_find_cjk_font_result_really_covers_chinese() -> None:
    found = files.find_cjk_font()
    if found is None:
        pytest.skip("no CJK font installed; scans use the ASCII fallback")
    path, index = found
    assert Path(path).is_file()
    assert files._covers_cjk(files._truetype(path, index, 24))


def test_photo_is_a_jpeg_with_exif_date() -> None:
    data = photo(random.Random(3), taken=datetime.date(2023, 8, 19), caption="第六个中国医师节庆祝大会")
    assert data.startswith(JPEG_MAGIC)
    assert len(data) < MAX_BYTES
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGB"
        exif = image.getexif()
        original = exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal]
    assert original.startswith("2023:08:19 ")
    assert photo(random.Random(3)) == photo(random.Random(3))


# ---- Office formats ------------------------------------------------------------------


def test_word_document_is_a_docx_that_reopens_with_the_text() -> None:
    import docx

    data = word_document(
        TITLE,
        PARAGRAPHS,
        author="院办公室",
        date=datetime.date(2024, 5, 6),
        table=[("项目名称", "病案数字化")],
        signature="院办公室",
    )
    assert data.startswith(ZIP_MAGIC)
    assert "word/document.xml" in zip_members(data)
    document = docx.Document(io.BytesIO(data))
    texts = [paragraph.text for paragraph in document.paragraphs]
    assert texts[0] == TITLE
    assert PARAGRAPHS[0] in texts
    assert "2024年5月6日" in texts
    assert document.tables[0].cell(0, 1).text == "病案数字化"
    assert document.core_properties.title == TITLE
    assert document.core_properties.author == "院办公室"


def test_spreadsheet_is_an_xlsx_that_reopens_with_the_rows() -> None:
    import openpyxl

    rows: list[list[Any]] = [
        ["记-001", datetime.date(2024, 5, 6), "支付水电费", 1234.5],
        ["记-002", None, "购置办公用品", 88.0],
    ]
    data = spreadsheet(
        "记账凭证汇总表（2024年5月）",
        ["凭证号", "日期", "摘要", "金额"],
        rows,
        date=datetime.date(2024, 5, 31),
    )
    assert data.startswith(ZIP_MAGIC)
    assert "xl/workbook.xml" in zip_members(data)
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    sheet = workbook.active
    assert sheet is not None
    assert sheet["A1"].value == "记账凭证汇总表（2024年5月）"
    assert [cell.value for cell in sheet[2]] == ["凭证号", "日期", "摘要", "金额"]
    assert sheet["C3"].value == "支付水电费"
    assert sheet["D3"].value == 1234.5
    assert sheet["D3"].number_format == "#,##0.00"
    workbook.close()


def test_office_files_are_byte_for_byte_reproducible() -> None:
    day = datetime.date(2024, 5, 6)
    assert word_document(TITLE, PARAGRAPHS, date=day) == word_document(TITLE, PARAGRAPHS, date=day)
    sheet = ("表", ["a"], [[1.0]])
    assert spreadsheet(*sheet, date=day) == spreadsheet(*sheet, date=day)
    with zipfile.ZipFile(io.BytesIO(word_document(TITLE, PARAGRAPHS, date=day))) as archive:
        assert {info.date_time[:3] for info in archive.infolist()} == {(2024, 5, 6)}
        assert b"2024-05-06T09:00:00Z" in archive.read("docProps/core.xml")


# ---- helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (12345.6, "壹万贰仟叁佰肆拾伍元陆角整"),
        (1_000_000, "壹佰万元整"),
        (10005.07, "壹万零伍元零柒分"),
        (0.5, "伍角整"),
        (0, "零元整"),
        (100_000_005, "壹亿零伍元整"),
        (329713.38, "叁拾贰万玖仟柒佰壹拾叁元叁角捌分"),
    ],
)
def test_rmb_upper(amount: float, expected: str) -> None:
    assert rmb_upper(amount) == expected


def test_fake_patient_id_is_visibly_fake_and_18_chars() -> None:
    value = files.fake_patient_id(random.Random(1), datetime.date(1967, 3, 12))
    assert value.startswith("DEMO")
    assert len(value) == 18
    assert "19670312" in value


# ---- the document mix ------------------------------------------------------------------------

MAGIC_BY_SUFFIX = {
    ".pdf": (b"%PDF-",),
    ".jpg": (JPEG_MAGIC,),
    ".png": (PNG_MAGIC,),
    ".docx": (ZIP_MAGIC,),
    ".xlsx": (ZIP_MAGIC,),
}
MEMBER_BY_SUFFIX = {".docx": "word/document.xml", ".xlsx": "xl/workbook.xml"}


@pytest.fixture(scope="module")
def documents() -> list[DemoDocument]:
    return list(generate_documents(200))


def test_every_class_code_appears(documents: list[DemoDocument]) -> None:
    counts = Counter(document.class_code for document in documents)
    assert set(counts) == set(CLASS_CODES)


def test_first_documents_cover_every_class() -> None:
    assert {document.class_code for document in generate_documents(len(CLASS_CODES))} == set(CLASS_CODES)


def test_filenames_unique_and_files_non_empty_and_small(documents: list[DemoDocument]) -> None:
    names = [document.filename for document in documents]
    assert len(names) == len(set(names))
    for document in documents:
        assert document.content, document.filename
        assert len(document.content) < MAX_BYTES, (document.filename, len(document.content))
        assert "/" not in document.filename and "\\" not in document.filename


def test_contents_match_their_extension(documents: list[DemoDocument]) -> None:
    suffixes: Counter[str] = Counter()
    for document in documents:
        suffix = Path(document.filename).suffix
        suffixes[suffix] += 1
        assert document.content.startswith(MAGIC_BY_SUFFIX[suffix]), document.filename
        if suffix in MEMBER_BY_SUFFIX:
            assert MEMBER_BY_SUFFIX[suffix] in zip_members(document.content), document.filename
        if suffix == ".pdf":
            assert b"/STSong-Light" in document.content
        assert document.media_type != "application/octet-stream"
    assert {".pdf", ".jpg", ".docx", ".xlsx"} <= set(suffixes)


def test_metadata_uses_the_controlled_vocabularies(documents: list[DemoDocument]) -> None:
    for document in documents:
        assert document.class_code in CLASS_CODES
        assert document.department_code in DEPARTMENT_NAMES
        assert document.retention in RETENTION_CODES
        assert document.security_level in SECURITY_LEVELS
        assert document.open_status in OPEN_STATUSES
        assert files.FIRST_DATE <= document.date <= files.LAST_DATE, document.filename
        assert 2019 <= document.date.year <= 2026
        assert document.title and document.author
        assert all(isinstance(value, str) for value in document.extra.values())
    years = {document.date.year for document in documents}
    assert len(years) >= 6
    assert len({document.author for document in documents}) > 10


def test_medical_records_are_de_identified_and_controlled(documents: list[DemoDocument]) -> None:
    records = [document for document in documents if document.class_code.startswith("BA-")]
    assert records
    for record in records:
        assert record.extra["patient_name"].endswith("某")
        assert record.extra["patient_id"].startswith("DEMO")
        assert len(record.extra["patient_id"]) == 18
        assert record.open_status != "开放"
        assert record.retention == ("MR30" if record.class_code == "BA-ZY" else "MR15")
    inpatient = [record for record in records if record.class_code == "BA-ZY"]
    assert all(record.extra["admission_no"] for record in inpatient)


def test_document_numbers_look_like_wenhao(documents: list[DemoDocument]) -> None:
    numbers = [document.doc_number for document in documents if document.doc_number]
    assert numbers
    assert len(numbers) == len(set(numbers))
    for number in numbers:
        assert re.fullmatch(r"昭一医(?:发|办发|人发)〔20\d\d〕\d+号", number), number


def test_contracts_carry_number_and_amount(documents: list[DemoDocument]) -> None:
    contracts = [document for document in documents if document.class_code == "KJ-SB"]
    assert contracts
    for contract in contracts:
        assert contract.extra["contract_no"].startswith("ZYYSB-")
        assert re.fullmatch(r"[\d,]+\.\d\d", contract.extra["amount"])


def test_same_seed_same_documents_other_seed_other_documents() -> None:
    def fingerprint(seed: int) -> list[tuple[str, str, str]]:
        return [(d.filename, d.title, sha(d.content)) for d in generate_documents(30, seed=seed)]

    first = fingerprint(7)
    assert first == fingerprint(7)
    assert first != fingerprint(8)


def test_default_seed_is_stable_for_titles(documents: list[DemoDocument]) -> None:
    again = list(generate_documents(20))
    assert [(d.filename, d.title) for d in again] == [(d.filename, d.title) for d in documents[:20]]


def test_count_bounds() -> None:
    assert list(generate_documents(0)) == []
    with pytest.raises(ValueError, match="count"):
        list(generate_documents(-1))


def test_departments_list_shape() -> None:
    assert len(DEPARTMENTS) >= 10
    assert len({code for code, _ in DEPARTMENTS}) == len(DEPARTMENTS)
