"""Parsed HL7 facts → an intake `Item` (MDM, ORU) or a discharge event (ADT^A03).

The tables below are the whole mapping; docs/capture/hl7.md shows them field by field.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass

from django.utils import timezone

from medarchive.capture.hl7.errors import Location, error
from medarchive.capture.hl7.parse import Message
from medarchive.capture.intake import Item
from medarchive.capture.services import Description, IncomingFile
from medarchive.core import aliases
from medarchive.core.department_codes import Code, Kind

# PV1-2 patient class → archive class of the record a document or report becomes.
CLASS_BY_PATIENT_CLASS = {"I": "BA-ZY"}
DEFAULT_CLASS = "BA-MZ"
# PV1-2 patient class → duty event an ADT^A03 starts; other classes end a visit without a duty.
EVENT_BY_PATIENT_CLASS = {"I": "discharge"}

# PID-8 administrative sex (HL7 table 0001) → the archive's wording.
GENDERS = {"M": "男", "F": "女", "O": "其他", "U": "未知", "A": "不明确", "N": "不适用"}

DEFAULT_TITLES = {"MDM": "临床文档", "ORU": "检验检查报告"}

# Metadata key → (HL7 field it comes from in MDM / in ORU, schema maxLength): checked here so that a
# refusal names the field.
LIMITS = {
    "patient_id": (Location("PID", 3), Location("PID", 3), 64),
    "patient_name": (Location("PID", 5), Location("PID", 5), 100),
    "visit_number": (Location("PV1", 19), Location("PV1", 19), 64),
    "document_type": (Location("TXA", 2), Location("OBR", 4), 100),
    "external_id": (Location("TXA", 12), Location("OBR", 3), 200),
    "attending_physician": (Location("PV1", 7), Location("PV1", 7), 100),
    "source_system": (Location("MSH", 3), Location("MSH", 3), 50),
}

_UNSAFE_NAME = re.compile(r"[^\w\u3400-\u9fff.-]+")


@dataclass(frozen=True)
class Discharge:
    """What `record_event("discharge", …)` needs from an ADT^A03."""

    kind: str | None  # None: the visit ended but it was not an inpatient stay
    department_code: str
    subject_key: str
    subject_label: str
    occurred_at: dt.datetime
    source: str


def idempotency_key(message: Message) -> str:
    """`hl7:<MSH-3>:<MSH-10>`, or `hl7:<MSH-3>^<MSH-4>:<MSH-10>` when the sending facility is given:
    one application at two facilities (two hospitals of a group) has two control-ID counters. The
    door adds the content digest: the same key with other content is refused (AE 205), not a duplicate."""
    h = message.header
    sender = f"{h.sending_application}^{h.sending_facility}" if h.sending_facility else h.sending_application
    return f"hl7:{sender}:{h.control_id}"


def earlier_keys(message: Message) -> tuple[str, ...]:
    """The key of archives before the facility was part of it: a retry of a message received then."""
    h = message.header
    return (f"hl7:{h.sending_application}:{h.control_id}",) if h.sending_facility else ()


def department_codes(message: Message) -> list[Code]:
    """The department codes a message carries, in the order of precedence (docs/capture/hl7.md):
    PV1-3.1 through the archivist's aliases (under its PV1-3.4 facility, then under any), PV1-3.1
    and PV1-10 as the archive's own codes, then MSH-4 through the aliases."""
    visit = message.visit
    location = visit.location if visit else ""
    values = [
        (Kind.HL7_LOCATION, location, visit.facility if visit else "", "PV1-3.1"),
        (Kind.OWN, location, "", "PV1-3.1"),
        (Kind.OWN, visit.service if visit else "", "", "PV1-10"),
        (Kind.HL7_FACILITY, message.header.sending_facility, "", "MSH-4"),
    ]
    return aliases.codes_of(values)


def department_code(message: Message) -> str:
    """The department of a message (see `department_codes`); AE naming every code seen otherwise."""
    seen = department_codes(message)
    try:
        return aliases.resolve(seen).department
    except aliases.UnmappedDepartment as exc:
        named = "; ".join(exc.details.get("codes", []))
        how = (
            "use the archive's department codes or ask its archivist to map these "
            "(medarchive department alias add hl7-location|hl7-facility KEY DEPARTMENT)"
        )
        if not any(c.where.startswith("PV1") for c in seen):
            text = "department missing: PV1-3.1 (point of care) and PV1-10 (hospital service) are both empty"
            if named:
                text += f", and {named} maps to no department; {how}"
            raise error(text, location=Location("PV1", 10), code=101) from None
        first = Location("PV1", 3, 1) if seen[0].where == "PV1-3.1" else Location("PV1", 10)
        raise error(
            f"unknown department: {named} map to no department of this archive; {how}", location=first, code=103
        ) from None


def archive_class(message: Message) -> str:
    patient_class = message.visit.patient_class if message.visit else ""
    return CLASS_BY_PATIENT_CLASS.get(patient_class, DEFAULT_CLASS)


def to_item(message: Message) -> Item:
    """An MDM^T02/T04 or ORU^R01 → one record with its documents (or its report text) as files."""
    department = department_code(message)
    class_code = archive_class(message)
    h, patient, visit = message.header, message.patient, message.visit
    assert patient is not None
    inpatient = class_code == CLASS_BY_PATIENT_CLASS["I"]
    metadata: dict[str, object] = {
        "patient_id": patient.id,
        "patient_name": patient.name,
        "message_control_id": h.control_id,
        "source_system": h.sending_application,
        "hl7_message_type": h.kind,
    }
    if patient.birth_date is not None:
        metadata["birth_date"] = patient.birth_date.isoformat()
    if patient.gender:
        metadata["gender"] = GENDERS.get(patient.gender, patient.gender[:10])
    if visit is not None:
        _visit_metadata(metadata, message, inpatient=inpatient)
    if message.document_type or message.document_title:
        metadata["document_type"] = " ".join(p for p in (message.document_type, message.document_title) if p)
    if message.document_number:
        metadata["external_id"] = message.document_number
    if message.document_status:
        metadata["document_status"] = message.document_status
    _check_lengths(metadata, oru=h.message_type == "ORU")
    # No visit number in the title: titles show in lists and FHIR to readers for whom the visit
    # number (metadata, a personal identifier) is masked.
    title = message.document_title or DEFAULT_TITLES.get(h.message_type, h.kind)
    moment = message.document_at or message.event_at or message.sent_at
    key = idempotency_key(message)
    return Item(
        description=Description(
            class_code=class_code,
            department_code=department,
            title=title,
            date=_local(moment).date() if moment is not None else timezone.localdate(),
            metadata=metadata,
        ),
        files=_files(message, title),
        key=key,
        label=f"MSH-10 {h.control_id}",
        earlier_keys=earlier_keys(message),
    )


def _visit_metadata(metadata: dict[str, object], message: Message, *, inpatient: bool) -> None:
    visit = message.visit
    assert visit is not None
    if visit.visit_number:
        metadata["visit_number"] = visit.visit_number
    if visit.attending:
        metadata["attending_physician"] = visit.attending
    if visit.admitted_at is not None:
        metadata["admission_date" if inpatient else "visit_date"] = _local(visit.admitted_at).date().isoformat()
    if visit.discharged_at is not None and inpatient:
        metadata["discharge_date"] = _local(visit.discharged_at).date().isoformat()


def _check_lengths(metadata: dict[str, object], *, oru: bool) -> None:
    for key, (in_mdm, in_oru, limit) in LIMITS.items():
        where = in_oru if oru else in_mdm
        value = metadata.get(key)
        if isinstance(value, str) and len(value) > limit:
            raise error(f"{where} is longer than {limit} characters", location=where, code=104)


def _files(message: Message, title: str) -> list[IncomingFile]:
    stem = _UNSAFE_NAME.sub("_", message.document_title or message.header.message_type).strip("._") or "document"
    stem = stem[:80]
    files = []
    many = len(message.attachments) > 1
    for n, attachment in enumerate(message.attachments, start=1):
        name = f"{stem}-{n}.{attachment.extension}" if many else f"{stem}.{attachment.extension}"
        files.append(IncomingFile(name=name, stream=io.BytesIO(attachment.data)))
    if message.text:
        name = f"{stem}-报告文本.txt" if files else f"{stem}.txt"
        files.append(IncomingFile(name=name, stream=io.BytesIO(report_text(message, title).encode("utf-8"))))
    return files


def report_text(message: Message, title: str) -> str:
    """The text-only report as a file: what it is, for whom and when, then the OBX text in order."""
    h, patient, visit = message.header, message.patient, message.visit
    moment = message.document_at or message.event_at or message.sent_at
    lines = [title]
    if patient is not None:
        lines.append(f"患者标识: {patient.id}")
    if visit is not None and visit.visit_number:
        lines.append(f"就诊号: {visit.visit_number}")
    if moment is not None:
        lines.append(f"报告时间: {_local(moment):%Y-%m-%d %H:%M}")
    lines.append(f"来源: {h.source} {h.kind} {h.control_id}")
    lines.append("")
    lines.extend(message.text)
    return "\n".join(lines) + "\n"


def to_discharge(message: Message) -> Discharge:
    """An ADT^A03 → the duty event it starts (PV1-19 visit number; PV1-45, else EVN, else MSH-7)."""
    visit = message.visit
    assert visit is not None
    if not visit.patient_class:
        raise error("PV1-2 patient class is missing", location=Location("PV1", 2), code=101)
    if not visit.visit_number:
        raise error("PV1-19 visit number is missing", location=Location("PV1", 19), code=101)
    if len(visit.visit_number) > 64:
        raise error("PV1-19 is longer than 64 characters", location=Location("PV1", 19), code=104)
    moment = visit.discharged_at or message.event_at or message.sent_at
    if moment is None:
        raise error(
            "discharge date/time missing: PV1-45, EVN-6, EVN-2 and MSH-7 are all empty",
            location=Location("PV1", 45),
            code=101,
        )
    kind = EVENT_BY_PATIENT_CLASS.get(visit.patient_class)
    return Discharge(
        kind=kind,
        department_code=department_code(message),
        subject_key=visit.visit_number,
        subject_label=f"{'住院号' if kind else '就诊号'} {visit.visit_number}",
        occurred_at=_local(moment),
        source=f"{message.header.source} {message.header.kind} {message.header.control_id}".strip(),
    )


def _local(moment: dt.datetime) -> dt.datetime:
    """An HL7 time without an offset is the hospital's local time (settings.TIME_ZONE)."""
    if timezone.is_naive(moment):
        return timezone.make_aware(moment)
    return timezone.localtime(moment)
