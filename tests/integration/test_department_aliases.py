"""Department aliases against the real database: the services (permissions, audit, validation, the
unique key on normalised values), the resolver's precedence, the REST API and the web pages, and each
connector (FHIR, HL7, DICOM) filing a message by a hospital's own code or refusing it with the codes."""

from __future__ import annotations

import base64
import json
from typing import Any

import hl7
import pytest
from django.test import Client

from medarchive.archiving.models import Record
from medarchive.capture.dicom.scp import Origin, department_of
from medarchive.capture.hl7 import samples
from medarchive.capture.hl7.handler import Handler
from medarchive.core import aliases
from medarchive.core.department_codes import Code, Kind
from medarchive.core.errors import Conflict, NotFound, PermissionDenied, Problems, ValidationError
from medarchive.core.models import Department, DepartmentAlias
from medarchive.core.services import add_department
from medarchive.security.models import AuditEntry
from medarchive.security.services import add_user, create_token

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-42"
HOSPITAL_DEPT = "http://hospital.example.cn/fhir/CodeSystem/dept"
HOSPITAL_ORG = "urn:oid:1.2.156.112635.1.1"
PDF = b"%PDF-1.7\n" + "出院小结 discharge summary ".encode() * 60


@pytest.fixture
def archivist(users: dict[str, Any]) -> Any:
    return users["archivist"]


# --- services ---------------------------------------------------------------------------------------


def test_an_archivist_adds_changes_and_removes_an_alias_each_audited(archivist: Any) -> None:
    alias = aliases.add_alias("fhir-practice-setting", " CARD ", "NK", system=HOSPITAL_DEPT, actor=archivist)
    assert (alias.kind, alias.system, alias.key, alias.department.code) == (
        "fhir-practice-setting",
        HOSPITAL_DEPT,
        "CARD",
        "NK",
    )
    aliases.change_alias(alias.pk, {"department": "BGS", "note": "心内科 → 院办 (test)"}, actor=archivist)
    alias.refresh_from_db()
    assert alias.department.code == "BGS" and alias.note == "心内科 → 院办 (test)"
    aliases.remove_alias(alias.pk, actor=archivist)
    assert not DepartmentAlias.objects.exists()
    entries = list(AuditEntry.objects.filter(action="department:map").order_by("seq"))
    assert [e.details["op"] for e in entries] == ["add", "change", "remove"]
    assert entries[1].details["before"]["department"] == "NK" and entries[1].details["department"] == "BGS"
    assert all(e.object_id == str(alias.pk) and e.actor_name == "archivist" for e in entries)


@pytest.mark.parametrize("role", ["sysadmin", "secadmin", "auditor", "officer", "clinician", "researcher", "viewer"])
def test_only_archivists_keep_the_table(users: dict[str, Any], archivist: Any, role: str) -> None:
    alias = aliases.add_alias("hl7-facility", "XH_HOSP", "NK", actor=archivist)
    before = AuditEntry.objects.count()
    actor = users[role]
    with pytest.raises(PermissionDenied):
        aliases.add_alias("hl7-facility", "OTHER", "NK", actor=actor)
    with pytest.raises(PermissionDenied):
        aliases.change_alias(alias.pk, {"department": "BGS"}, actor=actor)
    with pytest.raises(PermissionDenied):
        aliases.remove_alias(alias.pk, actor=actor)
    with pytest.raises(PermissionDenied):
        aliases.list_aliases(actor)
    assert DepartmentAlias.objects.get().department.code == "NK"
    assert AuditEntry.objects.count() == before


def test_every_problem_of_an_alias_is_reported_at_once_with_its_field(archivist: Any) -> None:
    with pytest.raises(Problems) as caught:
        aliases.add_alias("fhir-organization", "", "XX", actor=archivist)
    fields = {p.field: p.code for p in caught.value.problems}
    assert fields == {"key": "alias_required", "system": "alias_required", "department": "unknown_department"}
    with pytest.raises(ValidationError) as one:
        aliases.add_alias("fhir-organization", "ORG1", "NK", actor=archivist)  # FHIR needs the system
    assert (one.value.field, one.value.code) == ("system", "alias_required")
    with pytest.raises(ValidationError) as kind:
        aliases.add_alias("own", "NK", "NK", actor=archivist)
    assert kind.value.field == "kind"
    with pytest.raises(ValidationError) as facility:
        aliases.add_alias("hl7-facility", "X", "NK", system="Y", actor=archivist)
    assert (facility.value.field, facility.value.code) == ("system", "alias_not_allowed")
    with pytest.raises(ValidationError) as control:
        aliases.add_alias("hl7-location", "5W\x00", "NK", actor=archivist)
    assert control.value.field == "key"
    assert not DepartmentAlias.objects.exists()


def test_the_same_code_twice_is_a_conflict_after_normalisation(archivist: Any) -> None:
    aliases.add_alias("dicom-institution", "放射科", "NK", system="示范医院", actor=archivist)
    with pytest.raises(Conflict) as caught:
        aliases.add_alias("dicom-institution", "  放射科 ", "BGS", system="示范医院", actor=archivist)
    assert caught.value.field == "key"
    aliases.add_alias("dicom-institution", "ＣＴ  Room", "NK", actor=archivist)
    with pytest.raises(Conflict):
        aliases.add_alias("dicom-institution", "ct room", "BGS", actor=archivist)
    other = aliases.add_alias("dicom-institution", "MR Room", "BGS", actor=archivist)
    with pytest.raises(Conflict):
        aliases.change_alias(other.pk, {"key": "CT ROOM"}, actor=archivist)
    assert DepartmentAlias.objects.count() == 3


def test_unknown_alias_and_unknown_change_fields(archivist: Any) -> None:
    with pytest.raises(NotFound):
        aliases.remove_alias(999999, actor=archivist)
    alias = aliases.add_alias("hl7-facility", "XH", "NK", actor=archivist)
    with pytest.raises(ValidationError) as caught:
        aliases.change_alias(alias.pk, {"colour": "red"}, actor=archivist)
    assert caught.value.field == "colour"


def test_list_filters_by_kind_department_and_text(archivist: Any) -> None:
    aliases.add_alias("hl7-facility", "XH_HOSP", "NK", note="main campus", actor=archivist)
    aliases.add_alias("hl7-location", "5W", "BGS", actor=archivist)
    aliases.add_alias("dicom-institution", "放射科", "NK", actor=archivist)
    assert [a.key for a in aliases.list_aliases(archivist, kind="hl7-location")] == ["5W"]
    assert {a.key for a in aliases.list_aliases(archivist, department="NK")} == {"XH_HOSP", "放射科"}
    assert [a.key for a in aliases.list_aliases(archivist, search="campus")] == ["XH_HOSP"]
    assert [a.key for a in aliases.list_aliases(archivist, search="放射")] == ["放射科"]


# --- resolution ---------------------------------------------------------------------------------------


def test_resolution_takes_the_first_code_that_maps_and_skips_inactive_departments(archivist: Any) -> None:
    add_department("EK", "儿科", actor=None)
    aliases.add_alias("hl7-location", "5W", "EK", system="EAST", actor=archivist)
    aliases.add_alias("hl7-location", "5W", "BGS", actor=archivist)  # any facility
    aliases.add_alias("hl7-facility", "XH", "NK", actor=archivist)
    seen = [Code.of(Kind.HL7_LOCATION, "5W", "EAST", "PV1-3.1"), Code.of(Kind.HL7_FACILITY, "XH", "", "MSH-4")]
    assert aliases.resolve(seen).department == "EK"
    west = [Code.of(Kind.HL7_LOCATION, "5W", "WEST", "PV1-3.1"), Code.of(Kind.HL7_FACILITY, "XH", "", "MSH-4")]
    assert aliases.resolve(west).department == "BGS"  # the blank facility matches any
    Department.objects.filter(code="EK").update(active=False)
    assert aliases.resolve(seen).department == "BGS"
    Department.objects.filter(code="BGS").update(active=False)
    assert aliases.resolve(seen).department == "NK"
    with pytest.raises(aliases.UnmappedDepartment) as caught:
        aliases.resolve([Code.of(Kind.HL7_FACILITY, "YY", "", "MSH-4"), Code.of(Kind.OWN, "BGS", "", "PV1-10")])
    assert caught.value.details["codes"] == ['MSH-4 "YY"', 'PV1-10 "BGS"']
    assert caught.value.field == "department" and caught.value.code == "unmapped_department"


# --- REST API -----------------------------------------------------------------------------------------


@pytest.fixture
def api_tokens(users: dict[str, Any]) -> dict[str, str]:
    return {name: create_token(users[name], actor=None, name=name)[1] for name in ("archivist", "officer", "sysadmin")}


def call(client: Client, method: str, path: str, token: str, body: Any = None) -> Any:
    data = json.dumps(body, ensure_ascii=False) if body is not None else ""
    return client.generic(
        method,
        f"/api/v1/departments/aliases{path}",
        data,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_the_api_keeps_the_table(client: Client, api_tokens: dict[str, str]) -> None:
    token = api_tokens["archivist"]
    created = call(
        client,
        "POST",
        "",
        token,
        {"kind": "fhir-organization", "key": "ORG-7", "system": HOSPITAL_ORG, "department": "NK"},
    )
    assert created.status_code == 201, created.content
    alias = created.json()
    assert (alias["key"], alias["department"], alias["department_name"]) == ("ORG-7", "NK", "内科")
    assert call(client, "GET", "", token).json()[0]["id"] == alias["id"]
    assert call(client, "GET", "?kind=hl7-facility", token).json() == []
    assert call(client, "GET", f"/{alias['id']}", token).json()["system"] == HOSPITAL_ORG
    changed = call(client, "PATCH", f"/{alias['id']}", token, {"department": "BGS"})
    assert changed.status_code == 200 and changed.json()["department"] == "BGS"
    assert call(client, "DELETE", f"/{alias['id']}", token).status_code == 204
    gone = call(client, "GET", f"/{alias['id']}", token)
    assert gone.status_code == 404 and gone.json()["code"] == "alias_not_found"


def test_the_api_answers_problems(client: Client, api_tokens: dict[str, str]) -> None:
    token = api_tokens["archivist"]
    bad = call(client, "POST", "", token, {"kind": "fhir-organization", "key": "", "department": "XX"})
    assert bad.status_code == 422
    problem = bad.json()
    assert {e["field"] for e in problem["errors"]} == {"key", "system", "department"}
    assert set(problem) >= {"code", "message", "field"}
    body = {"kind": "hl7-facility", "key": "XH", "department": "NK"}
    assert call(client, "POST", "", token, body).status_code == 201
    again = call(client, "POST", "", token, body)
    assert again.status_code == 409 and again.json()["code"] == "alias_exists"
    for name in ("officer", "sysadmin"):
        refused = call(client, "POST", "", api_tokens[name], {**body, "key": "YY"})
        assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
        assert call(client, "GET", "", api_tokens[name]).status_code == 403
    assert client.get("/api/v1/departments/aliases").status_code == 401
    assert AuditEntry.objects.filter(action="department:map", result="denied").count() >= 2
    paths = client.get("/api/v1/openapi.json", HTTP_AUTHORIZATION=f"Bearer {token}").json()["paths"]
    declared = paths["/api/v1/departments/aliases"]["post"]["responses"]
    assert {"201", "403", "409", "422"} <= set(declared)


# --- the web pages ------------------------------------------------------------------------------------


@pytest.fixture
def web(client: Client, archivist: Any) -> Client:
    client.force_login(archivist)
    return client


def test_the_page_lists_adds_edits_and_deletes_with_a_confirmation(web: Client) -> None:
    page = web.get("/departments/aliases/")
    assert page.status_code == 200 and "部门代码映射" in page.content.decode()
    added = web.post(
        "/departments/aliases/", {"kind": "hl7-location", "key": "5W", "system": "", "department": "NK", "note": ""}
    )
    assert added.status_code == 302
    alias = DepartmentAlias.objects.get()
    listing = web.get("/departments/aliases/?kind=hl7-location").content.decode()
    assert "5W" in listing and "内科" in listing
    assert "5W" not in web.get("/departments/aliases/?kind=dicom-institution").content.decode().split("<tbody>")[1]
    edited = web.post(
        f"/departments/aliases/{alias.pk}/edit/",
        {"kind": "hl7-location", "key": "5W", "system": "EAST", "department": "BGS", "note": "东院"},
    )
    assert edited.status_code == 302
    alias.refresh_from_db()
    assert (alias.system, alias.department.code) == ("EAST", "BGS")
    confirm = web.get(f"/departments/aliases/{alias.pk}/delete/")
    assert confirm.status_code == 200 and DepartmentAlias.objects.exists()
    assert web.post(f"/departments/aliases/{alias.pk}/delete/").status_code == 302
    assert not DepartmentAlias.objects.exists()


def test_the_form_shows_each_error_beside_its_field(web: Client) -> None:
    answer = web.post(
        "/departments/aliases/", {"kind": "fhir-practice-setting", "key": "", "system": "", "department": ""}
    )
    assert answer.status_code == 422
    html = answer.content.decode()
    for field in ("key", "system", "department"):
        assert f'id="e-{field}"' in html, field
    assert 'id="a-key" name="key" value="" maxlength="200" required aria-invalid="true"' in html
    assert html.count("此项必填") == 3
    assert not DepartmentAlias.objects.exists()


def test_other_roles_are_refused_the_pages(client: Client, users: dict[str, Any], archivist: Any) -> None:
    alias = aliases.add_alias("hl7-facility", "XH", "NK", actor=archivist)
    client.force_login(users["officer"])
    assert client.get("/departments/aliases/").status_code == 403
    assert client.post(f"/departments/aliases/{alias.pk}/delete/").status_code == 403
    assert "部门代码映射" not in client.get("/").content.decode()
    assert DepartmentAlias.objects.exists()


# --- the connectors -----------------------------------------------------------------------------------


def fhir_document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
        "subject": {"identifier": {"system": "urn:oid:2.16.156.2", "value": "P0001"}},
        "date": "2025-03-01T10:00:00+08:00",
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "title": "出院小结.pdf",
                    "data": base64.b64encode(PDF).decode(),
                }
            }
        ],
    }
    doc.update(changes)
    return doc


@pytest.fixture
def emr_token(archive: Any) -> str:
    emr = add_user("emr", actor=None, role="interface", password=PASSWORD)
    return create_token(emr, actor=None, name="emr")[1]


def post_fhir(client: Client, token: str, doc: dict[str, Any]) -> Any:
    return client.generic(
        "POST",
        "/fhir/r4/DocumentReference",
        json.dumps(doc, ensure_ascii=False),
        content_type="application/fhir+json",
        CONTENT_TYPE="application/fhir+json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_fhir_files_by_practice_setting_in_the_hospitals_code_system(
    client: Client, emr_token: str, archivist: Any
) -> None:
    doc = fhir_document(
        context={"practiceSetting": {"coding": [{"system": HOSPITAL_DEPT, "code": "0301", "display": "心内科"}]}},
        custodian={"identifier": {"system": HOSPITAL_ORG, "value": "XH"}},
    )
    refused = post_fhir(client, emr_token, doc)
    assert refused.status_code == 422
    (issue,) = refused.json()["issue"]
    assert issue["code"] == "code-invalid"
    assert f"{HOSPITAL_DEPT}|0301" in issue["diagnostics"] and f"{HOSPITAL_ORG}|XH" in issue["diagnostics"]
    assert "medarchive department alias add" in issue["diagnostics"]
    assert not Record.objects.exists()
    aliases.add_alias("fhir-organization", "XH", "BGS", system=HOSPITAL_ORG, actor=archivist)
    assert post_fhir(client, emr_token, doc).status_code == 201
    assert Record.objects.get().department.code == "BGS"  # the custodian, as nothing more precise maps
    aliases.add_alias("fhir-practice-setting", "0301", "NK", system=HOSPITAL_DEPT, actor=archivist)
    again = post_fhir(client, emr_token, {**doc, "masterIdentifier": {"system": "urn:x", "value": "2"}})
    assert again.status_code == 201
    assert Record.objects.order_by("-created_at").first().department.code == "NK"  # practiceSetting first


def test_fhir_reads_a_contained_custodian_organization(client: Client, emr_token: str, archivist: Any) -> None:
    aliases.add_alias("fhir-organization", "4401", "NK", system=HOSPITAL_ORG, actor=archivist)
    doc = fhir_document(
        contained=[
            {"resourceType": "Organization", "id": "dept", "identifier": [{"system": HOSPITAL_ORG, "value": "4401"}]}
        ],
        custodian={"reference": "#dept"},
    )
    assert post_fhir(client, emr_token, doc).status_code == 201
    assert Record.objects.get().department.code == "NK"
    broken = fhir_document(custodian={"reference": "#nowhere"})
    answer = post_fhir(client, emr_token, broken)
    assert answer.status_code == 422
    assert any("names no contained Organization" in i["diagnostics"] for i in answer.json()["issue"])


def test_fhir_own_codes_need_no_alias_and_win(client: Client, emr_token: str, archivist: Any) -> None:
    aliases.add_alias("fhir-organization", "XH", "BGS", system=HOSPITAL_ORG, actor=archivist)
    doc = fhir_document(
        context={"practiceSetting": {"coding": [{"system": "urn:medarchive:department", "code": "NK"}]}},
        custodian={"identifier": {"system": HOSPITAL_ORG, "value": "XH"}},
    )
    assert post_fhir(client, emr_token, doc).status_code == 201
    assert Record.objects.get().department.code == "NK"


def hl7_answer(handler: Handler, raw: bytes) -> tuple[str, str, Any]:
    ack = hl7.parse(handler(raw, "127.0.0.1:5000").decode())
    msa = ack.segment("MSA")
    return str(msa[1]), ack.unescape(str(msa[3])), ack


def test_hl7_files_by_point_of_care_and_facility_or_refuses_naming_them(archivist: Any) -> None:
    his = add_user("his", actor=None, role="interface", password=PASSWORD)
    handler = Handler(user_id=his.pk)
    pdf = samples.pdf(20 * 1024, seed="alias")
    code, text, ack = hl7_answer(handler, samples.mdm(pdf, location="5W^501^01^EAST", sending_facility="XH_EAST"))
    assert code == "AE"
    assert 'PV1-3.1 "5W" (under "EAST")' in text and 'MSH-4 "XH_EAST"' in text
    assert str(ack.segment("ERR")[2]) == "PV1^1^3^1^1" and str(ack.segment("ERR")[3]).startswith("103^")
    aliases.add_alias("hl7-facility", "XH_EAST", "BGS", actor=archivist)
    code, text, _ = hl7_answer(
        handler, samples.mdm(pdf, location="5W^501^01^EAST", sending_facility="XH_EAST", control_id="M2")
    )
    assert code == "AA", text
    assert Record.objects.get().department.code == "BGS"
    aliases.add_alias("hl7-location", "5W", "NK", system="EAST", actor=archivist)
    code, text, _ = hl7_answer(
        handler, samples.mdm(pdf, location="5W^501^01^EAST", sending_facility="XH_EAST", control_id="M3")
    )
    assert code == "AA", text
    assert Record.objects.order_by("-created_at").first().department.code == "NK"


def test_dicom_institution_names_resolve_before_the_calling_ae(archivist: Any) -> None:
    aliases.add_alias("dicom-institution", "放射科", "NK", system="示范医院东院", actor=archivist)
    aliases.add_alias("dicom-institution", "示范医院西院", "BGS", actor=archivist)
    mapped_only = Origin("CT01", "127.0.0.1:1", "")
    assert department_of("示范医院东院", "放射科", mapped_only) == "NK"
    assert department_of(" 示范医院西院 ", "", mapped_only) == "BGS"
    assert department_of("示范医院西院", "超声科", mapped_only) == "BGS"  # the department is unmapped: the institution
    assert department_of("Other", "", Origin("CT01", "127.0.0.1:1", "NK")) == "NK"  # the calling AE's
    with pytest.raises(aliases.UnmappedDepartment) as caught:
        department_of("Other Hospital", "Radiology", mapped_only)
    assert caught.value.details["codes"] == [
        'InstitutionalDepartmentName "radiology" (under "other hospital")',
        'InstitutionName "other hospital"',
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "hl7-facility", "key": "a\u0000", "department": "NK"}, "key"),
        ({"kind": "hl7-facility", "key": "a", "department": "N\u0000K"}, "department"),
        ({"kind": "hl7-facility", "key": "a", "department": "NK", "system": "s\u0000"}, "system"),
        ({"kind": "hl7-facility", "key": "a", "department": "NK", "note": "n\u0000"}, "note"),
    ],
)
def test_nul_in_any_field_is_a_problem_never_a_server_error(
    client: Client, api_tokens: dict[str, str], body: dict[str, str], field: str
) -> None:
    """PostgreSQL cannot store or even compare NUL: it must be refused before a query (found on PG by
    schemathesis as a 500)."""
    response = call(client, "POST", "", api_tokens["archivist"], body)
    assert response.status_code == 422 and response.json()["field"] == field, response.content
    for query in ("?q=%00", "?kind=%00", "?department=N%00K"):
        listed = client.get(
            f"/api/v1/departments/aliases{query}", HTTP_AUTHORIZATION=f"Bearer {api_tokens['archivist']}"
        )
        assert listed.status_code == 422, (query, listed.content)
    assert not DepartmentAlias.objects.exists()


def test_the_service_refuses_a_department_code_with_control_characters(users: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        aliases.add_alias("hl7-facility", "a", "N\u0000K", actor=users["archivist"])
    assert caught.value.code == "unknown_department"
    assert list(aliases.list_aliases(users["archivist"], search="\u0000")) == []
