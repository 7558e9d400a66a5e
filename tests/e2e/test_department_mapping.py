"""Real clients, real codes: hospital systems that name departments in their own codes, as black boxes
against the real `medarchive` processes.

- SMART's `fhirclient` builds a DocumentReference (custodian Organization identifier, practiceSetting in
  the hospital's code system) and POSTs it to `medarchive serve`;
- the `hl7` library builds an ORU^R01 (PV1-3 point of care with its facility, MSH-4) and sends it over
  MLLP to `medarchive listen hl7`;
- a pynetdicom SCU sends a study whose InstitutionName / InstitutionalDepartmentName are the hospital's.

Each is refused while its codes are unmapped — naming them — and accepted once an archivist maps them
with `medarchive department alias add`.
"""

from __future__ import annotations

import base64
import io
import json
import re
import select
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import hl7
import pydicom
import pytest
from hl7.client import MLLPClient
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from tests.e2e.conftest import PASSWORD, Cli

from medarchive.capture.dicom import samples as dicom_samples
from medarchive.capture.hl7 import samples as hl7_samples

pytestmark = pytest.mark.slow
HOSPITAL_DEPT = "http://emr.xiehe.example.cn/fhir/CodeSystem/department"
HOSPITAL_ORG = "urn:oid:1.2.156.112604.1.2"
PDF = b"%PDF-1.7\n" + "出院小结 discharge summary ".encode() * 80


def records(cli: Cli, user: str = "archivist") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(cli.run("records", "list", "--as", user, "--json").stdout)["items"]
    return items


def alias(cli: Cli, *args: str) -> dict[str, Any]:
    created: dict[str, Any] = json.loads(
        cli.run("department", "alias", "add", *args, "--as", "archivist", "--json").stdout
    )
    return created


def interface_user(cli: Cli, name: str) -> None:
    cli.run("user", "add", name, "--role", "interface", "--password-stdin", input=PASSWORD + "\n")


# --- the CLI ---------------------------------------------------------------------------------------


def test_the_cli_keeps_the_table(cli: Cli) -> None:
    added = alias(cli, "dicom-institution", " ＣＴ Room ", "NK", "--note", "东院 CT")
    assert (added["key"], added["department"], added["note"]) == ("ct room", "NK", "东院 CT")
    shown = cli.run("department", "alias", "list", "--as", "archivist").stdout
    assert "ct room" in shown and "内科" in shown
    listed = json.loads(
        cli.run("department", "alias", "list", "--as", "archivist", "--kind", "hl7-location", "--json").stdout
    )
    assert listed == []
    again = cli.run(
        "department", "alias", "add", "dicom-institution", "CT ROOM", "BGS", "--as", "archivist", check=False
    )
    assert again.returncode == 5 and "key" in again.stderr
    bad = cli.run("department", "alias", "add", "fhir-organization", "X", "NK", "--as", "archivist", check=False)
    assert bad.returncode == 2 and "system" in bad.stderr
    denied = cli.run("department", "alias", "add", "hl7-facility", "XH", "NK", "--as", "officer", check=False)
    assert denied.returncode == 3
    missing = cli.run("department", "alias", "remove", "999", "--as", "archivist", check=False)
    assert missing.returncode == 4
    cli.run("department", "alias", "remove", str(added["id"]), "--as", "archivist")
    assert json.loads(cli.run("department", "alias", "list", "--as", "archivist", "--json").stdout) == []


# --- FHIR: SMART's fhirclient ------------------------------------------------------------------------


def smart_document(master: str) -> Any:
    """A DocumentReference as an EMR built on SMART's fhirclient writes it."""
    from fhirclient.models import (
        attachment,
        codeableconcept,
        coding,
        documentreference,
        fhirinstant,
        fhirreference,
        identifier,
    )

    def code(system: str, value: str, display: str = "") -> Any:
        c = coding.Coding()
        c.system, c.code = system, value
        if display:
            c.display = display
        concept = codeableconcept.CodeableConcept()
        concept.coding = [c]
        return concept

    doc = documentreference.DocumentReference()
    doc.status = "current"
    doc.masterIdentifier = identifier.Identifier({"system": "urn:oid:2.16.156.1", "value": master})
    doc.type = code("http://loinc.org", "18842-5", "Discharge summary")
    subject = fhirreference.FHIRReference()
    subject.identifier = identifier.Identifier({"system": "urn:oid:2.16.156.2", "value": "P900001"})
    doc.subject = subject
    doc.date = fhirinstant.FHIRInstant("2025-03-01T10:00:00+08:00")
    custodian = fhirreference.FHIRReference()
    custodian.identifier = identifier.Identifier({"system": HOSPITAL_ORG, "value": "XH-0301"})
    custodian.display = "心血管内科"
    doc.custodian = custodian
    context = documentreference.DocumentReferenceContext()
    context.practiceSetting = code(HOSPITAL_DEPT, "0301", "心血管内科")
    doc.context = context
    file = attachment.Attachment()
    file.contentType, file.title = "application/pdf", "出院小结.pdf"
    file.data = base64.b64encode(PDF).decode("ascii")
    content = documentreference.DocumentReferenceContent()
    content.attachment = file
    doc.content = [content]
    return doc


def smart_client(base: str, token: str) -> Any:
    from fhirclient import client

    smart = client.FHIRClient(settings={"app_id": "xiehe-emr", "api_base": f"{base}/fhir/r4/"})
    smart.server.session.headers["Authorization"] = f"Bearer {token}"  # a backend service's bearer token
    return smart


def test_fhirclient_posts_a_document_with_hospital_codes(cli: Cli, serving: Callable[[Any], Any]) -> None:
    from fhirclient.server import FHIRServer
    from requests import HTTPError

    interface_user(cli, "emr")
    token = json.loads(cli.run("token", "create", "emr", "--json").stdout)["token"]
    with serving(cli) as base:
        server: FHIRServer = smart_client(base, token).server
        with pytest.raises(HTTPError) as refused:
            smart_document("EMR-9001").create(server)
        answer = refused.value.response
        assert answer.status_code == 422
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome"
        (issue,) = outcome["issue"]
        assert issue["code"] == "code-invalid"
        assert issue["expression"] == ["DocumentReference.context.practiceSetting"]
        assert f"{HOSPITAL_DEPT}|0301" in issue["diagnostics"]
        assert f"{HOSPITAL_ORG}|XH-0301" in issue["diagnostics"]
        assert "medarchive department alias add" in issue["diagnostics"]
        assert records(cli) == []

        alias(cli, "fhir-practice-setting", "0301", "NK", "--system", HOSPITAL_DEPT)
        created = smart_document("EMR-9001").create(server)
        assert created["resourceType"] == "DocumentReference"
        (record,) = records(cli)
        assert record["department"] == "NK"
        practice = created["context"]["practiceSetting"]["coding"][0]
        assert (practice["system"], practice["code"]) == ("urn:medarchive:department", "NK")

        # The custodian alone (a system that sends no practiceSetting) maps too.
        alias(cli, "fhir-organization", "XH-0301", "BGS", "--system", HOSPITAL_ORG)
        doc = smart_document("EMR-9002")
        doc.context = None
        doc.create(server)
        assert sorted(r["department"] for r in records(cli)) == ["BGS", "NK"]


# --- HL7 v2: the hl7 library over MLLP ----------------------------------------------------------------


def hl7_message(control_id: str, *, point_of_care: str, facility: str, sending_facility: str) -> bytes:
    """An ORU^R01 built and edited with the `hl7` library, as an HIS interface engine would."""
    base = hl7_samples.build(
        hl7_samples.Sample(
            kind="ORU^R01^ORU_R01",
            document_type="",
            control_id=control_id,
            observations=[hl7_samples.text("血常规：白细胞 6.1×10^9/L")],
        )
    )
    message = hl7.parse(base)
    message.assign_field(sending_facility, "MSH", 1, 4)
    message.assign_field(point_of_care, "PV1", 1, 3, 1, 1)
    message.assign_field(facility, "PV1", 1, 3, 1, 4)
    return str(message).encode("utf-8")


@pytest.fixture
def hl7_listener(cli: Cli) -> Iterator[int]:
    interface_user(cli, "his")
    process = cli.popen("listen", "hl7", "--as", "his", "--port", "0")
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 120)
        line = process.stdout.readline() if ready else ""
        found = re.search(r"on 127\.0\.0\.1:(\d+)", line)
        assert found, line
        yield int(found.group(1))
    finally:
        process.terminate()
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def msa(reply: bytes) -> tuple[str, str, str]:
    ack = hl7.parse(reply[1:-2].decode("utf-8"))
    segment = ack.segment("MSA")
    err = str(ack.segment("ERR")) if any(str(s[0]) == "ERR" for s in ack) else ""
    return str(segment[1]), ack.unescape(str(segment[3])), err


def test_an_hl7_sender_with_its_own_ward_and_facility_codes(cli: Cli, hl7_listener: int) -> None:
    with MLLPClient("127.0.0.1", hl7_listener, encoding="utf-8") as client:
        code, text, err = msa(
            client.send_message(hl7_message("LIS0001", point_of_care="5W", facility="EAST", sending_facility="XHLIS"))
        )
        assert code == "AE"
        assert 'PV1-3.1 "5W" (under "EAST")' in text and 'MSH-4 "XHLIS"' in text
        assert "medarchive department alias add" in text
        assert "PV1^1^3^1^1" in err and "103^" in err
        assert records(cli) == []

        alias(cli, "hl7-location", "5W", "NK", "--system", "EAST")
        code, text, _ = msa(
            client.send_message(hl7_message("LIS0002", point_of_care="5W", facility="EAST", sending_facility="XHLIS"))
        )
        assert code == "AA", text
        # Another campus's 5W is not this one; the sending facility is mapped as the fallback.
        code, text, _ = msa(
            client.send_message(hl7_message("LIS0003", point_of_care="5W", facility="WEST", sending_facility="XHLIS"))
        )
        assert code == "AE" and '(under "WEST")' in text
        alias(cli, "hl7-facility", "XHLIS", "BGS")
        code, text, _ = msa(
            client.send_message(hl7_message("LIS0004", point_of_care="5W", facility="WEST", sending_facility="XHLIS"))
        )
        assert code == "AA", text
    assert sorted(r["department"] for r in records(cli)) == ["BGS", "NK"]


# --- DICOM: a pynetdicom SCU --------------------------------------------------------------------------


@pytest.fixture
def dicom_listener(cli: Cli) -> Iterator[int]:
    interface_user(cli, "pacs")
    # CT01 is accepted, but has no department of its own: every study is filed by its institution.
    process = cli.popen("listen", "dicom", "--as", "pacs", "--port", "0", "--calling-ae", "CT01")
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 120)
        line = process.stdout.readline() if ready else ""
        found = re.search(r"listening on [0-9.]+:(\d+)", line)
        assert found and "CT01→mapped" in line, line
        yield int(found.group(1))
    finally:
        process.terminate()
        try:
            process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def send(port: int, *datasets: Any) -> list[Any]:
    ae = AE(ae_title="CT01")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="MEDARCHIVE")
    assert assoc.is_established
    try:
        return [assoc.send_c_store(ds) for ds in datasets]
    finally:
        assoc.release()


def study(uid: str, sop: str, **names: str) -> Any:
    part10 = dicom_samples.ct_instance(
        StudyInstanceUID=uid, SOPInstanceUID=sop, PatientID="P77", SpecificCharacterSet="ISO_IR 192", **names
    )
    return pydicom.dcmread(io.BytesIO(part10))


def wait_for(cli: Cli, count: int) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + 120
    while len(found := records(cli)) < count:
        assert time.monotonic() < deadline, found
        time.sleep(0.5)
    return found


def test_a_pacs_study_is_filed_by_its_institution_or_refused_before_success(cli: Cli, dicom_listener: int) -> None:
    names = {"InstitutionName": "协和医院东院", "InstitutionalDepartmentName": "放射科"}
    (refused,) = send(
        dicom_listener, study("1.2.826.0.1.3680043.8.498.710", "1.2.826.0.1.3680043.8.498.710.1", **names)
    )
    assert refused.Status == 0xA700
    assert "InstitutionName" in refused.ErrorComment

    alias(cli, "dicom-institution", "放射科", "NK", "--system", "协和医院东院")
    alias(cli, "dicom-institution", "协和医院西院", "BGS")
    statuses = send(
        dicom_listener,
        study("1.2.826.0.1.3680043.8.498.711", "1.2.826.0.1.3680043.8.498.711.1", **names),
        study("1.2.826.0.1.3680043.8.498.712", "1.2.826.0.1.3680043.8.498.712.1", InstitutionName=" 协和医院西院"),
        study("1.2.826.0.1.3680043.8.498.713", "1.2.826.0.1.3680043.8.498.713.1", InstitutionName="Somewhere Else"),
    )
    assert [s.Status for s in statuses] == [0x0000, 0x0000, 0xA700]
    found = {r["metadata"]["study_uid"]: r["department"] for r in wait_for(cli, 2)}
    assert found == {"1.2.826.0.1.3680043.8.498.711": "NK", "1.2.826.0.1.3680043.8.498.712": "BGS"}
