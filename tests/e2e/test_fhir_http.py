"""The FHIR R4 endpoint over real HTTP: `medarchive serve` in a subprocess, a plain urllib client,
resources built with fhir.resources, tokens from `medarchive token create`.

What a hospital's EMR gateway does: post DocumentReferences (inline and through a Binary), a
transaction Bundle, search by patient, read each record back and check that attachment.hash and
size match the bytes it sent. Then everything a broken sender does wrong, each answered with its
own OperationOutcome and nothing left on disk or in the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.documentreference import (
    DocumentReference,
    DocumentReferenceContent,
    DocumentReferenceContext,
)
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.reference import Reference

pytestmark = pytest.mark.slow

PASSWORD = "Correct-Horse-42"
FHIR = "application/fhir+json"
LOINC = "http://loinc.org"
DEPARTMENT = "urn:medarchive:department"
LIMIT = 200_000  # MEDARCHIVE_MAX_UPLOAD_BYTES of the server under test


@dataclass
class Answer:
    status: int
    headers: Any  # email.message.Message: case-insensitive lookups
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FhirClient:
    """urllib, so the test depends on nothing the server does not also speak: HTTP/1.1 and JSON."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base.rstrip("/") + "/fhir/r4/"
        self.token = token

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Answer:
        url = path if path.startswith("http") else self.base + path
        sent = {"Accept": FHIR, **{k.replace("_", "-"): v for k, v in headers.items()}}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=body, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read())

    def post(self, path: str, resource: Any, content_type: str = FHIR, **headers: str) -> Answer:
        if isinstance(resource, bytes):
            body = resource
        elif isinstance(resource, dict):
            body = json.dumps(resource, ensure_ascii=False).encode()
        else:
            body = resource.model_dump_json(exclude_none=True).encode()
        return self.request("POST", path, body, Content_Type=content_type, **headers)

    def get(self, path: str) -> Answer:
        return self.request("GET", path)


def pdf(label: str, size: int = 50_000) -> bytes:
    head = f"%PDF-1.7\n% {label}\n".encode()
    return head + secrets.token_bytes(size - len(head))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha1_b64(data: bytes) -> str:
    return b64(hashlib.sha1(data).digest())


def document_reference(
    *, data: bytes | None = None, url: str | None = None, master: str, patient: str = "P-1001", loinc: str = "18842-5"
) -> DocumentReference:
    attachment = Attachment(contentType="application/pdf", title=f"{master}.pdf")
    if data is not None:
        attachment = Attachment(
            contentType="application/pdf",
            title=f"{master}.pdf",
            data=b64(data),
            size=len(data),
            hash=sha1_b64(data),
        )
    if url is not None:
        attachment = Attachment(contentType="application/pdf", title=f"{master}.pdf", url=url)
    return DocumentReference(
        status="current",
        masterIdentifier=Identifier(system="urn:oid:2.16.156.10011.1", value=master),
        type=CodeableConcept(coding=[Coding(system=LOINC, code=loinc)]),
        subject=Reference(identifier=Identifier(system="urn:oid:2.16.156.10011.2", value=patient), display="张三"),
        date="2025-03-01T10:00:00+08:00",
        context=DocumentReferenceContext(
            practiceSetting=CodeableConcept(coding=[Coding(system=DEPARTMENT, code="NK")])
        ),
        content=[DocumentReferenceContent(attachment=attachment)],
    )


def archive_with_emr(cli: Any) -> str:
    """The e2e archive plus an interface account for the EMR; returns its API token."""
    cli.run("user", "add", "emr", "--role", "interface", "--password-stdin", input=PASSWORD + "\n")
    created = json.loads(cli.run("token", "create", "emr", "--name", "EMR gateway", "--json").stdout)
    token: str = created["token"]
    return token


def check_read_back(client: FhirClient, location: str, sent: list[bytes]) -> DocumentReference:
    """The record as a DocumentReference: hash and size of each attachment match the bytes sent,
    and the bytes behind attachment.url are those bytes."""
    answer = client.get(location)
    assert answer.status == 200, answer.body
    raw = answer.json()
    doc = DocumentReference.model_validate(raw)
    assert len(doc.content) == len(sent)
    for item, data, content in zip(raw["content"], sent, doc.content, strict=True):
        assert item["attachment"]["hash"] == sha1_b64(data)
        assert content.attachment.size == len(data)
        fetched = client.get(str(content.attachment.url))
        assert fetched.status == 200 and fetched.body == data
        assert fetched.headers["X-Content-SHA256"] == hashlib.sha256(data).hexdigest()
    return doc


def stored_objects(cli: Any) -> int:
    root = Path(cli.data_dir) / "blobs"
    return sum(1 for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts and len(p.name) == 64)


def staging_leftovers(cli: Any) -> int:
    staging = Path(cli.data_dir) / "blobs" / ".staging"
    return sum(1 for p in staging.iterdir()) if staging.exists() else 0


def test_an_emr_posts_documents_and_reads_them_back(cli: Any, serving: Callable[[Any], Any]) -> None:
    token = archive_with_emr(cli)
    with serving(cli) as base:
        client = FhirClient(base, token)
        assert FhirClient(base, None).get("DocumentReference?patient=P-1001").status == 401
        assert client.get("metadata").json()["resourceType"] == "CapabilityStatement"

        # 1. A DocumentReference with the PDF inline.
        first = pdf("discharge summary")
        created = client.post("DocumentReference", document_reference(data=first, master="DOC-1"))
        assert created.status == 201, created.body
        assert created.headers["Content-Type"].startswith(FHIR)
        location = created.headers["Location"]
        doc = check_read_back(client, location, [first])
        assert doc.subject.identifier.value == "P-1001" and doc.category[0].coding[0].code == "BA-ZY"
        # The retry a gateway sends after a timeout creates nothing new.
        retry = client.post("DocumentReference", document_reference(data=first, master="DOC-1"))
        assert retry.status == 200 and retry.headers["Location"] == location
        # Another document under the same masterIdentifier is refused, never answered with the first one.
        reused = client.post("DocumentReference", document_reference(data=pdf("another"), master="DOC-1"))
        assert reused.status == 409, reused.body
        (issue,) = reused.json()["issue"]
        assert issue["code"] == "duplicate" and issue["expression"] == ["DocumentReference.masterIdentifier"]

        # 2. A raw Binary first, then the DocumentReference that points at it.
        second = pdf("operation note")
        binary = client.post("Binary", second, content_type="application/pdf")
        assert binary.status == 201, binary.body
        binary_id = binary.json()["id"]
        by_ref = client.post(
            "DocumentReference", document_reference(url=f"Binary/{binary_id}", master="DOC-2", loinc="11504-8")
        )
        assert by_ref.status == 201, by_ref.body
        check_read_back(client, by_ref.headers["Location"], [second])

        # 3. A transaction: a Binary and two DocumentReferences, one using it by urn:uuid.
        third, fourth = pdf("progress note"), pdf("consent")
        urn = "urn:uuid:0f0a5e0c-2b7d-4d7e-9c1a-8d1f3b9e6a21"
        bundle = Bundle(
            type="transaction",
            entry=[
                BundleEntry(
                    fullUrl=urn,
                    resource=Binary(contentType="application/pdf", data=b64(third)),
                    request=BundleEntryRequest(method="POST", url="Binary"),
                ),
                BundleEntry(
                    resource=document_reference(url=urn, master="DOC-3", loinc="11506-3"),
                    request=BundleEntryRequest(method="POST", url="DocumentReference"),
                ),
                BundleEntry(
                    resource=document_reference(data=fourth, master="DOC-4", loinc="59284-0"),
                    request=BundleEntryRequest(method="POST", url="DocumentReference"),
                ),
            ],
        )
        answer = client.post("", bundle)
        assert answer.status == 200, answer.body
        result = Bundle.model_validate(answer.json())
        assert result.type == "transaction-response"
        assert [e.response.status for e in result.entry] == ["201 Created"] * 3
        check_read_back(client, result.entry[1].response.location, [third])
        check_read_back(client, result.entry[2].response.location, [fourth])

        # 4. Search by patient, a page at a time, following the next links.
        seen: list[str] = []
        page = client.get("DocumentReference?patient=Patient/P-1001&_count=3")
        while True:
            assert page.status == 200, page.body
            found = Bundle.model_validate(page.json())
            assert found.type == "searchset" and found.total == 4
            seen += [e.resource.id for e in found.entry]
            links = {link.relation: link.url for link in found.link}
            if "next" not in links:
                break
            page = client.get(links["next"])
        assert len(seen) == 4 == len(set(seen))
        assert client.get("DocumentReference?patient=P-0000").json()["total"] == 0


def test_broken_senders_get_specific_outcomes_and_nothing_is_stored(cli: Any, serving: Callable[[Any], Any]) -> None:
    token = archive_with_emr(cli)
    cli.env["MEDARCHIVE_MAX_UPLOAD_BYTES"] = str(LIMIT)
    good = document_reference(data=pdf("fine", 5_000), master="OK-1").model_dump(mode="json", exclude_none=True)

    def changed(**fields: Any) -> dict[str, Any]:
        return {**json.loads(json.dumps(good)), **fields}

    def with_attachment(**fields: Any) -> dict[str, Any]:
        doc = changed()
        merged = {**doc["content"][0]["attachment"], **fields}
        doc["content"][0]["attachment"] = {k: v for k, v in merged.items() if v is not None}
        return doc

    batch = Bundle(
        type="batch",
        entry=[
            BundleEntry(
                resource=DocumentReference.model_validate(good),
                request=BundleEntryRequest(method="POST", url="DocumentReference"),
            )
        ],
    )
    cases: list[tuple[str, str, Any, int, str, str | None]] = [
        (
            "invalid JSON",
            "DocumentReference",
            b'{"resourceType": "DocumentReference", "status": ',
            400,
            "structure",
            None,
        ),
        (
            "fails fhir.resources",
            "DocumentReference",
            changed(content="not a list"),
            400,
            "structure",
            "DocumentReference.content",
        ),
        (
            "wrong resourceType",
            "DocumentReference",
            {"resourceType": "Observation", "status": "final"},
            400,
            "invalid",
            "DocumentReference.resourceType",
        ),
        ("batch Bundle", "", batch, 422, "not-supported", "Bundle.type"),
        (
            "document Bundle",
            "",
            {"resourceType": "Bundle", "type": "document", "entry": []},
            422,
            "not-supported",
            "Bundle.type",
        ),
        (
            "base64 with junk after padding",
            "DocumentReference",
            with_attachment(data=b64(b"%PDF-1.7 x") + "QUJD", size=None, hash=None),
            400,
            "value",
            "DocumentReference.content[0].attachment.data",
        ),
        (
            "0-byte attachment",
            "DocumentReference",
            with_attachment(data="", size=None, hash=None),
            422,
            "required",
            "DocumentReference.content[0].attachment.data",
        ),
        (
            "oversized attachment",
            "DocumentReference",
            with_attachment(data=b64(pdf("big", LIMIT + 1)), size=None, hash=None),
            413,
            "too-long",
            "DocumentReference.content[0].attachment.data",
        ),
        (
            "hash does not match",
            "DocumentReference",
            with_attachment(hash=sha1_b64(b"other")),
            422,
            "value",
            "DocumentReference.content[0].attachment.hash",
        ),
        (
            "status outside the ValueSet",
            "DocumentReference",
            changed(status="final"),
            422,
            "code-invalid",
            "DocumentReference.status",
        ),
        ("oversized raw Binary", "Binary", pdf("big raw", LIMIT + 1), 413, "too-long", None),
    ]
    with serving(cli) as base:
        client = FhirClient(base, token)
        for name, path, body, status, code, expression in cases:
            content_type = "application/pdf" if path == "Binary" else FHIR
            answer = client.post(path, body, content_type=content_type)
            assert answer.status == status, f"{name}: {answer.status} {answer.body[:300]!r}"
            assert answer.headers["Content-Type"].startswith(FHIR), name
            outcome = OperationOutcome.model_validate(answer.json())
            issue = (
                outcome.issue[0]
                if expression is None
                else next((i for i in outcome.issue if expression in (i.expression or [])), None)
            )
            assert issue is not None, f"{name}: no issue at {expression}: {answer.body[:300]!r}"
            assert issue.code == code and issue.severity == "error" and issue.diagnostics, name
        assert client.get("DocumentReference").json()["total"] == 0
        # The one good document still goes through afterwards.
        assert client.post("DocumentReference", good).status == 201
    assert stored_objects(cli) == 1  # only the good document's file
    assert staging_leftovers(cli) == 0
