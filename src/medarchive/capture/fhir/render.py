"""Records as FHIR R4 JSON: DocumentReference (USE-07), searchset and transaction-response Bundles,
OperationOutcome for the review findings, the CapabilityStatement.

Built as plain dicts (no model round trip on the hot path); the tests validate every shape with
fhir.resources.R4B.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from medarchive import __version__
from medarchive.archiving import metadata as metadata_schema
from medarchive.archiving.models import Record, RecordState
from medarchive.capture.fhir import valueset as vs
from medarchive.capture.fhir.outcome import INFORMATIONAL, Issue, operation_outcome
from medarchive.capture.fhir.parse import sha1_base64, valid_id
from medarchive.capture.findings import for_viewer
from medarchive.capture.models import Intake
from medarchive.security.models import User
from medarchive.security.permissions import can
from medarchive.security.roles import Action

DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
_FINAL = {RecordState.ACCEPTED, RecordState.ARCHIVED, RecordState.ON_HOLD, RecordState.DISPOSED}


def instant(value: Any) -> str:
    return str(timezone.localtime(value).isoformat(timespec="seconds"))


def document_reference(record: Record, *, actor: User, digests: dict[str, str], base: str) -> dict[str, Any]:
    """The record as the actor may see it; patient identifiers masked without RECORD_PATIENT_READ."""
    may_see_patient = can(actor, Action.RECORD_PATIENT_READ, record)
    meta = metadata_schema.masked(record.metadata, may_see_patient=may_see_patient, name=record.metadata_schema)
    if record.archival_code:
        master = {"system": vs.ARCHIVAL_CODE_SYSTEM, "value": record.archival_code}
    else:
        master = {"system": vs.ELECTRONIC_NO_SYSTEM, "value": record.electronic_no}
    identifiers = [
        {"system": vs.ELECTRONIC_NO_SYSTEM, "value": record.electronic_no},
        {"system": vs.RECORD_ID_SYSTEM, "value": f"urn:uuid:{record.pk}"},
    ]
    external = str(meta.get("external_id") or "")
    if external:
        system, _, value = external.rpartition("|")
        identifiers.append({"system": system, "value": value} if system else {"value": value})
    withdrawn = record.state == RecordState.WITHDRAWN
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": str(record.pk),
        "meta": {"lastUpdated": instant(record.updated_at)},
        "extension": [{"url": vs.EXT_DOCUMENT_DATE, "valueDate": record.date.isoformat()}],
        "masterIdentifier": master,
        "identifier": identifiers,
        "status": "entered-in-error" if withdrawn else "current",
        "docStatus": "entered-in-error" if withdrawn else ("final" if record.state in _FINAL else "preliminary"),
        "type": _type(record, meta),
        "category": [
            {
                "coding": [
                    {"system": vs.CLASS_SYSTEM, "code": record.archive_class.code, "display": record.archive_class.name}
                ]
            }
        ],
        "date": instant(record.created_at),
        "author": [{"display": record.responsible}],
        "custodian": {
            "identifier": {"system": vs.FONDS_SYSTEM, "value": record.fonds.code},
            "display": record.fonds.name,
        },
        "description": record.title,
        "securityLabel": [_security(record.security_level)],
        "content": [_content(c, digests, base, record) for c in record.components.all()],
        "context": _context(record, meta),
    }
    subject = _subject(meta)
    if subject is not None:
        doc["subject"] = subject
    return doc


def _type(record: Record, meta: dict[str, Any]) -> dict[str, Any]:
    known = vs.DOCUMENT_TYPES.get(str(meta.get("document_type") or ""))
    if known is None:
        return {"text": str(meta.get("document_type") or record.archive_class.name)}
    return {"coding": [{"system": vs.LOINC, "code": known.code, "display": known.display}], "text": known.display_zh}


def _security(level: str) -> dict[str, Any]:
    code = vs.CONFIDENTIALITY_OF_SECURITY.get(level, "N")
    return {
        "coding": [
            {"system": vs.CONFIDENTIALITY, "code": code, "display": vs.CONFIDENTIALITY_DISPLAY[code]},
            {"system": vs.SECURITY_SYSTEM, "code": level, "display": level},
        ]
    }


def _subject(meta: dict[str, Any]) -> dict[str, Any] | None:
    pid, name = str(meta.get("patient_id") or ""), str(meta.get("patient_name") or "")
    if not pid and not name:
        return None
    if metadata_schema.MASK in (pid, name):
        return {
            "type": "Patient",
            "display": metadata_schema.MASK,
            "extension": [{"url": DATA_ABSENT, "valueCode": "masked"}],
        }
    subject: dict[str, Any] = {"type": "Patient"}
    if pid:
        subject["identifier"] = {"value": pid}
        if valid_id(pid):
            subject["reference"] = f"Patient/{pid}"
    if name:
        subject["display"] = name
    return subject


def _content(component: Any, digests: dict[str, str], base: str, record: Record) -> dict[str, Any]:
    attachment: dict[str, Any] = {
        "extension": [
            {"url": vs.EXT_SHA256, "valueString": component.sha256},
            {"url": vs.EXT_SM3, "valueString": component.sm3},
        ],
        "contentType": component.mime_type,
        "url": f"{base}Binary/{record.pk}.{component.sequence}",
        "size": component.size,
        "title": component.filename,
    }
    sha1 = digests.get(component.sha256)
    if sha1:
        attachment["hash"] = sha1_base64(sha1)
    if component.created is not None:
        attachment["creation"] = instant(component.created)
    return {"attachment": attachment}


def _context(record: Record, meta: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {
        "practiceSetting": {
            "coding": [
                {"system": vs.DEPARTMENT_SYSTEM, "code": record.department.code, "display": record.department.name}
            ]
        }
    }
    start = meta.get("admission_date") or meta.get("visit_date")
    end = meta.get("discharge_date")
    period = {k: str(v) for k, v in (("start", start), ("end", end)) if v}
    if period:
        context["period"] = period
    if meta.get("visit_number"):
        context["encounter"] = [{"identifier": {"value": str(meta["visit_number"])}}]
    return context


def searchset(resources: list[dict[str, Any]], *, total: int, base: str, links: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": [{"relation": rel, "url": url} for rel, url in links.items()],
        "entry": [
            {"fullUrl": f"{base}DocumentReference/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def review_outcome(intake: Intake | None, actor: Any) -> dict[str, Any]:
    """The quality review at the door, for the sender: what was found and where the record is."""
    issues = []
    if intake is not None:
        for finding in for_viewer(intake.findings, actor):
            issues.append(
                Issue(
                    "business-rule",
                    f"{finding.get('rule')}: {finding.get('message')}",
                    severity="warning" if finding.get("severity") == "error" else "information",
                )
            )
        state = intake.get_state_display()
        issues.append(Issue(INFORMATIONAL, f"review state: {intake.state} ({state})", severity="information"))
    return operation_outcome(issues)


def capability_statement(base: str) -> dict[str, Any]:
    doc_params = [
        {"name": "patient", "type": "reference", "documentation": "Patient/<patient id> or the bare id"},
        {"name": "subject", "type": "reference", "documentation": "Patient/<patient id>"},
        {"name": "identifier", "type": "token", "documentation": "[system|]value: 电子文件号, 档号 or the sender's id"},
        {"name": "_count", "type": "number", "documentation": "page size, 1-200 (default 20)"},
        {"name": "_page", "type": "number", "documentation": "page number, from 1"},
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(timezone.now()),
        "kind": "instance",
        "software": {"name": "medarchive", "version": __version__},
        "implementation": {"description": "medarchive FHIR R4 capture endpoint", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [{"text": "Bearer token (medarchive token create)"}],
                    "description": "Authorization: Bearer <token>; the browser session with a CSRF token",
                },
                "resource": [
                    {
                        "type": "DocumentReference",
                        "interaction": [{"code": "create"}, {"code": "read"}, {"code": "search-type"}],
                        "conditionalCreate": True,
                        "searchParam": doc_params,
                    },
                    {"type": "Binary", "interaction": [{"code": "create"}, {"code": "read"}]},
                ],
                "interaction": [{"code": "transaction"}],
            }
        ],
    }
