"""HL7 v2 message → facts: the envelope, character sets, syntax and content, good and bad."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from medarchive.capture.hl7 import samples
from medarchive.capture.hl7.errors import ERROR, REJECT, Hl7Error
from medarchive.capture.hl7.parse import parse, peek_header

PDF = samples.pdf(2000, seed="unit")


def local(iso: str) -> dt.datetime:
    """A time without an offset, as HL7 sends the hospital's local time."""
    return dt.datetime.fromisoformat(iso)


def refused(raw: bytes) -> Hl7Error:
    with pytest.raises(Hl7Error) as info:
        parse(raw)
    return info.value


def message(**fields: object) -> bytes:
    sample = samples.Sample(**fields)  # type: ignore[arg-type]
    if not sample.observations:
        sample.observations = [samples.ed(PDF)]
    return samples.encode(samples.build(sample), sample.charset)


# --- good messages ----------------------------------------------------------------------------------


def test_mdm_with_base64_pdf_gives_every_fact() -> None:
    m = parse(samples.mdm(PDF))
    h = m.header
    assert (h.message_type, h.trigger, h.control_id, h.version, h.codec) == ("MDM", "T02", "MSG00001", "2.5", "utf-8")
    assert (h.sending_application, h.sending_facility, h.source) == ("HIS", "XH_HOSP", "HIS^XH_HOSP")
    assert m.patient is not None and m.visit is not None
    assert (m.patient.id, m.patient.name, m.patient.birth_date, m.patient.gender) == (
        "P000123",
        "张三",
        dt.date(1980, 1, 1),
        "M",
    )
    assert (m.visit.patient_class, m.visit.visit_number, m.visit.location, m.visit.attending) == (
        "I",
        "ZY2025000123",
        "NK",
        "李四",
    )
    assert m.visit.admitted_at == local("2025-02-20T09:00")
    assert m.visit.discharged_at == local("2025-03-01T10:00")
    assert (m.document_type, m.document_title, m.document_number, m.document_status) == (
        "DS",
        "出院记录",
        "DOC-2025-000123",
        "AU",
    )
    assert m.document_at == local("2025-03-01T10:00")
    assert [(a.data, a.extension, a.set_id) for a in m.attachments] == [(PDF, "pdf", "1")]
    assert m.text == []


def test_gb18030_declared_in_msh18_keeps_chinese_names() -> None:
    raw = message(charset="GB 18030-2000", family_name="欧阳", given_name="娜娜", document_type="DS^出院小结")
    assert "欧阳".encode("gb18030") in raw
    m = parse(raw)
    assert m.header.codec == "gb18030"
    assert m.header.charset == "GB 18030-2000"
    assert m.patient is not None and m.patient.name == "欧阳娜娜"
    assert m.document_title == "出院小结"


def test_gb18030_without_msh18_is_detected() -> None:
    raw = samples.build(samples.Sample(charset="", family_name="诸葛", given_name="亮", observations=[samples.ed(PDF)]))
    m = parse(raw.encode("gb18030"))
    assert m.header.codec == "gb18030"
    assert m.patient is not None and m.patient.name == "诸葛亮"


@pytest.mark.parametrize("label", ["UTF-8", "UNICODE UTF-8", "utf8", "UNICODE"])
def test_utf8_spellings(label: str) -> None:
    assert parse(message(charset=label)).header.codec == "utf-8"


@pytest.mark.parametrize("label", ["GB18030", "GBK", "GB2312", "gb 18030-2005"])
def test_gb_spellings(label: str) -> None:
    raw = samples.build(samples.Sample(charset=label, observations=[samples.ed(PDF)])).encode("gb18030")
    m = parse(raw)
    assert m.header.codec == "gb18030"
    assert m.patient is not None and m.patient.name == "张三"


def test_lf_terminated_message_from_a_file_is_accepted() -> None:
    m = parse(samples.adt_a03().replace(b"\r", b"\n"))
    assert m.header.kind == "ADT^A03"
    assert m.visit is not None and m.visit.visit_number == "ZY2025000123"


def test_crlf_and_bom_and_trailing_blank_lines() -> None:
    m = parse(b"\xef\xbb\xbf" + samples.adt_a03().replace(b"\r", b"\r\n") + b"\r\n\r\n")
    assert m.header.control_id == "MSG00001"


def test_escape_sequences_including_hex_bytes_in_the_message_charset() -> None:
    report = r"血压 120\F\80 mmHg\.br\脉搏 \H\72\N\ 次/分\.br\a\S\b\R\c\E\d\T\e\Zvendor" + "\\"
    raw = message(family_name="\\XE5BCA0\\", given_name="\\XE4B889\\", observations=[samples.text(report)])
    m = parse(raw)
    assert m.patient is not None and m.patient.name == "张三"
    assert m.text == ["血压 120|80 mmHg\n脉搏 72 次/分\na^b~c\\d&e"]


def test_hex_escape_is_decoded_in_gb18030_when_the_message_is_gb18030() -> None:
    hex_name = "张".encode("gb18030").hex().upper()
    m = parse(message(charset="GB18030", family_name=f"\\X{hex_name}\\"))
    assert m.patient is not None and m.patient.name == "张三"


def test_western_names_are_joined_with_a_space() -> None:
    m = parse(message(family_name="Smith", given_name="John"))
    assert m.patient is not None and m.patient.name == "Smith John"


def test_patient_id_from_a_later_repetition_or_pid2() -> None:
    raw = message().replace(b"PID|1||P000123^^^XH_HOSP^PI|", b"PID|1||~P777^^^XH|")
    assert parse(raw).patient.id == "P777"  # type: ignore[union-attr]
    raw = message().replace(b"PID|1||P000123^^^XH_HOSP^PI|", b"PID|1|OLD42||")
    assert parse(raw).patient.id == "OLD42"  # type: ignore[union-attr]


def test_partial_birth_date_is_left_out_not_invented() -> None:
    m = parse(message(birth_date="1980"))
    assert m.patient is not None and m.patient.birth_date is None


def test_timestamps_with_offsets_and_fractions() -> None:
    m = parse(message(document_at="20250301103045.1234+0800", discharged_at="202503011030"))
    assert m.document_at == dt.datetime(2025, 3, 1, 10, 30, 45, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert m.visit is not None and m.visit.discharged_at == local("2025-03-01T10:30")


def test_document_type_code_only_is_named_from_table_0270() -> None:
    m = parse(message(document_type="OP"))
    assert (m.document_type, m.document_title) == ("OP", "手术记录")


def test_several_ed_documents_and_hex_and_ascii_encodings() -> None:
    hex_doc = f"ED|X||^AP^PDF^Hex^{PDF[:100].hex()}||||||F"
    ascii_doc = "ED|X||^TEXT^PLAIN^A^plain words||||||F"
    m = parse(message(observations=[samples.ed(PDF), hex_doc, ascii_doc, samples.ed(b"\xff\xd8\xff", subtype="JPEG")]))
    assert [(a.data, a.extension) for a in m.attachments] == [
        (PDF, "pdf"),
        (PDF[:100], "pdf"),
        (b"plain words", "txt"),
        (b"\xff\xd8\xff", "jpg"),
    ]


def test_base64_wrapped_with_escaped_line_breaks_and_missing_padding() -> None:
    data = base64.b64encode(b"%PDF-1.4 tiny").decode().rstrip("=")
    wrapped = data[:8] + "\\X0D0A\\" + data[8:]
    m = parse(message(observations=[f"ED|X||^AP^PDF^Base64^{wrapped}||||||F"]))
    assert m.attachments[0].data == b"%PDF-1.4 tiny"


def test_oru_text_and_structured_results_become_report_lines() -> None:
    m = parse(
        samples.oru(
            [],
            observations=[
                "NM|WBC^白细胞计数^LN||6.5|10*9/L|3.5-9.5|N|||F",
                "CE|BT^血型||A^A型||||||F",
                "ST|NOTE^备注||  two   spaces  ||||||F",
                "FT|CONCL^结论||第一行\\.br\\第二行||||||F",
                "NM|EMPTY^空||||||||F",
            ],
        )
    )
    assert m.header.kind == "ORU^R01"
    assert m.document_title == "血常规"
    assert m.text == ["白细胞计数: 6.5 10*9/L (3.5-9.5) [N]", "血型: A A型", "two spaces", "第一行\n第二行"]


def test_oru_with_several_requests_names_them_all() -> None:
    sample = samples.Sample(kind="ORU^R01^ORU_R01", observations=[samples.text("ok")])
    text = samples.build(sample).replace(
        "OBX|1|", "OBR|2|ORD2|F2|2345-7^血糖^LN|||20250301\rOBR|3|ORD3|F3|58410-2^血常规^LN|||20250301\rOBX|1|"
    )
    assert parse(text.encode()).document_title == "血常规 等 2 项"


def test_adt_a03_reads_the_visit_and_event_time() -> None:
    m = parse(samples.adt_a03(service="NK", location="W3^1^2", discharged_at=""))
    assert m.header.kind == "ADT^A03"
    assert m.visit is not None
    assert (m.visit.location, m.visit.service, m.visit.discharged_at) == ("W3", "NK", None)
    assert m.event_at == local("2025-03-01T10:30")
    assert m.attachments == [] and m.text == []


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5.1", "2.6", "2.7", "2.8", "2.9"])
def test_supported_versions(version: str) -> None:
    assert parse(message(version=version)).header.version == version


# --- rejected: envelope, syntax, character set (AR) -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "where", "words"),
    [
        (b"", "MSH", "empty message"),
        (b"   \r\n", "MSH", "empty message"),
        (b"PID|1||P1\r", "MSH", "does not start with an MSH"),
        (b"FHS|^~\\&|HIS\rMSH|^~\\&|HIS\r", "FHS", "batches"),
        (b"MSHA^~\\&|HIS\r", "MSH-1", "field separator"),
        (b"MSH|^~|HIS|H|A|B|20250301||MDM^T02|1|P|2.5\r", "MSH-2", "expected 4 characters"),
        (b"MSH|^~\\^|HIS|H|A|B|20250301||MDM^T02|1|P|2.5\r", "MSH-2", "differ"),
        (b"MSH|^~\\||HIS|H|A|B|20250301||MDM^T02|1|P|2.5\r", "MSH-2", "expected 4"),
        (b"MSH|^~a&|HIS|H|A|B|20250301||MDM^T02|1|P|2.5\r", "MSH-2", "punctuation"),
        (b"MSH|^~\\&|HIS|H|A|B|20250301||MDM^T02|1|P|2.5||||||UTF-16\r", "MSH-18", "not supported"),
    ],
)
def test_envelope_problems_are_rejected(raw: bytes, where: str, words: str) -> None:
    exc = refused(raw)
    assert exc.ack == REJECT
    assert str(exc.location) == where
    assert words in exc.message


def test_wrong_encoding_characters_name_the_usual_value() -> None:
    exc = refused(message().replace(b"MSH|^~\\&|", b"MSH|^~\\|"))
    assert exc.ack == REJECT and exc.code == 102
    assert "^~\\&" in exc.message
    assert exc.header is None or exc.header.control_id in {"", "MSG00001"}


def test_bytes_that_are_not_the_declared_charset_are_rejected() -> None:
    raw = message(charset="UNICODE UTF-8").replace("张".encode(), "张".encode("gb18030"))
    exc = refused(raw)
    assert exc.ack == REJECT
    assert "not valid UNICODE UTF-8" in exc.message
    assert exc.header is not None and exc.header.control_id == "MSG00001"  # the ACK can still name the message


def test_ascii_declared_but_chinese_sent_is_rejected() -> None:
    text = samples.build(samples.Sample(charset="ASCII", observations=[samples.ed(PDF)]))
    exc = refused(text.encode("utf-8"))
    assert exc.ack == REJECT and "ASCII" in exc.message


def test_undecodable_without_msh18_asks_for_a_declaration() -> None:
    raw = message(charset="").replace("张".encode(), b"\xff\xfe\xff")
    exc = refused(raw)
    assert exc.ack == REJECT
    assert "neither UTF-8 nor GB18030" in exc.message and "MSH-18" in exc.message


def test_bad_segment_is_rejected_with_its_number() -> None:
    exc = refused(message().replace(b"\rPID|", b"\rP?D|"))
    assert exc.ack == REJECT and exc.code == 100
    assert "segment 3" in exc.message


def test_wrapped_base64_lines_with_cr_are_bad_segments() -> None:
    data = base64.b64encode(PDF).decode()
    exc = refused(message(observations=[f"ED|X||^AP^PDF^Base64^{data[:76]}\r{data[76:]}||||||F"]))
    assert exc.ack == REJECT and "is not an HL7 segment" in exc.message


def test_control_characters_and_second_msh_are_rejected() -> None:
    assert "control character 0x00" in refused(message().replace(b"\rPID|1|", b"\rPID|1\x00|")).message
    two = message() + message()
    assert "more than one message" in refused(two).message


@pytest.mark.parametrize(
    ("kind", "version", "processing", "code", "where"),
    [
        ("ADT^A01^ADT_A01", "2.5", "P", 201, "MSH-9.2"),
        ("ORM^O01", "2.5", "P", 200, "MSH-9"),
        ("MDM^T01", "2.5", "P", 201, "MSH-9.2"),
        ("MDM^T02", "2.2", "P", 203, "MSH-12"),
        ("MDM^T02", "3.0", "P", 203, "MSH-12"),
        ("MDM^T02", "2.5", "T", 202, "MSH-11"),
        ("MDM^T02", "2.5", "D", 202, "MSH-11"),
    ],
)
def test_unsupported_type_version_and_processing_id(
    kind: str, version: str, processing: str, code: int, where: str
) -> None:
    exc = refused(message(kind=kind, version=version, processing_id=processing))
    assert (exc.ack, exc.code, str(exc.location)) == (REJECT, code, where)
    assert exc.header is not None and exc.header.control_id == "MSG00001"


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [("control_id", "", "MSH-10"), ("sending_application", "", "MSH-3"), ("version", "", "MSH-12")],
)
def test_missing_header_fields_are_rejected(field: str, value: str, where: str) -> None:
    exc = refused(message(**{field: value}))
    assert (exc.ack, exc.code, str(exc.location)) == (REJECT, 101, where)


def test_overlong_control_id_is_rejected() -> None:
    exc = refused(message(control_id="X" * 65))
    assert (exc.ack, exc.code) == (REJECT, 104)


# --- application errors: content (AE) ------------------------------------------------------------------


def test_missing_pid3_is_an_application_error_naming_the_field() -> None:
    exc = refused(message(patient_id=""))
    assert (exc.ack, exc.code, str(exc.location)) == (ERROR, 101, "PID-3")
    assert "PID-3" in exc.message
    assert exc.header is not None and exc.header.control_id == "MSG00001"


@pytest.mark.parametrize(("segment", "kind"), [("PID", "MDM^T02"), ("PV1", "MDM^T02"), ("TXA", "MDM^T02")])
def test_missing_required_segments(segment: str, kind: str) -> None:
    text = samples.build(samples.Sample(kind=kind, observations=[samples.ed(PDF)]))
    text = "\r".join(s for s in text.split("\r") if not s.startswith(segment))
    exc = refused(text.encode())
    assert (exc.ack, str(exc.location)) == (ERROR, segment)


def test_oru_without_obr_or_obx() -> None:
    text = samples.build(samples.Sample(kind="ORU^R01", observations=[samples.text("x")]))
    assert str(refused("\r".join(s for s in text.split("\r") if not s.startswith("OBR")).encode()).location) == "OBR"
    text = samples.build(samples.Sample(kind="ORU^R01"))
    exc = refused(text.encode())
    assert exc.ack == ERROR and "no OBX" in exc.message


@pytest.mark.parametrize(
    ("obx", "words"),
    [
        ("ED|X||^AP^PDF^Base64^||||||F", "empty document"),
        ("ED|X||^AP^PDF^Base64^====||||||F", "not valid base64"),
        ("ED|X||^AP^PDF^Base64^not*base64!||||||F", "not valid base64"),
        ("ED|X||^AP^PDF^Base64^QUJDR||||||F", "not valid base64"),
        ("ED|X||^AP^PDF^Hex^XYZ||||||F", "not valid hexadecimal"),
        ("ED|X||^AP^PDF^UUENCODE^abc||||||F", "OBX-5.4"),
        ("RP|X||\\\\server\\share\\a.pdf^HIS^AP^PDF||||||F", "reference (RP)"),
        ("ZZ|X||whatever||||||F", "value type 'ZZ'"),
        ("TX|X||||||||F", "empty document"),
    ],
)
def test_bad_documents_are_application_errors(obx: str, words: str) -> None:
    exc = refused(message(observations=[obx]))
    assert exc.ack == ERROR
    assert words in exc.message


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("document_at", "2025-03-01", "TXA-4"),
        ("document_at", "20251301", "TXA-4"),
        ("discharged_at", "20250230", "PV1-45"),
        ("birth_date", "19801332", "PID-7"),
        ("sent_at", "yesterday", "MSH-7"),
    ],
)
def test_bad_dates_name_their_field(field: str, value: str, where: str) -> None:
    exc = refused(message(**{field: value}))
    assert (exc.ack, exc.code, str(exc.location)) == (ERROR, 102, where)
    assert value in exc.message


def test_missing_document_type() -> None:
    exc = refused(message(document_type=""))
    assert (exc.ack, str(exc.location)) == (ERROR, "TXA-2")


# --- lenient header peeking, for the ACK of a message that does not parse ----------------------------------


def test_peek_header_reads_addressing_from_broken_bytes() -> None:
    h = peek_header(b"\x0bMSH|^~\\&|LIS|H2|RCV|F|2025||ORU^R01|CTRL9|P|2.4\rPID|\xff\xfe")
    assert h is not None
    assert (h.sending_application, h.control_id, h.trigger, h.version) == ("LIS", "CTRL9", "R01", "2.4")


@pytest.mark.parametrize("raw", [b"", b"garbage", b"MSH", b"MSH\n|^~|", b"MSHx^~\\&|", b"MSH|"])
def test_peek_header_gives_up_quietly(raw: bytes) -> None:
    h = peek_header(raw)
    assert h is None or h.control_id == ""
