"""FHIR JSON → capture drafts (pure): structure, our own rules, base64, transaction Bundles."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medarchive.capture.fhir import parse
from medarchive.capture.fhir.outcome import FhirError

TZ = ZoneInfo("Asia/Shanghai")
LIMIT = 100_000
PDF = b"%PDF-1.7\n" + "出院小结 discharge summary ".encode() * 40


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha1_b64(data: bytes) -> str:
    return b64(hashlib.sha1(data).digest())


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "masterIdentifier": {"system": "urn:oid:2.16.156.1", "value": "EMR-0001"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
        "subject": {"identifier": {"system": "urn:oid:2.16.156.2", "value": "P0001"}, "display": "张三"},
        "date": "2025-03-01T10:00:00+08:00",
        "context": {
            "period": {"start": "2025-02-20", "end": "2025-03-01"},
            "practiceSetting": {"coding": [{"system": "urn:medarchive:department", "code": "NK"}]},
        },
        "author": [{"display": "内科 王医生"}],
        "content": [{"attachment": {"contentType": "application/pdf", "data": b64(PDF), "title": "出院小结.pdf"}}],
    }
    doc.update(changes)
    return doc


def attachment(doc: dict[str, Any], index: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = doc["content"][index]["attachment"]
    return found


def parse_doc(doc: dict[str, Any], **kwargs: Any) -> parse.DocumentDraft:
    return parse.parse_document(doc, expression="DocumentReference", tz=TZ, limit=LIMIT, **kwargs)


def refused(doc: dict[str, Any], **kwargs: Any) -> FhirError:
    with pytest.raises(FhirError) as caught:
        parse_doc(doc, **kwargs)
    return caught.value


def issue_at(error: FhirError, expression: str) -> Any:
    found = [i for i in error.issues if i.expression == expression]
    assert found, f"no issue at {expression}: {[(i.expression, i.diagnostics) for i in error.issues]}"
    return found[0]


# --- JSON -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'{"resourceType": "DocumentReference",', "invalid JSON"),
        (b"[1, 2]", "not an array"),
        (b'"text"', "not a string"),
        (b'{"a": NaN}', "NaN"),
        ('{"a": "张三"}'.encode("gb18030"), "UTF-8"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_400(body: bytes, words: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse.load_json(body)
    assert caught.value.status == 400
    assert caught.value.issues[0].code == "structure"
    assert words.replace("not ", "") in caught.value.summary or words in caught.value.summary


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(FhirError) as caught:
        parse.load_json(b'{\n  "status": current\n}')
    assert "line 2 column 13" in caught.value.summary


def test_wrong_resource_type_is_400_naming_both() -> None:
    error = refused(document(resourceType="Patient"))
    assert error.status == 400
    assert issue_at(error, "DocumentReference.resourceType").code == "invalid"
    assert "'Patient'" in error.summary
    assert refused({"status": "current"}).issues[0].code == "required"


# --- base64 -----------------------------------------------------------------------------------------


def test_base64_is_decoded_strictly() -> None:
    assert parse.decode_base64(b64(b"abcd"), "x") == b"abcd"
    wrapped = "\n".join(b64(PDF)[i : i + 76] for i in range(0, len(b64(PDF)), 76))
    assert parse.decode_base64(wrapped, "x") == PDF  # MIME line breaks are allowed by base64Binary


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("YWJjZA", "Incorrect padding"),
        ("YWJjZA==YWJj", "Excess data after padding"),  # pydantic would silently keep only b"abcd"
        ("YWJj!A==", "Only base64 data"),
        ("-_-_", "Only base64 data"),  # the URL-safe alphabet is not base64Binary
        ("=YWJj", "Leading padding"),
        ("5byg5LiJ张", "ASCII"),
    ],
)
def test_bad_base64_is_400_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse.decode_base64(text, "DocumentReference.content[0].attachment.data")
    assert caught.value.status == 400
    assert reason in caught.value.summary
    assert caught.value.issues[0].expression == "DocumentReference.content[0].attachment.data"


def test_non_string_data_is_400() -> None:
    doc = document()
    attachment(doc)["data"] = 12
    error = refused(doc)
    assert error.status == 400 and "base64 string" in error.summary


# --- a good DocumentReference --------------------------------------------------------------------


def test_a_discharge_summary_maps_to_an_inpatient_record() -> None:
    draft = parse_doc(document())
    assert draft.class_code == "BA-ZY"  # LOINC 18842-5 through the ValueSet
    assert draft.department_code == "NK"
    assert draft.title == "出院小结"
    assert draft.date == dt.date(2025, 3, 1)
    assert draft.responsible == "内科 王医生"
    assert draft.security_level == "内部"
    assert draft.master_identifier == "urn:oid:2.16.156.1|EMR-0001"
    assert draft.metadata == {
        "patient_id": "P0001",
        "patient_name": "张三",
        "admission_date": "2025-02-20",
        "discharge_date": "2025-03-01",
        "document_type": "18842-5",
        "external_id": "urn:oid:2.16.156.1|EMR-0001",
    }
    [att] = draft.attachments
    assert att.content is not None
    assert att.content.data == PDF
    assert att.content.mime == "application/pdf"
    assert att.content.sha1 == hashlib.sha1(PDF).hexdigest()
    assert parse.file_name(att, 0, att.content.mime) == "出院小结.pdf"


def test_the_date_is_the_local_date_of_the_instant() -> None:
    assert parse_doc(document(date="2025-03-01T20:30:00Z")).date == dt.date(2025, 3, 2)


def test_declared_size_and_hash_that_match_are_accepted() -> None:
    doc = document()
    attachment(doc).update(size=len(PDF), hash=sha1_b64(PDF))
    [att] = parse_doc(doc).attachments
    assert att.declared_size == len(PDF)
    assert att.declared_sha1 == hashlib.sha1(PDF).hexdigest()


def test_a_contained_patient_supplies_identifier_name_gender_and_birth_date() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {"system": "urn:id-card", "value": "110101199001011234"},
            {"type": {"coding": [{"code": "MR"}]}, "value": "MR-778"},
        ],
        "name": [{"family": "李", "given": ["小", "红"]}],
        "gender": "female",
        "birthDate": "1990-01-01",
    }
    draft = parse_doc(document(contained=[patient], subject={"reference": "#p1"}))
    assert draft.metadata["patient_id"] == "MR-778"  # the medical record number wins
    assert draft.metadata["patient_name"] == "李小红"
    assert draft.metadata["gender"] == "女"
    assert draft.metadata["birth_date"] == "1990-01-01"


def test_a_patient_reference_names_the_patient_id() -> None:
    draft = parse_doc(document(subject={"reference": "Patient/P-42", "display": "王五"}))
    assert draft.metadata["patient_id"] == "P-42"
    draft = parse_doc(document(subject={"reference": "https://his.example/fhir/Patient/P-43/_history/2"}))
    assert draft.metadata["patient_id"] == "P-43"


def test_category_narrows_an_ambiguous_type_and_names_classes_without_loinc() -> None:
    lab = document(
        type={"coding": [{"system": "http://loinc.org", "code": "11502-2"}]},
        category=[{"coding": [{"system": "urn:medarchive:class", "code": "BA-MZ"}]}],
    )
    assert parse_doc(lab).class_code == "BA-MZ"
    assert parse_doc(document(type=None, category=lab["category"])).class_code == "BA-MZ"
    notice = document(
        type={"text": "会议纪要"}, category=[{"coding": [{"system": "urn:medarchive:class", "code": "WS"}]}]
    )
    del notice["subject"]
    draft = parse_doc(notice)
    assert draft.class_code == "WS" and draft.title == "会议纪要" and "patient_id" not in draft.metadata


def test_security_labels_map_to_the_secrecy_level() -> None:
    hl7 = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}
    ours = {"coding": [{"system": "urn:medarchive:security-level", "code": "机密"}]}
    assert parse_doc(document(securityLabel=[hl7])).security_level == "秘密"
    assert parse_doc(document(securityLabel=[hl7, ours])).security_level == "机密"


def test_department_may_come_from_an_author_identifier() -> None:
    doc = document(author=[{"identifier": {"system": "urn:medarchive:department", "value": "NK"}, "display": "内科"}])
    del doc["context"]["practiceSetting"]
    assert parse_doc(doc).department_code == "NK"
    del doc["author"]
    assert parse_doc(doc).department_code == ""  # the service falls back to the caller's department


def test_department_codes_are_listed_own_first_then_practice_setting_then_custodian() -> None:
    doc = document(
        contained=[
            {"resourceType": "Organization", "id": "o", "identifier": [{"system": "urn:oid:1.2", "value": "4401"}]}
        ],
        custodian={"reference": "#o", "identifier": {"system": "urn:oid:1.2", "value": "XH"}},
    )
    doc["context"]["practiceSetting"]["coding"].insert(0, {"system": "http://h/dept", "code": "0301"})
    draft = parse_doc(doc)
    assert draft.department_code == "NK"
    assert [(c.kind.value, c.system, c.key) for c in draft.department_codes] == [
        ("own", "urn:medarchive:department", "NK"),
        ("fhir-practice-setting", "http://h/dept", "0301"),
        ("fhir-organization", "urn:oid:1.2", "XH"),
        ("fhir-organization", "urn:oid:1.2", "4401"),
    ]
    assert draft.department_codes[3].where == "DocumentReference.custodian.reference#o.identifier"
    doc["custodian"] = {"reference": "#missing"}
    issue = refused(doc).issues[0]
    assert issue.expression == "DocumentReference.custodian.reference"


def test_a_binary_reference_is_kept_for_the_service() -> None:
    doc = document()
    attachment(doc).pop("data")
    attachment(doc)["url"] = "Binary/0b6a7c1e-6f0e-4a43-9d7b-3c0f8e1a2b3c"
    [att] = parse_doc(doc).attachments
    assert att.reference == "Binary/0b6a7c1e-6f0e-4a43-9d7b-3c0f8e1a2b3c" and att.content is None


def test_untitled_attachments_get_a_name_from_their_format() -> None:
    doc = document()
    attachment(doc).pop("title")
    [att] = parse_doc(doc).attachments
    assert parse.file_name(att, 0, "application/pdf") == "document-1.pdf"


# --- our own rules: 422 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expression", "code"),
    [
        ({"status": "final"}, "DocumentReference.status", "code-invalid"),
        ({"status": "entered-in-error"}, "DocumentReference.status", "business-rule"),
        ({"docStatus": "entered-in-error"}, "DocumentReference.docStatus", "business-rule"),
        ({"docStatus": "draft"}, "DocumentReference.docStatus", "code-invalid"),
        ({"date": None}, "DocumentReference.date", "required"),
        ({"subject": None}, "DocumentReference.subject", "required"),
        ({"content": []}, "DocumentReference.content", "required"),
        ({"type": {"coding": [{"system": "http://loinc.org", "code": "99999-9"}]}}, None, "code-invalid"),
        ({"type": None}, "DocumentReference.type", "required"),
        (
            {"category": [{"coding": [{"system": "urn:medarchive:class", "code": "BA-MZ"}]}]},
            "DocumentReference.category",
            "conflict",
        ),
        (
            {
                "category": [
                    {"coding": [{"system": "urn:medarchive:class", "code": "BA-ZY"}]},
                    {"coding": [{"system": "urn:medarchive:class", "code": "WS"}]},
                ]
            },
            "DocumentReference.category",
            "conflict",
        ),
        ({"subject": {"reference": "Group/1"}}, "DocumentReference.subject.reference", "not-supported"),
        ({"subject": {"reference": "#nobody"}}, "DocumentReference.subject.reference", "invalid"),
        ({"subject": {"type": "Device", "display": "x"}}, "DocumentReference.subject.type", "invalid"),
        (
            {"securityLabel": [{"coding": [{"system": "urn:medarchive:security-level", "code": "top"}]}]},
            "DocumentReference.securityLabel[0]",
            "code-invalid",
        ),
        (
            {"author": [{"identifier": {"system": "urn:medarchive:department", "value": "BGS"}}]},
            "DocumentReference.context.practiceSetting",
            "conflict",
        ),
    ],
)
def test_business_rules_are_422_naming_the_element(changes: dict[str, Any], expression: str | None, code: str) -> None:
    doc = document()
    for key, value in changes.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    error = refused(doc)
    assert error.status == 422
    issue = issue_at(error, expression) if expression else error.issues[0]
    assert issue.code == code, error.summary


@pytest.mark.parametrize(
    ("changes", "expression", "words"),
    [
        ({"contentType": None}, "contentType", "required"),
        ({"contentType": "image/png"}, "contentType", "PDF (application/pdf)"),
        ({"size": 10}, "size", "says 10 bytes"),
        ({"hash": sha1_b64(b"other")}, "hash", "not the SHA-1"),
        ({"hash": b64(b"short")}, "hash", "20 bytes"),
        ({"data": ""}, "data", "empty (0 bytes)"),
        ({"data": None}, "data", "neither data nor url"),
        ({"url": "Binary/abc"}, "", "not both"),
        ({"title": "../../etc/passwd"}, "title", ".."),  # the file name's own catalog message
    ],
)
def test_attachment_rules_are_422(changes: dict[str, Any], expression: str, words: str) -> None:
    doc = document()
    for key, value in changes.items():
        if value is None:
            attachment(doc).pop(key)
        else:
            attachment(doc)[key] = value
    error = refused(doc)
    assert error.status == 422
    where = "DocumentReference.content[0].attachment" + (f".{expression}" if expression else "")
    assert words in issue_at(error, where).diagnostics


def test_url_attachments_outside_binary_are_not_fetched() -> None:
    for url in ("https://emr.example/doc/1.pdf", "urn:uuid:9a1f0c4e-1111-4c3b-8f00-000000000001"):
        doc = document()
        attachment(doc).pop("data")
        attachment(doc)["url"] = url
        error = refused(doc)
        assert issue_at(error, "DocumentReference.content[0].attachment.url").code == "not-supported"


def test_text_formats_match_any_declared_text_type() -> None:
    doc = document()
    attachment(doc).update(
        contentType="text/plain; charset=utf-8", data=b64("病程记录,第一天\n".encode()), title="a.csv"
    )
    [att] = parse_doc(doc).attachments
    assert att.content is not None and att.content.mime == "text/csv"


def test_an_oversized_attachment_is_413() -> None:
    doc = document()
    attachment(doc)["data"] = b64(b"%PDF-1.7\n" + b"x" * LIMIT)
    error = refused(doc)
    assert error.status == 413 and error.issues[0].code == "too-long"


def test_all_problems_are_reported_together() -> None:
    doc = document(status="bogus", type={"coding": [{"system": "http://loinc.org", "code": "1-1"}]})
    doc.pop("date")
    attachment(doc)["contentType"] = "image/jpeg"
    error = refused(doc)
    assert {i.expression for i in error.issues} >= {
        "DocumentReference.status",
        "DocumentReference.date",
        "DocumentReference.type.coding[0].code",
        "DocumentReference.content[0].attachment.contentType",
    }


# --- fhir.resources structure: 400 ---------------------------------------------------------------


def test_structure_errors_from_fhir_resources_are_400_with_paths() -> None:
    doc = document(unknownElement=1)
    attachment(doc)["size"] = "big"
    error = refused(doc)
    assert error.status == 400
    assert issue_at(error, "DocumentReference.unknownElement").code == "structure"
    assert issue_at(error, "DocumentReference.content[0].attachment.size").code == "structure"
    assert "input_value" not in error.summary and "张三" not in error.summary  # no patient data echoed


def test_a_contained_resource_of_an_unknown_type_is_400() -> None:
    error = refused(document(contained=[{"resourceType": "Nonsense", "id": "x"}]))
    assert error.status == 400


def test_an_instant_without_time_zone_is_400() -> None:
    error = refused(document(date="2025-03-01"))
    assert error.status == 400 and issue_at(error, "DocumentReference.date").code == "structure"


# --- Binary ------------------------------------------------------------------------------------


def test_a_binary_resource_decodes_and_identifies_its_content() -> None:
    binary = parse.parse_binary(
        {"resourceType": "Binary", "contentType": "application/pdf", "data": b64(PDF)}, expression="Binary", limit=LIMIT
    )
    assert binary.content.data == PDF and binary.content.mime == "application/pdf"


@pytest.mark.parametrize(
    ("raw", "status", "expression"),
    [
        ({"resourceType": "Binary", "data": b64(PDF)}, 400, "Binary.contentType"),
        ({"resourceType": "Binary", "contentType": "application/pdf"}, 422, "Binary.data"),
        ({"resourceType": "Binary", "contentType": "application/pdf", "data": ""}, 422, "Binary.data"),
        ({"resourceType": "Binary", "contentType": "image/jpeg", "data": b64(PDF)}, 422, "Binary.contentType"),
        ({"resourceType": "Binary", "contentType": "application/pdf", "data": "%%%"}, 400, "Binary.data"),
        ({"resourceType": "DocumentReference"}, 400, "Binary.resourceType"),
    ],
)
def test_bad_binaries_are_refused(raw: dict[str, Any], status: int, expression: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse.parse_binary(raw, expression="Binary", limit=LIMIT)
    assert caught.value.status == status
    assert expression in {i.expression for i in caught.value.issues}, caught.value.summary


# --- transaction Bundles ---------------------------------------------------------------------------

BINARY_URL = "urn:uuid:6a3f2f59-3a7e-4b7b-9d55-0a0d5f1b2c01"


def transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def binary_entry(data: bytes = PDF, url: str = BINARY_URL, content_type: str = "application/pdf") -> dict[str, Any]:
    return {
        "fullUrl": url,
        "resource": {"resourceType": "Binary", "contentType": content_type, "data": b64(data)},
        "request": {"method": "POST", "url": "Binary"},
    }


def document_entry(url: str = BINARY_URL, **changes: Any) -> dict[str, Any]:
    doc = document(**changes)
    attachment(doc).pop("data")
    attachment(doc)["url"] = url
    return {"resource": doc, "request": {"method": "POST", "url": "DocumentReference"}}


def parse_tx(bundle: dict[str, Any]) -> parse.Transaction:
    return parse.parse_transaction(bundle, tz=TZ, limit=LIMIT)


def tx_refused(bundle: dict[str, Any]) -> FhirError:
    with pytest.raises(FhirError) as caught:
        parse_tx(bundle)
    return caught.value


def test_a_transaction_resolves_urn_uuid_references_to_binary_entries() -> None:
    entry = document_entry()
    entry["request"]["ifNoneExist"] = "identifier=urn:oid:2.16.156.1|EMR-0001"
    tx = parse_tx(transaction(binary_entry(), entry))
    [doc] = tx.documents
    [att] = doc.attachments
    assert att.content is not None and att.content.data == PDF
    assert att.entry_url == BINARY_URL and att.reference == ""
    assert doc.entry == 1 and tx.binaries[0].entry == 0
    assert doc.condition == "urn:oid:2.16.156.1|EMR-0001"


@pytest.mark.parametrize("kind", ["batch", "document", "collection", "message", None])
def test_only_transaction_bundles_are_accepted(kind: str | None) -> None:
    error = tx_refused(transaction(binary_entry(), document_entry(), kind=kind))  # type: ignore[arg-type]
    assert error.status == 422
    assert issue_at(error, "Bundle.type").code == "not-supported"


def test_posting_something_else_to_the_base_is_400() -> None:
    error = tx_refused(document())
    assert error.status == 400 and "transaction Bundle" in error.summary


@pytest.mark.parametrize(
    ("bundle", "status", "expression", "code"),
    [
        (transaction(), 422, "Bundle.entry", "required"),
        (transaction(binary_entry()), 422, "Bundle.entry", "required"),
        (
            transaction(binary_entry(), document_entry(url="urn:uuid:ffffffff-0000-4000-8000-000000000000")),
            422,
            "Bundle.entry[1].resource.content[0].attachment.url",
            "invalid",
        ),
        (
            transaction(
                binary_entry(), binary_entry(url="urn:uuid:ffffffff-0000-4000-8000-000000000001"), document_entry()
            ),
            422,
            "Bundle.entry[1].resource",
            "business-rule",
        ),
        (transaction(binary_entry(), binary_entry(), document_entry()), 400, "Bundle.entry[1].fullUrl", "invalid"),
        (transaction(binary_entry(url="Binary/1"), document_entry()), 400, "Bundle.entry[0].fullUrl", "required"),
        (
            transaction({"fullUrl": BINARY_URL, "request": {"method": "POST", "url": "Binary"}}, document_entry()),
            400,
            "Bundle.entry[0].resource",
            "required",
        ),
        (
            transaction({**binary_entry(), "request": {"method": "PUT", "url": "Binary/1"}}, document_entry()),
            422,
            "Bundle.entry[0].request",
            "not-supported",
        ),
        (
            transaction(binary_entry(), {**document_entry(), "request": None}),
            400,
            "Bundle.entry[1].request",
            "required",
        ),
        (
            transaction({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}),
            422,
            "Bundle.entry[0].resource",
            "not-supported",
        ),
        (transaction(binary_entry(data=b""), document_entry()), 422, "Bundle.entry[0].resource.data", "required"),
        (
            transaction(binary_entry(content_type="image/png"), document_entry()),
            422,
            "Bundle.entry[0].resource.contentType",
            "value",
        ),
    ],
)
def test_bad_transactions_name_the_entry(bundle: dict[str, Any], status: int, expression: str, code: str) -> None:
    if bundle["entry"] and bundle["entry"][-1].get("request", 1) is None:
        del bundle["entry"][-1]["request"]
    error = tx_refused(bundle)
    assert error.status == status, error.summary
    assert issue_at(error, expression).code == code


def test_every_bad_entry_is_reported() -> None:
    bad_doc = document_entry(status="superseded-ish")
    error = tx_refused(transaction(binary_entry(data=b""), bad_doc))
    assert {"Bundle.entry[0].resource.data", "Bundle.entry[1].resource.status"} <= {i.expression for i in error.issues}


def test_a_document_contenttype_must_match_its_binary_entry() -> None:
    entry = document_entry()
    attachment(entry["resource"])["contentType"] = "image/tiff"
    error = tx_refused(transaction(binary_entry(), entry))
    assert issue_at(error, "Bundle.entry[1].resource.content[0].attachment.contentType").code == "value"


def test_if_none_exist_takes_identifier_only() -> None:
    entry = document_entry()
    entry["request"]["ifNoneExist"] = "patient=P1"
    error = tx_refused(transaction(binary_entry(), entry))
    assert issue_at(error, "Bundle.entry[1].request.ifNoneExist").code == "not-supported"


def test_too_many_entries_are_refused_before_parsing_them() -> None:
    error = tx_refused(transaction(*[document_entry()] * (parse.MAX_ENTRIES + 1)))
    assert error.issues[0].code == "too-costly"


# --- anything at all: a FhirError or a draft, never a crash ----------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_fields = st.sampled_from(
    [
        "status",
        "date",
        "subject",
        "content",
        "type",
        "category",
        "securityLabel",
        "context",
        "author",
        "masterIdentifier",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=_fields, value=_json)
def test_any_value_in_any_element_gives_an_outcome_not_a_crash(field: str, value: Any) -> None:
    doc = copy.deepcopy(document())
    doc[field] = value
    try:
        parse_doc(doc)
    except FhirError as exc:
        assert 400 <= exc.status < 500 and exc.issues


@settings(max_examples=200, deadline=None)
@given(value=_json)
def test_any_json_posted_as_a_transaction_gives_an_outcome(value: Any) -> None:
    try:
        body = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": value}).encode()
        parse_tx(parse.load_json(body))
    except FhirError as exc:
        assert 400 <= exc.status < 500 and exc.issues


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40))
def test_any_text_as_attachment_data_gives_an_outcome(text: str) -> None:
    doc = document()
    attachment(doc)["data"] = text
    try:
        parse_doc(doc)
    except FhirError as exc:
        assert exc.status in {400, 413, 422}


@pytest.mark.parametrize("depth", [70, 5000])
def test_json_nested_too_deep_is_a_400_not_a_crash(depth: int) -> None:
    body = ('{"resourceType": "DocumentReference", "x": ' + "[" * depth + "]" * depth + "}").encode()
    with pytest.raises(FhirError) as caught:
        parse.load_json(body)
    assert caught.value.status == 400 and "nested" in str(caught.value.issues[0].diagnostics)
