"""The FHIR R4 endpoint through Django's test client: real database, real encrypted store.

Capture (DocumentReference, Binary, transaction Bundles), read-back (read, search, Binary),
authentication, and every refusal answered as an OperationOutcome with nothing left behind.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import secrets
from typing import Any

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.operationoutcome import OperationOutcome

from medarchive.archiving.models import Component, Record
from medarchive.capture import intake
from medarchive.capture.fhir import services
from medarchive.capture.fhir.models import AttachmentDigest, PendingBinary
from medarchive.capture.models import Channel, IdempotencyKey, Submission
from medarchive.core.errors import Conflict
from medarchive.preservation.models import Blob, PreservationEvent
from medarchive.preservation.services import blob_store
from medarchive.security.models import AuditEntry
from medarchive.security.services import add_user, create_token

PDF = b"%PDF-1.7\n" + "出院小结 discharge summary ".encode() * 60
OTHER_PDF = b"%PDF-1.7\n" + "手术记录 operation note ".encode() * 60
FHIR = "application/fhir+json"
BINARY_URL = "urn:uuid:6a3f2f59-3a7e-4b7b-9d55-0a0d5f1b2c01"


# --- helpers ----------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha1_b64(data: bytes) -> str:
    return b64(hashlib.sha1(data).digest())


def auth(raw: str, **headers: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}", **{f"HTTP_{k.upper()}": v for k, v in headers.items()}}


def document(
    data: bytes | None = PDF,
    *,
    master: str | None = "EMR-0001",
    patient: str = "P0001",
    department: str = "NK",
    loinc: str = "18842-5",
    **changes: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"identifier": {"system": "urn:oid:2.16.156.2", "value": patient}, "display": "张三"},
        "date": "2025-03-01T10:00:00+08:00",
        "context": {"practiceSetting": {"coding": [{"system": "urn:medarchive:department", "code": department}]}},
        "content": [{"attachment": {"contentType": "application/pdf", "title": "出院小结.pdf"}}],
    }
    if master:
        doc["masterIdentifier"] = {"system": "urn:oid:2.16.156.1", "value": master}
    if data is not None:
        doc["content"][0]["attachment"]["data"] = b64(data)
    doc.update(changes)
    return doc


def post(client: Client, path: str, resource: Any, raw: str, *, content_type: str = FHIR, **headers: str) -> Any:
    body = resource if isinstance(resource, bytes) else json.dumps(resource, ensure_ascii=False)
    # CONTENT_TYPE explicitly: the test client drops it for an empty body.
    return client.generic(
        "POST", path, body, content_type=content_type, CONTENT_TYPE=content_type, **auth(raw, **headers)
    )


def get(client: Client, path: str, raw: str, **headers: str) -> Any:
    return client.get(path, **auth(raw, **headers))


def outcome(response: Any) -> list[dict[str, Any]]:
    assert response["Content-Type"].startswith(FHIR), response["Content-Type"]
    body = response.json()
    OperationOutcome.model_validate(body)
    found: list[dict[str, Any]] = body["issue"]
    return found


def expressions(response: Any) -> set[str]:
    return {e for issue in outcome(response) for e in issue.get("expression", [])}


def local_path(url: str) -> str:
    return url.removeprefix("http://testserver")


def stored_state() -> tuple[int, ...]:
    """Everything a capture could leave behind."""
    return (
        Record.objects.count(),
        Component.objects.count(),
        Blob.objects.count(),
        Submission.objects.count(),
        PendingBinary.objects.count(),
        AttachmentDigest.objects.count(),
        IdempotencyKey.objects.count(),
        sum(1 for _ in blob_store().storage.addresses()),
    )


@pytest.fixture
def tokens(users: dict[str, Any]) -> dict[str, str]:
    users["emr"] = add_user("emr", actor=None, role="interface", password="Correct-Horse-42")
    out = {}
    for name in ("emr", "archivist", "officer", "officer_nk", "clinician", "viewer", "researcher", "sysadmin"):
        _, out[name] = create_token(users[name], actor=None, name=f"{name}-system")
    return out


def create(client: Client, raw: str, resource: dict[str, Any] | None = None, **headers: str) -> Any:
    response = post(client, "/fhir/r4/DocumentReference", resource or document(), raw, **headers)
    assert response.status_code in {200, 201}, response.content.decode()
    return response


# --- POST DocumentReference ---------------------------------------------------------------------


def test_a_document_is_captured_and_reads_back_with_matching_hash_and_size(client: Client, tokens: Any) -> None:
    response = create(client, tokens["emr"])
    assert response.status_code == 201
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    created = DocumentReference.model_validate(response.json())
    assert response["Location"] == f"http://testserver/fhir/r4/DocumentReference/{created.id}"

    record = Record.objects.get(pk=created.id)
    assert record.archive_class.code == "BA-ZY" and record.department.code == "NK"
    assert record.metadata["patient_id"] == "P0001" and record.metadata["external_id"] == "urn:oid:2.16.156.1|EMR-0001"
    assert record.intake.submission.channel == Channel.FHIR
    assert record.intake.submission.source == "emr-system"  # the token's name says which system sent it
    [component] = record.components.all()
    assert component.sha256 == hashlib.sha256(PDF).hexdigest() and component.size == len(PDF)

    read = get(client, f"/fhir/r4/DocumentReference/{created.id}", tokens["emr"])
    assert read.status_code == 200
    doc = DocumentReference.model_validate(read.json())
    attachment = doc.content[0].attachment
    assert attachment.size == len(PDF)
    assert read.json()["content"][0]["attachment"]["hash"] == sha1_b64(PDF)
    assert attachment.contentType == "application/pdf" and attachment.title == "出院小结.pdf"
    assert doc.masterIdentifier.value == record.electronic_no
    assert doc.status == "current" and doc.docStatus == "final"  # BA-ZY auto-accepts a clean record
    assert doc.subject.identifier.value == "P0001" and doc.subject.display == "张三"
    assert doc.category[0].coding[0].code == "BA-ZY"
    assert doc.type.coding[0].code == "18842-5"
    assert doc.custodian.identifier.value == record.fonds.code
    assert doc.securityLabel[0].coding[0].code == "N"

    content = get(client, local_path(str(attachment.url)), tokens["emr"])
    body = b"".join(content.streaming_content)
    assert body == PDF and content["Content-Type"] == "application/pdf"
    assert b64(hashlib.sha1(body).digest()) == read.json()["content"][0]["attachment"]["hash"]
    assert AuditEntry.objects.filter(action="record:content:read", object_id=str(record.pk)).exists()
    assert AuditEntry.objects.filter(action="record:metadata:read", object_id=str(record.pk)).exists()


def test_a_retry_with_the_same_master_identifier_is_answered_with_the_first_record(client: Client, tokens: Any) -> None:
    first = create(client, tokens["emr"])
    again = create(client, tokens["emr"])
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Record.objects.count() == 1
    changed = post(client, "/fhir/r4/DocumentReference", document(OTHER_PDF), tokens["emr"])
    assert changed.status_code == 409
    assert outcome(changed)[0]["code"] == "duplicate"
    assert "DocumentReference.masterIdentifier" in expressions(changed)
    assert Record.objects.count() == 1 and Blob.objects.count() == 1
    # Keys are per caller: another system's document with the same identifier is its own record.
    other = create(client, tokens["archivist"])
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_the_same_master_identifier_with_the_same_file_but_another_description_is_409(
    client: Client, tokens: Any
) -> None:
    first = create(client, tokens["emr"])
    before = (Record.objects.count(), Blob.objects.count(), AuditEntry.objects.count())
    changed = post(client, "/fhir/r4/DocumentReference", document(patient="P0999"), tokens["emr"])
    assert changed.status_code == 409
    (issue,) = outcome(changed)
    assert issue["code"] == "duplicate" and "with other content" in issue["diagnostics"]
    assert first.json()["masterIdentifier"]["value"] in issue["diagnostics"]
    assert (Record.objects.count(), Blob.objects.count()) == before[:2]
    assert create(client, tokens["emr"]).status_code == 200  # the identical document is still a retry


def test_a_transaction_reusing_an_earlier_identifier_for_other_content_stores_nothing(
    client: Client, tokens: Any
) -> None:
    create(client, tokens["emr"])
    before = (Record.objects.count(), Blob.objects.count(), Submission.objects.count())
    bundle = transaction(
        document_entry(document(OTHER_PDF, master="EMR-0002", patient="P0002")),
        document_entry(document(OTHER_PDF, master="EMR-0001")),  # EMR-0001 holds PDF, not OTHER_PDF
    )
    response = post(client, "/fhir/r4/", bundle, tokens["emr"])
    assert response.status_code == 409, response.content.decode()
    assert outcome(response)[0]["code"] == "duplicate"
    assert "Bundle.entry[1].resource.masterIdentifier" in expressions(response)
    assert (Record.objects.count(), Blob.objects.count(), Submission.objects.count()) == before


def test_idempotency_key_and_if_none_exist_are_keys_too(client: Client, tokens: Any) -> None:
    first = create(client, tokens["emr"], document(master=None), Idempotency_Key="req-1")
    assert create(client, tokens["emr"], document(master=None), Idempotency_Key="req-1").status_code == 200
    second = create(client, tokens["emr"], document(OTHER_PDF, master=None), If_None_Exist="identifier=urn:x|9")
    assert second.status_code == 201
    again = create(client, tokens["emr"], document(OTHER_PDF, master=None), If_None_Exist="identifier=urn:x|9")
    assert again.status_code == 200 and again.json()["id"] == second.json()["id"]
    assert first.json()["id"] != second.json()["id"] and Record.objects.count() == 2
    bad = post(client, "/fhir/r4/DocumentReference", document(), tokens["emr"], If_None_Exist="patient=P1")
    assert bad.status_code == 400


def test_prefer_minimal_and_operation_outcome(client: Client, tokens: Any) -> None:
    minimal = create(client, tokens["emr"], Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.content == b"" and "/DocumentReference/" in minimal["Location"]
    # A second, identical PDF under another identifier: captured, but held for review as a duplicate.
    review = create(client, tokens["emr"], document(master="EMR-0002"), Prefer="return=OperationOutcome")
    assert review.status_code == 201
    found = outcome(review)
    assert any("duplicate" in i["diagnostics"] for i in found)
    assert any(i["diagnostics"].startswith("review state: pending") for i in found)


def test_a_notice_without_patient_takes_the_callers_department(client: Client, tokens: Any) -> None:
    doc = document(
        b"%PDF-1.7\n" + "关于开展消防演练的通知".encode() * 50,
        loinc="",
        type={"text": "通知"},
        category=[{"coding": [{"system": "urn:medarchive:class", "code": "WS"}]}],
        description="关于开展消防演练的通知",
    )
    del doc["subject"], doc["context"]
    response = create(client, tokens["officer"], doc)
    record = Record.objects.get(pk=response.json()["id"])
    assert (record.archive_class.code, record.department.code, record.title) == ("WS", "BGS", "关于开展消防演练的通知")
    assert "subject" not in response.json()


# --- refusals of a single POST: an OperationOutcome and nothing stored ------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "expression"),
    [
        (b'{"resourceType": "DocumentReference", ', 400, "structure", None),
        (b"[]", 400, "structure", None),
        (json.dumps({"resourceType": "Patient", "id": "1"}).encode(), 400, "invalid", "DocumentReference.resourceType"),
        (json.dumps(document(unknownElement=True)).encode(), 400, "structure", "DocumentReference.unknownElement"),
        (json.dumps(document(date="yesterday")).encode(), 400, "structure", "DocumentReference.date"),
        (json.dumps(document(status="final")).encode(), 422, "code-invalid", "DocumentReference.status"),
        (json.dumps(document(loinc="00000-0")).encode(), 422, "code-invalid", "DocumentReference.type.coding[0].code"),
        (json.dumps(document(subject=None)).encode(), 422, "required", "DocumentReference.subject"),
        (json.dumps(document(data=b"")).encode(), 422, "required", "DocumentReference.content[0].attachment.data"),
        (
            json.dumps(document(data=b"\x89PNG\r\n\x1a\n" + b"0" * 100)).encode(),
            422,
            "value",
            "DocumentReference.content[0].attachment.contentType",
        ),
        (
            json.dumps(document()).replace('"data": "', '"data": "%%').encode(),
            400,
            "value",
            "DocumentReference.content[0].attachment.data",
        ),
        (
            json.dumps(document()).replace('"data": "', '"data": "QUJ').encode(),  # no longer a multiple of 4
            400,
            "value",
            "DocumentReference.content[0].attachment.data",
        ),
        (
            json.dumps(document(department="XX")).encode(),
            422,
            "code-invalid",
            "DocumentReference.context.practiceSetting",
        ),
        (
            json.dumps(document(date="2999-01-01T00:00:00+08:00")).encode(),
            422,
            "business-rule",
            "DocumentReference.date",
        ),
        (
            json.dumps(
                document(category=[{"coding": [{"system": "urn:medarchive:class", "code": "BA-ZY-X"}]}])
            ).encode(),
            422,
            "value",
            "DocumentReference.category",
        ),
    ],
    ids=[
        "invalid-json",
        "array",
        "wrong-resource-type",
        "unknown-element",
        "bad-instant",
        "bad-status",
        "unknown-loinc",
        "no-subject",
        "empty-attachment",
        "png-called-pdf",
        "base64-alphabet",
        "base64-length",
        "unknown-department",
        "future-date",
        "unknown-class",
    ],
)
def test_bad_documents_are_refused_with_a_specific_outcome_and_leave_nothing(
    client: Client, tokens: Any, body: bytes, status: int, code: str, expression: str | None
) -> None:
    if b'"subject": null' in body:
        body = json.dumps({k: v for k, v in json.loads(body).items() if k != "subject"}).encode()
    before = stored_state()
    response = post(client, "/fhir/r4/DocumentReference", body, tokens["emr"])
    assert response.status_code == status, response.content.decode()
    found = outcome(response)
    if expression:
        issue = next(i for i in found if expression in i.get("expression", []))
        assert issue["code"] == code and issue["severity"] == "error" and issue["diagnostics"]
    else:
        assert found[0]["code"] == code
    assert stored_state() == before


def test_an_oversized_attachment_is_413_before_or_after_decoding(client: Client, tokens: Any, settings: Any) -> None:
    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=2000)
    assert services.inline_limit() == 2000
    before = stored_state()
    slightly = post(client, "/fhir/r4/DocumentReference", document(b"%PDF-1.7\n" + b"x" * 2000), tokens["emr"])
    assert slightly.status_code == 413 and outcome(slightly)[0]["code"] == "too-long"
    assert "DocumentReference.content[0].attachment.data" in expressions(slightly)
    huge = post(client, "/fhir/r4/DocumentReference", document(b"%PDF-1.7\n" + b"x" * 2_000_000), tokens["emr"])
    assert huge.status_code == 413 and "limit" in outcome(huge)[0]["diagnostics"]
    assert stored_state() == before


def test_content_type_and_methods_are_checked(client: Client, tokens: Any) -> None:
    body = json.dumps(document())
    plain = post(client, "/fhir/r4/DocumentReference", body.encode(), tokens["emr"], content_type="text/plain")
    assert plain.status_code == 415 and outcome(plain)[0]["code"] == "not-supported"
    latin = post(
        client, "/fhir/r4/DocumentReference", body.encode(), tokens["emr"], content_type=f"{FHIR}; charset=latin-1"
    )
    assert latin.status_code == 415
    assert (
        post(
            client, "/fhir/r4/DocumentReference", body.encode(), tokens["emr"], content_type="application/json"
        ).status_code
        == 201
    )
    put = client.put("/fhir/r4/DocumentReference/x", body, content_type=FHIR, **auth(tokens["emr"]))
    assert put.status_code == 405 and put["Allow"] == "GET"
    assert outcome(get(client, "/fhir/r4/Patient/1", tokens["emr"]))[0]["code"] == "not-found"
    assert get(client, "/fhir/r4/Patient", tokens["emr"]).status_code == 404
    assert outcome(get(client, "/fhir/r4/DocumentReference/", tokens["emr"]))[0]["code"] == "not-found"


# --- Binary, then a DocumentReference that points at it --------------------------------------------


def test_a_raw_binary_streams_in_and_a_document_takes_it(
    client: Client, tokens: Any, django_capture_on_commit_callbacks: Any
) -> None:
    response = post(client, "/fhir/r4/Binary", PDF, tokens["emr"], content_type="application/pdf")
    assert response.status_code == 201, response.content
    binary_id = response.json()["id"]
    assert response["Location"].endswith(f"/fhir/r4/Binary/{binary_id}")
    row = PendingBinary.objects.get(pk=binary_id)
    assert row.stored and row.size == len(PDF) and row.sha1 == hashlib.sha1(PDF).hexdigest()
    assert blob_store().storage.exists(row.address)
    assert Blob.objects.count() == 0  # not a record's blob until a DocumentReference takes it

    doc = document(None)
    doc["content"][0]["attachment"].update(url=f"Binary/{binary_id}", size=len(PDF), hash=sha1_b64(PDF))
    with django_capture_on_commit_callbacks(execute=True):
        created = create(client, tokens["emr"], doc)
    assert created.status_code == 201
    row.refresh_from_db()
    assert str(row.record_id) == created.json()["id"] and row.used_at is not None
    assert not blob_store().storage.exists(row.address)  # its own sealed copy is gone
    read = get(client, f"/fhir/r4/DocumentReference/{created.json()['id']}", tokens["emr"]).json()
    assert read["content"][0]["attachment"]["hash"] == sha1_b64(PDF)
    assert read["content"][0]["attachment"]["size"] == len(PDF)

    again = post(
        client,
        "/fhir/r4/DocumentReference",
        document(None, master="EMR-9") | {"content": doc["content"]},
        tokens["emr"],
    )
    assert again.status_code == 422 and "already used" in outcome(again)[0]["diagnostics"]


def test_a_binary_as_json_and_the_rules_for_using_it(client: Client, tokens: Any) -> None:
    response = post(
        client,
        "/fhir/r4/Binary",
        {"resourceType": "Binary", "contentType": "application/pdf", "data": b64(PDF)},
        tokens["emr"],
    )
    assert response.status_code == 201
    binary_id = response.json()["id"]

    def referencing(**attachment: Any) -> dict[str, Any]:
        doc = document(None)
        doc["content"][0]["attachment"].update(url=f"Binary/{binary_id}", **attachment)
        return doc

    # Another caller cannot use it; a wrong type or size is refused and leaves it waiting.
    assert post(client, "/fhir/r4/DocumentReference", referencing(), tokens["archivist"]).status_code == 422
    wrong = post(client, "/fhir/r4/DocumentReference", referencing(contentType="image/jpeg"), tokens["emr"])
    assert "DocumentReference.content[0].attachment.contentType" in expressions(wrong)
    wrong = post(client, "/fhir/r4/DocumentReference", referencing(size=1), tokens["emr"])
    assert "DocumentReference.content[0].attachment.size" in expressions(wrong)
    assert PendingBinary.objects.get(pk=binary_id).used_at is None
    # An expired Binary is refused, then purged with its sealed object.
    row = PendingBinary.objects.get(pk=binary_id)
    PendingBinary.objects.filter(pk=binary_id).update(expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert post(client, "/fhir/r4/DocumentReference", referencing(), tokens["emr"]).status_code == 422
    assert services.purge_expired_binaries() == 1
    assert not PendingBinary.objects.filter(pk=binary_id).exists()
    assert not blob_store().storage.exists(row.address)
    unknown = post(client, "/fhir/r4/DocumentReference", referencing(), tokens["emr"])
    assert unknown.status_code == 422 and Record.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (PDF, "image/png", 422),  # the bytes are a PDF
        (b"", "application/pdf", 422),  # empty
        (json.dumps({"resourceType": "Binary", "contentType": "application/pdf"}).encode(), FHIR, 422),
        (json.dumps({"resourceType": "Binary", "contentType": "application/pdf", "data": "@@"}).encode(), FHIR, 400),
        (b"{", FHIR, 400),
    ],
)
def test_bad_binaries_leave_nothing(client: Client, tokens: Any, body: bytes, content_type: str, status: int) -> None:
    before = stored_state()
    response = post(client, "/fhir/r4/Binary", body, tokens["emr"], content_type=content_type)
    assert response.status_code == status, response.content
    assert outcome(response)
    assert stored_state() == before


def test_an_oversized_raw_binary_is_413_and_leaves_nothing(client: Client, tokens: Any, settings: Any) -> None:
    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=1000)
    before = stored_state()
    response = post(client, "/fhir/r4/Binary", PDF, tokens["emr"], content_type="application/pdf")
    assert response.status_code == 413 and outcome(response)[0]["code"] == "too-long"
    assert stored_state() == before


def test_binaries_only_for_those_who_may_capture(client: Client, tokens: Any) -> None:
    response = post(client, "/fhir/r4/Binary", PDF, tokens["viewer"], content_type="application/pdf")
    assert response.status_code == 403 and outcome(response)[0]["code"] == "forbidden"
    assert AuditEntry.objects.filter(action="record:create", result="denied", actor_name="viewer").exists()


# --- transaction Bundles: all or nothing ----------------------------------------------------------------


def transaction(*entries: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries), **changes}


def binary_entry(data: bytes = PDF, url: str = BINARY_URL) -> dict[str, Any]:
    return {
        "fullUrl": url,
        "resource": {"resourceType": "Binary", "contentType": "application/pdf", "data": b64(data)},
        "request": {"method": "POST", "url": "Binary"},
    }


def document_entry(doc: dict[str, Any]) -> dict[str, Any]:
    return {"resource": doc, "request": {"method": "POST", "url": "DocumentReference"}}


def by_reference(url: str = BINARY_URL, **changes: Any) -> dict[str, Any]:
    doc = document(None, **changes)
    doc["content"][0]["attachment"]["url"] = url
    return doc


def test_a_transaction_captures_every_document(client: Client, tokens: Any) -> None:
    bundle = transaction(
        binary_entry(),
        document_entry(by_reference()),
        document_entry(document(OTHER_PDF, master="EMR-0002", loinc="11504-8", patient="P0002")),
    )
    response = post(client, "/fhir/r4/", bundle, tokens["emr"])
    assert response.status_code == 200, response.content.decode()
    result = Bundle.model_validate(response.json())
    assert result.type == "transaction-response"
    statuses = [e.response.status for e in result.entry]
    assert statuses == ["201 Created", "201 Created", "201 Created"]
    first_id = result.entry[1].response.location.split("/")[1]
    assert result.entry[0].response.location == f"Binary/{first_id}.1"
    assert Record.objects.count() == 2
    assert Submission.objects.get().channel == Channel.FHIR  # one submission for the bundle
    read = get(client, f"/fhir/r4/DocumentReference/{first_id}", tokens["emr"]).json()
    assert read["content"][0]["attachment"]["hash"] == sha1_b64(PDF)
    # The same transaction again: every document answers with its earlier record.
    again = Bundle.model_validate(post(client, "/fhir/r4/", bundle, tokens["emr"]).json())
    assert [e.response.status for e in again.entry] == ["200 OK", "200 OK", "200 OK"]
    assert Record.objects.count() == 2


def test_a_transaction_with_one_bad_document_stores_nothing(client: Client, tokens: Any) -> None:
    before = stored_state()
    bundle = transaction(
        binary_entry(),
        document_entry(by_reference()),
        document_entry(document(OTHER_PDF, master="EMR-0002", department="NOPE")),
    )
    response = post(client, "/fhir/r4/", bundle, tokens["emr"])
    assert response.status_code == 422
    assert "Bundle.entry[2].resource.context.practiceSetting" in expressions(response)
    assert stored_state() == before


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (Conflict("the same content is being stored by another writer; retry in a moment"), 409),
        (RuntimeError("disk on fire"), 500),
    ],
    ids=["refused-item", "crash"],
)
def test_a_failure_inside_the_write_rolls_back_records_blobs_and_audit(
    client: Client, tokens: Any, monkeypatch: pytest.MonkeyPatch, failure: Exception, status: int
) -> None:
    """A refusal the up-front checks cannot see (a concurrent writer), or a crash, undoes the whole bundle."""
    real = intake.create_record
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise failure
        return real(*args, **kwargs)

    monkeypatch.setattr(intake, "create_record", flaky)
    before, audit_before = stored_state(), AuditEntry.objects.count()
    fresh = [b"%PDF-1.7\n" + secrets.token_bytes(3000) for _ in range(2)]  # content no earlier test stored
    bundle = transaction(
        document_entry(document(fresh[0], master="EMR-1")),
        document_entry(document(fresh[1], master="EMR-2")),
    )
    response = post(client, "/fhir/r4/", bundle, tokens["emr"])
    assert response.status_code == status, response.content.decode()
    if status == 409:
        assert "Bundle.entry[1].resource" in expressions(response)
    else:
        assert outcome(response)[0]["code"] == "exception" and "disk" not in response.content.decode()
    assert calls["n"] == 2  # the first record was written, then undone
    assert stored_state() == before  # no record, submission, blob row — and no sealed object
    assert AuditEntry.objects.count() == audit_before


def test_a_transaction_repeating_an_identifier_is_refused(client: Client, tokens: Any) -> None:
    bundle = transaction(document_entry(document(PDF)), document_entry(document(OTHER_PDF)))
    response = post(client, "/fhir/r4/", bundle, tokens["emr"])
    assert response.status_code == 422 and outcome(response)[0]["code"] == "duplicate"


@pytest.mark.parametrize("kind", ["batch", "document"])
def test_batch_and_document_bundles_are_not_supported(client: Client, tokens: Any, kind: str) -> None:
    response = post(client, "/fhir/r4/", transaction(document_entry(document()), type=kind), tokens["emr"])
    assert response.status_code == 422
    assert outcome(response)[0]["code"] == "not-supported" and "Bundle.type" in expressions(response)
    assert Record.objects.count() == 0


def test_a_transaction_for_a_department_the_caller_may_not_write_is_403(client: Client, tokens: Any) -> None:
    bundle = transaction(document_entry(document(department="BGS")), document_entry(document(OTHER_PDF, master="2")))
    response = post(client, "/fhir/r4/", bundle, tokens["officer_nk"])
    assert response.status_code == 403 and Record.objects.count() == 0


# --- search and read ---------------------------------------------------------------------------------


@pytest.fixture
def three(client: Client, tokens: Any) -> list[str]:
    ids = []
    for i, (patient, department) in enumerate([("P1", "NK"), ("P1", "NK"), ("P1", "BGS")]):
        data = b"%PDF-1.7\n" + f"record {i} ".encode() * 100
        ids.append(
            create(
                client, tokens["emr"], document(data, master=f"M{i}", patient=patient, department=department)
            ).json()["id"]
        )
    return ids


def test_search_by_patient_pages_through_a_searchset(client: Client, tokens: Any, three: list[str]) -> None:
    response = get(client, "/fhir/r4/DocumentReference?patient=Patient/P1&_count=2", tokens["emr"])
    assert response.status_code == 200
    page = Bundle.model_validate(response.json())
    assert page.type == "searchset" and page.total == 3 and len(page.entry) == 2
    links = {link.relation: link.url for link in page.link}
    assert set(links) == {"self", "first", "last", "next"}
    second = Bundle.model_validate(get(client, local_path(links["next"]), tokens["emr"]).json())
    assert len(second.entry) == 1
    seen = [e.resource.id for e in page.entry] + [e.resource.id for e in second.entry]
    assert sorted(seen) == sorted(three)
    listed = AuditEntry.objects.filter(action="record:list", actor_name="emr").latest("seq")
    assert listed.details["filters"] == {"channel": "fhir", "patient": "P1"}
    assert len(listed.details["shown"]) == 1
    assert get(client, "/fhir/r4/DocumentReference?patient=P9", tokens["emr"]).json()["total"] == 0


def test_search_shows_only_what_the_caller_may_see(client: Client, tokens: Any, three: list[str]) -> None:
    clinician = get(client, "/fhir/r4/DocumentReference?patient=P1", tokens["clinician"]).json()
    assert clinician["total"] == 2  # the NK records only
    officer = get(client, "/fhir/r4/DocumentReference?patient=P1", tokens["officer"]).json()
    assert officer["total"] == 1 and officer["entry"][0]["resource"]["id"] == three[2]
    # The viewer may list BGS records but not read patient identifiers: searching by patient finds
    # nothing, and the records it can list show the patient masked.
    assert get(client, "/fhir/r4/DocumentReference?patient=P1", tokens["viewer"]).json()["total"] == 0
    listed = get(client, "/fhir/r4/DocumentReference", tokens["viewer"]).json()
    [entry] = listed["entry"]
    assert entry["resource"]["subject"]["display"] == "***"
    assert "identifier" not in entry["resource"]["subject"] and "reference" not in entry["resource"]["subject"]
    read = get(client, f"/fhir/r4/DocumentReference/{three[2]}", tokens["viewer"]).json()
    DocumentReference.model_validate(read)
    assert read["subject"]["extension"][0]["valueCode"] == "masked"
    assert get(client, f"/fhir/r4/DocumentReference/{three[0]}", tokens["viewer"]).status_code == 404
    assert get(client, "/fhir/r4/DocumentReference", tokens["sysadmin"]).status_code == 403


def test_search_by_identifier(client: Client, tokens: Any, three: list[str]) -> None:
    record = Record.objects.get(pk=three[1])
    for query in (
        f"identifier=urn:medarchive:electronic-no|{record.electronic_no}",
        f"identifier={record.electronic_no}",
        "identifier=urn:oid:2.16.156.1|M1",
        "identifier=M1",
        f"identifier=urn:ietf:rfc:3986|urn:uuid:{record.pk}",
    ):
        found = get(client, f"/fhir/r4/DocumentReference?{query}", tokens["emr"]).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [three[1]], query


@pytest.mark.parametrize(
    "query", ["_count=0", "_count=abc", "_page=0", "name=x", "patient=", "patient=P1&patient=P2", "subject=P1"]
)
def test_bad_searches_are_400(client: Client, tokens: Any, query: str) -> None:
    response = get(client, f"/fhir/r4/DocumentReference?{query}", tokens["emr"])
    assert response.status_code == 400 and outcome(response)[0]["diagnostics"]


def test_reading_something_missing_is_404(client: Client, tokens: Any) -> None:
    for path in (
        "DocumentReference/not-a-uuid",
        "DocumentReference/0b6a7c1e-6f0e-4a43-9d7b-3c0f8e1a2b3c",
        "Binary/nothing",
        "Binary/0b6a7c1e-6f0e-4a43-9d7b-3c0f8e1a2b3c.1",
    ):
        response = get(client, f"/fhir/r4/{path}", tokens["emr"])
        assert response.status_code == 404, path
        assert outcome(response)[0]["code"] == "not-found"


def test_records_from_other_channels_read_back_with_a_computed_sha1(
    client: Client, tokens: Any, make_record: Any
) -> None:
    body = b"%PDF-1.7\n" + "年度工作总结".encode() * 80
    record = make_record(content=body, department="BGS")
    read = get(client, f"/fhir/r4/DocumentReference/{record.pk}", tokens["archivist"])
    doc = read.json()
    DocumentReference.model_validate(doc)
    assert doc["content"][0]["attachment"]["hash"] == sha1_b64(body)
    assert doc["content"][0]["attachment"]["size"] == len(body)
    assert "subject" not in doc and doc["docStatus"] == "preliminary"
    digest = AttachmentDigest.objects.get(sha256=hashlib.sha256(body).hexdigest())
    assert digest.source == AttachmentDigest.BACKFILL and digest.sha1 == hashlib.sha1(body).hexdigest()
    assert PreservationEvent.objects.filter(component__record=record, detail__contains="sha1").exists()
    assert services.backfill_digests() == 0  # nothing left to do


def test_the_backfill_job_and_a_damaged_file(client: Client, tokens: Any, make_record: Any) -> None:
    good, bad = make_record(), make_record()
    Component.objects.filter(record=bad).update(sha256="0" * 64)
    assert services.backfill_digests() == 1
    assert AttachmentDigest.objects.filter(sha256=good.components.get().sha256).exists()
    read = get(client, f"/fhir/r4/DocumentReference/{bad.pk}", tokens["archivist"]).json()
    assert "hash" not in read["content"][0]["attachment"]  # never a hash of content that fails fixity


def test_capability_statement(client: Client, tokens: Any) -> None:
    response = get(client, "/fhir/r4/metadata", tokens["viewer"])
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    assert {r.type for r in statement.rest[0].resource} == {"DocumentReference", "Binary"}


# --- authentication ----------------------------------------------------------------------------------


def test_unauthenticated_and_bad_tokens_are_401(client: Client, tokens: Any) -> None:
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer mda_nope"}, {"HTTP_AUTHORIZATION": "Basic dXNlcjpwdw=="}):
        response = client.get("/fhir/r4/DocumentReference", **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert outcome(response)[0]["code"] == "login"
    response = client.generic("POST", "/fhir/r4/DocumentReference", json.dumps(document()), content_type=FHIR)
    assert response.status_code == 401 and Record.objects.count() == 0


def test_roles_and_token_scopes_are_enforced_and_refusals_audited(client: Client, tokens: Any, users: Any) -> None:
    response = post(client, "/fhir/r4/DocumentReference", document(), tokens["researcher"])
    assert response.status_code == 403 and outcome(response)[0]["code"] == "forbidden"
    assert AuditEntry.objects.filter(action="record:create", result="denied", actor_name="researcher").exists()
    assert post(client, "/fhir/r4/DocumentReference", document(), tokens["officer"]).status_code == 403  # NK, not BGS
    _, reader = create_token(users["emr"], actor=None, name="reader", scopes=["record:list"])
    assert post(client, "/fhir/r4/DocumentReference", document(), reader).status_code == 403
    assert get(client, "/fhir/r4/DocumentReference", reader).status_code == 200
    assert Record.objects.count() == 0


def test_session_clients_need_the_csrf_token(tokens: Any, users: Any) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["archivist"])
    assert browser.get("/fhir/r4/DocumentReference").status_code == 200
    body = json.dumps(document())
    refused = browser.generic("POST", "/fhir/r4/DocumentReference", body, content_type=FHIR)
    assert refused.status_code == 403 and outcome(refused)[0]["code"] == "security"
    assert Record.objects.count() == 0
    browser.get("/login/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.generic("POST", "/fhir/r4/DocumentReference", body, content_type=FHIR, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
    # A bearer token needs no CSRF token, even from a client that also holds a session cookie.
    other = post(browser, "/fhir/r4/DocumentReference", document(OTHER_PDF, master="X2"), tokens["emr"])
    assert other.status_code == 201


def test_every_class_of_the_valueset_is_in_the_shipped_scheme(archive: Any) -> None:
    from medarchive.archiving.services import active_class
    from medarchive.capture.fhir.valueset import DOCUMENT_TYPES

    for document_type in DOCUMENT_TYPES.values():
        assert active_class(document_type.class_code).code == document_type.class_code
