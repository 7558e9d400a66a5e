"""Realistic HL7 v2.5 messages as a hospital HIS/EMR/LIS sends them: for tests, benchmarks and docs. Pure.

`build(...)` returns the message text (segments joined by CR); `encode` turns it into the bytes
of the character set its MSH-18 declares.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from medarchive.capture.hl7.parse import CHARSETS


@dataclass
class Sample:
    kind: str = "MDM^T02^MDM_T02"
    control_id: str = "MSG00001"
    sending_application: str = "HIS"
    sending_facility: str = "XH_HOSP"
    version: str = "2.5"
    processing_id: str = "P"
    charset: str = "UNICODE UTF-8"
    sent_at: str = "20250301103000"
    patient_id: str = "P000123"
    family_name: str = "张"
    given_name: str = "三"
    birth_date: str = "19800101"
    gender: str = "M"
    patient_class: str = "I"
    location: str = "NK^301^02"
    service: str = ""
    attending: str = "D001^李^四"
    visit_number: str = "ZY2025000123"
    admitted_at: str = "20250220090000"
    discharged_at: str = "20250301100000"
    document_type: str = "DS^出院记录"
    document_at: str = "20250301100000"
    document_number: str = "DOC-2025-000123"
    document_status: str = "AU"
    observations: list[str] = field(default_factory=list)  # OBX segments without the "OBX|n|" prefix
    extra_segments: list[str] = field(default_factory=list)


def pdf(size: int = 50 * 1024, seed: str = "1") -> bytes:
    """A small well-formed-looking PDF padded to `size` bytes (content differs per seed)."""
    head = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% seed " + seed.encode() + b"\n"
    tail = b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    filler = (b"stream of a discharge summary page " * (size // 35 + 1))[: max(0, size - len(head) - len(tail))]
    return head + filler + tail


def ed(document: bytes, *, subtype: str = "PDF", kind: str = "AP") -> str:
    """OBX fields 2..11 of an ED observation: the document inline as base64."""
    data = base64.b64encode(document).decode("ascii")
    return f"ED|18842-5^出院小结^LN||^{kind}^{subtype}^Base64^{data}||||||F"


def text(value: str, *, code: str = "REPORT^报告") -> str:
    return f"TX|{code}||{value}||||||F"


def build(sample: Sample) -> str:
    s = sample
    kind = s.kind.split("^")
    msh = (
        f"MSH|^~\\&|{s.sending_application}|{s.sending_facility}|MEDARCHIVE|ARCHIVE|{s.sent_at}||{s.kind}|"
        f"{s.control_id}|{s.processing_id}|{s.version}|||AL|NE||{s.charset}"
    ).rstrip("|")
    segments = [msh, f"EVN|{kind[1] if len(kind) > 1 else ''}|{s.sent_at}"]
    segments.append(f"PID|1||{s.patient_id}^^^XH_HOSP^PI||{s.family_name}^{s.given_name}||{s.birth_date}|{s.gender}")
    segments.append(
        f"PV1|1|{s.patient_class}|{s.location}||||{s.attending}|||{s.service}|||||||||{s.visit_number}"
        + "|" * 25
        + f"{s.admitted_at}|{s.discharged_at}"
    )
    if kind[0] == "MDM":
        segments.append(
            f"TXA|1|{s.document_type}|AP|{s.document_at}|{s.attending}|{s.document_at}||||||{s.document_number}"
            f"|||||{s.document_status}"
        )
    if kind[0] == "ORU":
        segments.append(f"OBR|1|ORD0001|{s.document_number}|58410-2^血常规^LN|||{s.document_at}")
    segments.extend(f"OBX|{n}|{obx}" for n, obx in enumerate(s.observations, start=1))
    segments.extend(s.extra_segments)
    return "\r".join(segments) + "\r"


def encode(message: str, charset: str = "UNICODE UTF-8") -> bytes:
    """The bytes of `message` in the character set an MSH-18 value names (UTF-8 when empty or unknown)."""
    return message.encode(CHARSETS.get(re.sub(r"[\s\-_/]", "", charset).upper(), "utf-8"))


def mdm(document: bytes, **fields: object) -> bytes:
    """An MDM^T02 carrying `document` (a PDF by default) as base64 ED in OBX-5."""
    sample = Sample(**fields)  # type: ignore[arg-type]
    if not sample.observations:
        sample.observations = [ed(document)]
    return encode(build(sample), sample.charset)


def oru(lines: list[str], **fields: object) -> bytes:
    """An ORU^R01 whose report is text (one TX observation per line)."""
    sample = Sample(kind="ORU^R01^ORU_R01", document_type="", **fields)  # type: ignore[arg-type]
    if not sample.observations:
        sample.observations = [text(line) for line in lines]
    return encode(build(sample), sample.charset)


def adt_a03(**fields: object) -> bytes:
    """An ADT^A03 discharge."""
    sample = Sample(kind="ADT^A03^ADT_A03", **fields)  # type: ignore[arg-type]
    return encode(build(sample), sample.charset)
