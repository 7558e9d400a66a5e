"""ACK building: addressing, MSA/ERR content, escaping, character set; every ACK parses as HL7."""

from __future__ import annotations

import datetime as dt

import hl7
import pytest

from medarchive.capture.hl7 import ack, samples
from medarchive.capture.hl7.errors import ACCEPT, ERROR, REJECT, Hl7Error, Location
from medarchive.capture.hl7.parse import Header, parse

NOW = dt.datetime(2025, 3, 1, 10, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def header(**fields: str) -> Header:
    return parse(samples.adt_a03(**fields)).header  # type: ignore[arg-type]


def read(raw: bytes, codec: str = "utf-8") -> hl7.Message:
    text = raw.decode(codec)
    assert text.endswith("\r") and "\n" not in text
    return hl7.parse(text)


def test_accept_answers_the_sender_with_its_control_id() -> None:
    raw = ack.build(header(), ACCEPT, "received as Z001-2025-00000001 (accepted)", now=NOW, control_id="ACK1")
    m = read(raw)
    msh, msa = m.segment("MSH"), m.segment("MSA")
    assert str(msh[3]) == "MEDARCHIVE" and str(msh[4]) == "ARCHIVE"  # we are the receiving application
    assert str(msh[5]) == "HIS" and str(msh[6]) == "XH_HOSP"  # the sender becomes the receiver
    assert str(msh[7]) == "20250301103005+0800"
    assert str(msh[9]) == "ACK^A03^ACK"
    assert str(msh[10]) == "ACK1"
    assert str(msh[12]) == "2.5"
    assert str(msh[18]) == "UNICODE UTF-8"
    assert (str(msa[1]), str(msa[2]), str(msa[3])) == ("AA", "MSG00001", "received as Z001-2025-00000001 (accepted)")
    assert m.segments("MSA") and not any(str(s[0]) == "ERR" for s in m)


def test_error_carries_err_segment_for_old_and_new_receivers() -> None:
    problem = Hl7Error(ERROR, "PID-3 patient identifier is missing", location=Location("PID", 3), code=101)
    m = read(ack.build(header(), ERROR, problem.message, problem=problem, now=NOW))
    err = m.segment("ERR")
    assert str(m.segment("MSA")[1]) == "AE"
    assert str(m.segment("MSA")[3]) == "PID-3 patient identifier is missing"
    assert str(err[1]) == "PID^1^3^101&Required field missing&HL70357"  # ERR-1 (v2.3/2.4)
    assert str(err[2]) == "PID^1^3"  # ERR-2 error location (v2.5+)
    assert str(err[3]) == "101^Required field missing^HL70357"
    assert str(err[4]) == "E"
    assert str(err[8]) == "PID-3 patient identifier is missing"


def test_component_location_and_repeated_segment() -> None:
    problem = Hl7Error(ERROR, "bad", location=Location("OBX", 5, 5, sequence=3), code=102)
    err = read(ack.build(header(), ERROR, "bad", problem=problem, now=NOW)).segment("ERR")
    assert str(err[2]) == "OBX^3^5^1^5"


def test_reject_without_any_readable_header() -> None:
    problem = Hl7Error(REJECT, "MLLP frame without a start block (0x0B)", code=100)
    m = read(ack.build(None, REJECT, problem.message, problem=problem, now=NOW))
    assert str(m.segment("MSH")[3]) == "MEDARCHIVE"
    assert str(m.segment("MSH")[9]) == "ACK"
    assert str(m.segment("MSA")[1]) == "AR"
    assert str(m.segment("MSA")[2]) == ""
    assert str(m.segment("ERR")[3]) == "100^Segment sequence error^HL70357"


def test_text_with_delimiters_and_line_breaks_is_escaped() -> None:
    text = "a|b^c~d\\e&f\r\ng\x00h"
    assert ack.escape(text) == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f  g h"
    m = read(ack.build(Header(control_id="X|Y", sending_application="A^B"), ERROR, text, now=NOW))
    assert str(m.segment("MSH")[5]) == "A\\S\\B"
    assert len(m.segment("MSA")) == 4  # nothing broke out of MSA-3
    assert str(m.segment("MSA")[2]) == "X\\F\\Y"


def test_answer_is_in_the_message_charset() -> None:
    h = parse(samples.adt_a03(charset="GB 18030-2000")).header
    raw = ack.build(h, ERROR, "未知科室", now=NOW)
    assert "未知科室".encode("gb18030") in raw
    m = read(raw, "gb18030")
    assert str(m.segment("MSH")[18]) == "GB 18030-2000"
    assert str(m.segment("MSA")[3]) == "未知科室"


def test_unknown_version_falls_back_to_25() -> None:
    h = Header(version="9.9", control_id="C1", trigger="T02")
    assert str(read(ack.build(h, REJECT, "x", now=NOW)).segment("MSH")[12]) == "2.5"


@pytest.mark.parametrize("version", ["2.3", "2.4", "2.5.1", "2.7"])
def test_version_is_echoed(version: str) -> None:
    h = header(version=version)
    assert str(read(ack.build(h, ACCEPT, "ok", now=NOW)).segment("MSH")[12]) == version


def test_control_ids_are_unique_and_short() -> None:
    ids = {ack.next_control_id(NOW) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 20 for i in ids)
