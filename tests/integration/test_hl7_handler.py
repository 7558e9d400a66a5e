"""HL7 messages through the handler into the real archive: records, duties, refusals, nothing half-written."""

from __future__ import annotations

import logging
from typing import Any

import hl7
import pytest

from medarchive.archiving.models import Record
from medarchive.capture.duties.models import Obligation
from medarchive.capture.hl7 import samples
from medarchive.capture.hl7.framing import Broken
from medarchive.capture.hl7.handler import Handler
from medarchive.capture.models import Channel, IdempotencyKey, Submission
from medarchive.core.services import add_department
from medarchive.preservation.models import Blob
from medarchive.preservation.services import open_blob
from medarchive.security.models import AuditEntry
from medarchive.security.services import add_user

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-42"
PDF = samples.pdf(20 * 1024, seed="integration")


@pytest.fixture
def his(archive: Any) -> Any:
    return add_user("his", actor=None, role="interface", password=PASSWORD)


@pytest.fixture
def handle(his: Any) -> Handler:
    return Handler(user_id=his.pk)


def answer(handler: Handler, raw: bytes, codec: str = "utf-8") -> tuple[str, str, hl7.Message]:
    text = handler(raw, "127.0.0.1:5000").decode(codec)
    ack = hl7.parse(text)
    msa = ack.segment("MSA")
    return str(msa[1]), ack.unescape(str(msa[3])) if len(msa) > 3 else "", ack


def nothing_left_behind(before: dict[str, int]) -> None:
    assert counts() == before


def counts() -> dict[str, int]:
    return {"records": Record.objects.count(), "blobs": Blob.objects.count(), "keys": IdempotencyKey.objects.count()}


# --- MDM ---------------------------------------------------------------------------------------------------


def test_mdm_becomes_an_accepted_inpatient_record(handle: Handler, his: Any) -> None:
    code, text, ack = answer(handle, samples.mdm(PDF))
    assert code == "AA"
    record = Record.objects.get()
    assert text == f"received as {record.electronic_no} (accepted)"
    assert str(ack.segment("MSA")[2]) == "MSG00001"
    assert record.archive_class.code == "BA-ZY"
    assert record.department.code == "NK"
    assert record.created_by == his
    assert record.title == "出院记录"  # the visit number is metadata (masked), never in the title
    assert record.date.isoformat() == "2025-03-01"
    assert {k: record.metadata[k] for k in record.metadata if k != "original_filenames"} == {
        "patient_id": "P000123",
        "patient_name": "张三",
        "birth_date": "1980-01-01",
        "gender": "男",
        "visit_number": "ZY2025000123",
        "attending_physician": "李四",
        "admission_date": "2025-02-20",
        "discharge_date": "2025-03-01",
        "message_control_id": "MSG00001",
        "source_system": "HIS",
        "hl7_message_type": "MDM^T02",
        "document_type": "DS 出院记录",
        "external_id": "DOC-2025-000123",
        "document_status": "AU",
    }
    (component,) = record.components.all()
    assert (component.filename, component.mime_type, component.size) == ("出院记录.pdf", "application/pdf", len(PDF))
    assert b"".join(open_blob(component.blob)) == PDF
    submission = Submission.objects.get()
    assert (submission.channel, submission.source, submission.key) == (
        Channel.HL7,
        "HIS^XH_HOSP",
        "hl7:HIS^XH_HOSP:MSG00001",
    )
    key = IdempotencyKey.objects.get()
    assert key.key == "hl7:HIS^XH_HOSP:MSG00001" and len(key.digest) == 64


def test_gb18030_message_keeps_the_chinese_name_and_answers_in_gb18030(handle: Handler) -> None:
    raw = samples.mdm(PDF, charset="GB 18030-2000", family_name="欧阳", given_name="娜娜", document_type="DS^出院小结")
    code, _, ack = answer(handle, raw, "gb18030")
    assert code == "AA"
    assert str(ack.segment("MSH")[18]) == "GB 18030-2000"
    record = Record.objects.get()
    assert record.metadata["patient_name"] == "欧阳娜娜"
    assert record.title.startswith("出院小结")


def test_outpatient_goes_to_ba_mz_and_keeps_the_visit_date(handle: Handler) -> None:
    assert answer(handle, samples.mdm(PDF, patient_class="O", visit_number="MZ01"))[0] == "AA"
    record = Record.objects.get()
    assert record.archive_class.code == "BA-MZ"
    assert record.title == "出院记录"
    assert record.metadata["visit_date"] == "2025-02-20"
    assert "admission_date" not in record.metadata and "discharge_date" not in record.metadata


def test_a_retransmission_is_answered_as_a_duplicate_and_not_ingested_twice(handle: Handler) -> None:
    first = answer(handle, samples.mdm(PDF))
    before = counts()
    code, text, _ = answer(handle, samples.mdm(PDF))
    record = Record.objects.get()
    assert first[0] == code == "AA"
    assert text == f"duplicate MSH-10 MSG00001: already received as {record.electronic_no}; not archived again"
    nothing_left_behind(before)


def test_a_reused_control_id_with_other_content_is_refused_naming_it_never_acknowledged(handle: Handler) -> None:
    # A sender whose control-ID counter restarted: MSG00001 again, but a new document.
    answer(handle, samples.mdm(PDF))
    record = Record.objects.get()
    before = counts()
    code, text, ack = answer(handle, samples.mdm(samples.pdf(seed="other content")))
    assert code == "AE"
    assert text == (
        f"MSH-10 MSG00001 from HIS^XH_HOSP was already used for record {record.electronic_no} with other content; "
        "not archived: send this document with a new control ID"
    )
    err = ack.segment("ERR")
    assert str(err[2]) == "MSH^1^10" and str(err[3]).startswith("205^Duplicate key identifier")
    nothing_left_behind(before)
    # The same new document under a new control ID is archived; its retransmission is a duplicate.
    assert answer(handle, samples.mdm(samples.pdf(seed="other content"), control_id="MSG00002"))[0] == "AA"
    assert Record.objects.count() == 2


def test_the_same_document_with_other_metadata_under_a_reused_control_id_is_refused(handle: Handler) -> None:
    answer(handle, samples.mdm(PDF))
    code, text, _ = answer(handle, samples.mdm(PDF, patient_id="P000999"))
    assert code == "AE" and "already used for record" in text
    assert Record.objects.count() == 1


def test_the_same_control_id_from_another_facility_is_another_message(handle: Handler) -> None:
    answer(handle, samples.mdm(PDF))
    code, _, _ = answer(handle, samples.mdm(samples.pdf(seed="branch"), sending_facility="XH_BRANCH"))
    assert code == "AA" and Record.objects.count() == 2


def test_a_retry_of_a_message_keyed_before_the_facility_was_part_of_the_key_is_a_duplicate(
    handle: Handler, his: Any
) -> None:
    answer(handle, samples.mdm(PDF))
    key = IdempotencyKey.objects.get()
    IdempotencyKey.objects.filter(pk=key.pk).update(key="hl7:HIS:MSG00001", digest="")  # as archived before
    before = counts()
    code, text, _ = answer(handle, samples.mdm(PDF))
    assert code == "AA" and text.startswith("duplicate MSH-10 MSG00001")
    nothing_left_behind(before)
    assert answer(handle, samples.mdm(samples.pdf(seed="new")))[0] == "AE"  # other files: refused as before


def test_same_control_id_from_another_sending_application_is_another_message(handle: Handler) -> None:
    answer(handle, samples.mdm(PDF))
    assert answer(handle, samples.mdm(samples.pdf(seed="lis"), sending_application="EMR"))[0] == "AA"
    assert Record.objects.count() == 2


def test_department_from_pv1_10_when_pv1_3_is_a_ward(handle: Handler) -> None:
    assert answer(handle, samples.mdm(PDF, location="W3^301^2", service="NK"))[0] == "AA"
    assert Record.objects.get().department.code == "NK"


def test_unknown_department_is_an_application_error_naming_the_field(handle: Handler) -> None:
    before = counts()
    code, text, ack = answer(handle, samples.mdm(PDF, location="ICU9^1^1", service="CARD"))
    assert code == "AE"
    assert text.startswith('unknown department: PV1-3.1 "ICU9"; PV1-10 "CARD"; MSH-4 "XH_HOSP" map to no department')
    assert "medarchive department alias add" in text
    assert str(ack.segment("ERR")[2]) == "PV1^1^3^1^1"
    assert str(ack.segment("ERR")[3]).startswith("103^")
    nothing_left_behind(before)


def test_inactive_department_is_unknown(handle: Handler) -> None:
    from medarchive.core.models import Department

    add_department("EK", "儿科", actor=None)
    Department.objects.filter(code="EK").update(active=False)
    from medarchive.core import refcache

    refcache.clear()
    assert answer(handle, samples.mdm(PDF, location="EK"))[0] == "AE"


@pytest.mark.parametrize(
    ("fields", "words", "where"),
    [
        ({"patient_id": ""}, "PID-3 patient identifier is missing", "PID^1^3"),
        ({"observations": ["ED|X||^AP^PDF^Base64^%%%||||||F"]}, "not valid base64", "OBX^1^5^1^5"),
        ({"observations": ["ED|X||^AP^PDF^Base64^||||||F"]}, "empty document", "OBX^1^5^1^5"),
        ({"observations": ["RP|X||doc123^HIS^AP^PDF||||||F"]}, "reference (RP)", "OBX^1^5"),
        ({"location": "", "service": ""}, "department missing", "PV1^1^10"),
        ({"patient_id": "P" * 65}, "PID-3 is longer than 64 characters", "PID^1^3"),
        ({"document_at": "20991231"}, "2099-12-31", "TXA^1^4"),
    ],
)
def test_content_errors_are_ae_and_leave_nothing(
    handle: Handler, fields: dict[str, Any], words: str, where: str
) -> None:
    before = counts()
    code, text, ack = answer(handle, samples.mdm(PDF, **fields))
    assert code == "AE"
    assert words in text
    assert str(ack.segment("ERR")[2]) == where
    nothing_left_behind(before)


def test_a_fixed_resend_with_the_same_control_id_is_archived(handle: Handler) -> None:
    assert answer(handle, samples.mdm(PDF, location="XX"))[0] == "AE"
    assert answer(handle, samples.mdm(PDF))[0] == "AA"
    assert Record.objects.count() == 1


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: samples.mdm(PDF, kind="ADT^A01^ADT_A01"), "trigger event ADT^A01 is not supported"),
        (lambda: samples.mdm(PDF, version="2.1"), "HL7 version '2.1' is not supported"),
        (lambda: samples.mdm(PDF).replace(b"MSH|^~\\&|", b"MSH|^~\\|"), "MSH-2 encoding characters"),
        (lambda: samples.mdm(PDF).replace("张".encode(), b"\xff\xff"), "not valid UNICODE UTF-8"),
        (lambda: b"not hl7 at all", "does not start with an MSH segment"),
    ],
    ids=["type", "version", "msh2", "charset", "garbage"],
)
def test_rejections_are_ar_and_leave_nothing(handle: Handler, make: Any, words: str) -> None:
    raw = make()
    before = counts()
    code, text, _ = answer(handle, raw)
    assert code == "AR"
    assert words in text
    nothing_left_behind(before)


def test_quality_findings_are_reported_but_the_message_is_accepted(handle: Handler) -> None:
    answer(handle, samples.mdm(PDF))
    code, text, _ = answer(handle, samples.mdm(PDF, control_id="MSG00002"))  # same bytes again
    assert code == "AA"
    record = Record.objects.order_by("-electronic_no").first()
    assert record is not None
    assert text == f"received as {record.electronic_no} (in review): 1 error(s), 0 warning(s) at the door"


# --- ORU -----------------------------------------------------------------------------------------------------


def test_text_only_oru_is_stored_as_a_utf8_text_file(handle: Handler) -> None:
    raw = samples.oru(
        [],
        patient_class="O",
        visit_number="MZ2025",
        observations=["NM|WBC^白细胞计数^LN||6.5|10*9/L|3.5-9.5|N|||F", "TX|C^结论||未见异常||||||F"],
    )
    assert answer(handle, raw)[0] == "AA"
    record = Record.objects.get()
    assert record.archive_class.code == "BA-MZ"
    assert record.title == "血常规"
    (component,) = record.components.all()
    assert (component.filename, component.mime_type) == ("血常规.txt", "text/plain")
    text = b"".join(open_blob(component.blob)).decode("utf-8")
    assert text == (
        "血常规\n患者标识: P000123\n就诊号: MZ2025\n报告时间: 2025-03-01 10:00\n"
        "来源: HIS^XH_HOSP ORU^R01 MSG00001\n\n白细胞计数: 6.5 10*9/L (3.5-9.5) [N]\n未见异常\n"
    )
    assert "张三" not in text


def test_oru_with_a_pdf_and_text_keeps_both(handle: Handler) -> None:
    raw = samples.oru([], observations=[samples.ed(PDF), samples.text("影像所见：未见异常")])
    assert answer(handle, raw)[0] == "AA"
    names = sorted(Record.objects.get().components.values_list("filename", "mime_type"))
    assert names == [("血常规-报告文本.txt", "text/plain"), ("血常规.pdf", "application/pdf")]


def test_oru_without_pv1_cannot_be_routed(handle: Handler) -> None:
    text = samples.build(samples.Sample(kind="ORU^R01^ORU_R01", observations=[samples.text("x")]))
    text = "\r".join(s for s in text.split("\r") if not s.startswith("PV1"))
    code, message, _ = answer(handle, text.encode())
    assert code == "AE" and "department missing" in message


# --- ADT^A03 ---------------------------------------------------------------------------------------------------


def test_discharge_opens_the_duty_and_a_later_record_fulfils_it(handle: Handler) -> None:
    code, text, _ = answer(handle, samples.adt_a03(visit_number="ZY9", discharged_at="20250310080000"))
    assert code == "AA"
    assert text == "discharge recorded for 住院号 ZY9: record due by 2025-03-17"
    assert Record.objects.count() == 0
    obligation = Obligation.objects.get()
    assert (obligation.subject_key, obligation.subject_label, obligation.department.code) == ("ZY9", "住院号 ZY9", "NK")
    assert obligation.occurred_on.isoformat() == "2025-03-10"
    assert obligation.source == "HIS^XH_HOSP ADT^A03 MSG00001"
    assert obligation.fulfilled_at is None
    assert answer(handle, samples.mdm(PDF, visit_number="ZY9", control_id="DOC9"))[0] == "AA"
    obligation.refresh_from_db()
    assert obligation.fulfilled_at is not None


def test_repeated_discharge_opens_no_second_duty(handle: Handler) -> None:
    answer(handle, samples.adt_a03(visit_number="ZY9"))
    code, text, _ = answer(handle, samples.adt_a03(visit_number="ZY9", control_id="MSG00002"))
    assert code == "AA" and "record due by" in text
    assert Obligation.objects.count() == 1


def test_discharge_after_the_record_is_already_met(handle: Handler) -> None:
    answer(handle, samples.mdm(PDF, visit_number="ZY7"))
    code, text, _ = answer(handle, samples.adt_a03(visit_number="ZY7", control_id="A7"))
    assert code == "AA"
    assert text == "discharge recorded for 住院号 ZY7: duty already met by a received record"


def test_discharge_time_falls_back_to_evn(handle: Handler) -> None:
    answer(handle, samples.adt_a03(discharged_at="", sent_at="20250305120000"))
    assert Obligation.objects.get().occurred_on.isoformat() == "2025-03-05"


def test_outpatient_visit_end_starts_no_duty(handle: Handler) -> None:
    code, text, _ = answer(handle, samples.adt_a03(patient_class="O", visit_number="MZ1"))
    assert code == "AA"
    assert text == "visit end recorded for 就诊号 MZ1: patient class is not inpatient, no duty started"
    assert Obligation.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"visit_number": ""}, "PV1-19 visit number is missing"),
        ({"patient_class": ""}, "PV1-2 patient class is missing"),
        ({"location": "XX"}, "unknown department"),
    ],
)
def test_bad_discharges_are_ae(handle: Handler, fields: dict[str, Any], words: str) -> None:
    code, text, _ = answer(handle, samples.adt_a03(**fields))
    assert code == "AE" and words in text
    assert Obligation.objects.count() == 0


# --- accounts, errors, logs ---------------------------------------------------------------------------------


def test_disabled_interface_account_archives_nothing(handle: Handler, his: Any) -> None:
    his.is_active = False
    his.save()
    code, text, _ = answer(handle, samples.mdm(PDF))
    assert code == "AE" and "disabled" in text
    assert Record.objects.count() == 0


def test_account_without_rights_is_refused_and_audited(users: dict[str, Any]) -> None:
    handler = Handler(user_id=users["officer"].pk)  # BGS officer sending for NK
    code, text, _ = answer(handler, samples.mdm(PDF))
    assert code == "AE"
    assert text in {"您无权登记档案。", "You may not capture records."}  # the refusal's catalog message
    assert Record.objects.count() == 0
    assert AuditEntry.objects.filter(result="denied").exists()


def test_internal_error_is_ae_and_the_retry_succeeds(handle: Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    from medarchive.capture.hl7 import handler as module

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(module, "receive", broken)
    code, text, _ = answer(handle, samples.mdm(PDF))
    assert code == "AE" and "internal error" in text
    monkeypatch.undo()
    assert answer(handle, samples.mdm(PDF))[0] == "AA"


def test_broken_frame_answer_names_the_message_when_its_header_is_readable(handle: Handler) -> None:
    raw = handle.reject(Broken("truncated MLLP frame: x", samples.mdm(PDF)[:200]), "127.0.0.1:1")
    ack = hl7.parse(raw.decode())
    assert str(ack.segment("MSA")[1]) == "AR"
    assert str(ack.segment("MSA")[2]) == "MSG00001"
    assert str(ack.segment("MSH")[5]) == "HIS"


def test_refusals_are_logged_without_patient_names(handle: Handler, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="medarchive.capture.hl7")
    answer(handle, samples.mdm(PDF, location="XX", family_name="司马", given_name="懿"))
    answer(handle, samples.mdm(PDF, patient_id=""))
    answer(handle, samples.mdm(PDF, family_name="司马" * 60, given_name="懿", control_id="LONG"))
    answer(handle, samples.mdm(PDF, version="9"))
    refusals = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refusals) == 4
    assert "AE at PV1-3.1: unknown department" in refusals[0]
    assert "PID-5 is longer than 100 characters" in refusals[2]
    assert all("司马" not in line and "懿" not in line for line in caplog.messages)


def test_visit_numbers_stay_out_of_titles_and_logs(handle: Handler, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="medarchive.capture.hl7")
    assert answer(handle, samples.mdm(PDF, visit_number="ZY2025000777"))[0] == "AA"
    lab = samples.oru(["结论：未见异常"], visit_number="ZY2025000777", control_id="LAB7")
    assert answer(handle, lab)[0] == "AA"
    code, text, _ = answer(handle, samples.adt_a03(visit_number="ZY2025000777", control_id="ADT7"))
    assert (code, text) == ("AA", "discharge recorded for 住院号 ZY2025000777: duty already met by a received record")
    code, text, _ = answer(handle, samples.adt_a03(patient_class="O", visit_number="MZ2025000778", control_id="ADT8"))
    assert code == "AA" and "就诊号 MZ2025000778" in text  # the sender gets its own number back in the ACK
    assert sorted(Record.objects.values_list("title", flat=True)) == ["出院记录", "血常规"]
    assert any("ADT7 AA discharge recorded: duty already met" in line for line in caplog.messages)
    assert any("ADT8 AA visit end recorded: patient class is not inpatient" in line for line in caplog.messages)
    assert not [line for line in caplog.messages if "ZY2025000777" in line or "MZ2025000778" in line]


def test_refusal_reasons_never_quote_the_visit_number() -> None:
    from medarchive.capture.hl7.handler import _redact
    from medarchive.capture.hl7.parse import parse

    message = parse(samples.mdm(PDF, visit_number="ZY2025000888", patient_id="P000888"))
    assert _redact("visit ZY2025000888 of P000888 is wrong", message) == "visit *** of *** is wrong"


def test_oru_values_too_long_name_the_obr_field(handle: Handler) -> None:
    text = samples.build(samples.Sample(kind="ORU^R01^ORU_R01", observations=[samples.text("x")]))
    text = text.replace("58410-2^血常规^LN", "58410-2^" + "血常规" * 40 + "^LN")
    code, message, ack = answer(handle, text.encode())
    assert code == "AE"
    assert message == "OBR-4 is longer than 100 characters"
    assert str(ack.segment("ERR")[2]) == "OBR^1^4"
