"""Quality rules and text fingerprints, as pure functions."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from medarchive.capture import quality, textprint

TODAY = dt.date(2026, 11, 26)
PDF = quality.FileFacts("a.pdf", 10, "application/pdf", "PDF")
DOCX = quality.FileFacts("a.docx", 10, textprint.DOCX, "Office Open XML Document")
EXE = quality.FileFacts("a.exe", 10, "application/octet-stream", "Unknown binary")
RULES = {"formats": ["application/pdf"], "convert": [textprint.DOCX], "max_bytes": 5, "auto_accept": True}


def test_formats_split_into_allowed_convert_and_refused() -> None:
    found = quality.formats(RULES, "WS", [PDF, DOCX, EXE])
    assert [(f.rule, f.severity) for f in found] == [("convert", "warning"), ("format", "error")]
    assert quality.formats({}, "WS", [EXE]) == []  # a class without a format list takes anything


def test_size_limit_is_per_file() -> None:
    assert [f.params for f in quality.sizes(RULES, [PDF])] == [(("file", "a.pdf"), ("size", "10"), ("limit", "5"))]
    assert quality.sizes({}, [PDF]) == []


def test_dates() -> None:
    rules = {"date_order": [["admission_date", "discharge_date"]]}
    ok = {"admission_date": "2025-01-01", "discharge_date": "2025-01-09"}
    assert quality.dates(rules, dt.date(2025, 1, 9), ok, TODAY) == []
    backwards = {"admission_date": "2025-01-09", "discharge_date": "2025-01-01"}
    assert [f.field for f in quality.dates(rules, dt.date(2025, 1, 9), backwards, TODAY)] == ["metadata.discharge_date"]
    assert quality.dates({}, dt.date(1900, 1, 1), {}, TODAY)[0].severity == "warning"


def test_auto_accept_only_when_nothing_was_found() -> None:
    assert quality.auto_accepts(RULES, [])
    assert not quality.auto_accepts(RULES, quality.formats(RULES, "WS", [DOCX]))
    assert not quality.auto_accepts({}, [])


def test_text_shorter_than_the_minimum_has_no_fingerprint() -> None:
    assert textprint.simhash("短文本") is None


def test_whitespace_and_case_do_not_change_the_fingerprint() -> None:
    text = "Discharge summary: patient admitted with pneumonia, treated with antibiotics for seven days. " * 3
    assert textprint.simhash(text) == textprint.simhash(text.upper().replace(" ", "\n  "))


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_signed_storage_round_trips_and_bands_rebuild_the_value(value: int) -> None:
    assert textprint.to_unsigned(textprint.to_signed(value)) == value
    b0, b1, b2, b3 = textprint.bands(value)
    assert b0 | b1 << 16 | b2 << 32 | b3 << 48 == value


def test_extract_reads_gb18030_text_and_ignores_binary() -> None:
    assert textprint.extract("text/plain", "出院小结".encode("gb18030")) == "出院小结"
    assert textprint.extract("image/jpeg", b"\xff\xd8\xff") == ""
    assert textprint.extract("application/pdf", b"%PDF-1.7 broken") == ""


def test_a_docx_whose_body_inflates_past_the_cap_is_not_parsed() -> None:
    import io
    import zipfile

    body = (
        b'<?xml version="1.0"?><w:document xmlns:w="x"><w:body>'
        + b"<w:p/>" * (2 * 1024 * 1024)
        + b"</w:body></w:document>"
    )
    assert len(body) > textprint.MAX_DOCX_XML
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", body)
    assert len(out.getvalue()) < 200_000  # small on the wire
    assert textprint.extract(textprint.DOCX, out.getvalue()) == ""
