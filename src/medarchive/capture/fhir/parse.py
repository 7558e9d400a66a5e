"""FHIR R4 JSON → capture drafts. Pure logic (fhir.resources + stdlib), no Django import.

Order of checks, so a sender gets the most useful answer and nothing is decoded twice:

1. the body is a JSON object of the expected `resourceType` (400 otherwise);
2. inline base64 `data` is taken out of the resource before the structural validation with
   `fhir.resources.R4B` (pydantic would decode it a second time, and leniently: it silently
   drops everything after the first padding);
3. structure errors of fhir.resources → 400, one issue per error with its FHIRPath;
4. our own rules (ValueSets, status, subject of 病案 classes, contentType against the
   format identified from the bytes, declared size/hash) → 422, all issues at once;
5. the base64 is decoded once, strictly (RFC 4648 with padding; line breaks tolerated),
   and hashed with SHA-1 for `attachment.hash`.

Checks that need the database (class and department exist, permissions, Binary/<id>)
are the service's (`services.py`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from pydantic import ValidationError as PydanticError

from medarchive.capture.fhir import valueset as vs
from medarchive.capture.fhir.outcome import (
    BUSINESS_RULE,
    CODE_INVALID,
    CONFLICT,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    STRUCTURE,
    TOO_COSTLY,
    TOO_LONG,
    VALUE,
    FhirError,
    Issue,
    fhir_path,
)
from medarchive.capture.formats import HEAD_BYTES, identify
from medarchive.core.department_codes import Code, Kind
from medarchive.core.errors import ValidationError
from medarchive.core.filenames import clean_filename

MAX_ENTRIES = 100  # per transaction Bundle
MAX_CONTENTS = 20  # attachments per DocumentReference
MAX_ISSUES = 20  # an OperationOutcome lists at most this many structure errors
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PATIENT_REF = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
_BINARY_REF = re.compile(r"(?:^|/)Binary/([A-Za-z0-9\-.]{1,64})$")
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/ofd": ".ofd",
    "application/xml": ".xml",
    "application/json": ".json",
    "application/hl7-v2": ".hl7",
    "application/dicom": ".dcm",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
    "image/jp2": ".jp2",
    "image/png": ".png",
    "text/plain": ".txt",
    "text/csv": ".csv",
    "audio/wav": ".wav",
    "audio/mpeg": ".mp3",
    "video/mp4": ".mp4",
}


@dataclass
class Content:
    """Bytes of an attachment with what was computed from them in the one pass."""

    data: bytes
    sha1: str  # hex
    mime: str  # identified from the bytes
    format_name: str

    @classmethod
    def of(cls, data: bytes) -> Content:
        fmt = identify(data[:HEAD_BYTES])
        return cls(
            data=data, sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(), mime=fmt.mime, format_name=fmt.name
        )


@dataclass
class AttachmentDraft:
    expression: str  # e.g. DocumentReference.content[0].attachment
    content_type: str
    title: str
    creation: dt.datetime | None = None
    declared_size: int | None = None
    declared_sha1: str | None = None  # hex
    reference: str = ""  # "Binary/<id>" or "urn:uuid:..." when the bytes are elsewhere
    content: Content | None = None
    entry_url: str = ""  # the Binary entry of the transaction that held the bytes


@dataclass
class DocumentDraft:
    expression: str  # "DocumentReference" or "Bundle.entry[2].resource"
    class_code: str
    department_code: str  # the archive's own code, "" when the resource names none
    title: str
    date: dt.date
    responsible: str
    security_level: str
    metadata: dict[str, Any]
    master_identifier: str  # "system|value", or "" when absent
    attachments: list[AttachmentDraft]
    source: str = ""  # meta.source
    department_codes: list[Code] = field(default_factory=list)  # every department code, by precedence
    condition: str = ""  # a Bundle entry's request.ifNoneExist
    entry: int = -1  # its index in the transaction Bundle


@dataclass
class BinaryDraft:
    expression: str
    full_url: str
    content_type: str
    content: Content
    entry: int = -1


@dataclass
class Transaction:
    documents: list[DocumentDraft] = field(default_factory=list)
    binaries: list[BinaryDraft] = field(default_factory=list)
    identifier: str = ""  # Bundle.identifier "system|value"


# --- JSON and structure -------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or 400 naming what is wrong with it."""
    if not body.strip():
        raise FhirError.of(400, STRUCTURE, "the request body is empty; send a FHIR resource as JSON")
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise FhirError.of(400, STRUCTURE, "the request body is not UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise FhirError.of(400, STRUCTURE, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise FhirError.of(400, STRUCTURE, f"invalid JSON: {exc}") from None
    except RecursionError:
        raise FhirError.of(400, STRUCTURE, f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
    if _too_deep(value):
        raise FhirError.of(400, STRUCTURE, f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(value, dict):
        raise FhirError.of(400, STRUCTURE, f"the body must be a JSON object (a FHIR resource), not {_kind(value)}")
    return value


MAX_DEPTH = 64  # FHIR resources nest a dozen levels; validators recurse, so refuse what could exhaust the stack


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def resource_type(raw: Any, expression: str) -> str:
    kind = raw.get("resourceType") if isinstance(raw, dict) else None
    if not isinstance(kind, str) or not kind:
        raise FhirError.of(400, REQUIRED, "the resource has no resourceType", f"{expression}.resourceType")
    return kind


def expect_type(raw: dict[str, Any], expected: str, expression: str) -> None:
    kind = resource_type(raw, expression)
    if kind != expected:
        raise FhirError.of(
            400, INVALID, f"expected a {expected} resource, got resourceType {kind!r}", f"{expression}.resourceType"
        )


def _validate(model: Any, raw: dict[str, Any], expression: str) -> Any:
    """fhir.resources structure validation; its errors → 400 with one issue each."""
    try:
        return model.model_validate(raw)
    except PydanticError as exc:
        issues = []
        for err in exc.errors()[:MAX_ISSUES]:
            code = REQUIRED if err["type"] in {"missing", "model_field_validation.missing"} else STRUCTURE
            where = fhir_path(expression, tuple(err["loc"]))
            issues.append(Issue(code, f"{where}: {err['msg']}", where))
        raise FhirError(400, issues) from None
    except (KeyError, TypeError, ValueError) as exc:  # e.g. a contained resource of an unknown type
        raise FhirError.of(400, STRUCTURE, f"{expression}: not a valid R4 resource ({exc})", expression) from None


def decode_base64(text: Any, expression: str) -> bytes:
    """Strict RFC 4648 base64 (padding required, nothing after it); whitespace between groups,
    which FHIR's base64Binary allows, is tolerated. One decode, no copies beyond the result."""
    if not isinstance(text, str):
        raise FhirError.of(400, STRUCTURE, f"{expression} must be a base64 string", expression)
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as first:
        reason = str(first)
    compact = "".join(text.split())
    if compact != text:
        try:
            return binascii.a2b_base64(compact, strict_mode=True)
        except (binascii.Error, ValueError) as second:
            reason = str(second)
    raise FhirError.of(400, VALUE, f"{expression} is not valid base64: {reason}", expression)


# --- attachments ----------------------------------------------------------------------------------


def _take(raw: dict[str, Any], key: str) -> tuple[dict[str, Any], Any]:
    """A shallow copy of `raw` without `key`, and the value taken out."""
    copy = dict(raw)
    return copy, copy.pop(key, None)


def check_content(
    att: AttachmentDraft,
    *,
    size: int,
    sha1: str,
    mime: str,
    format_name: str,
    limit: int,
    issues: list[Issue],
) -> None:
    """The bytes against what the attachment says about them (size, hash, contentType)."""
    where = att.expression
    if size == 0:
        issues.append(Issue(REQUIRED, f"{where}: the attachment is empty (0 bytes)", f"{where}.data"))
        return
    if size > limit:
        raise FhirError.of(
            413, TOO_LONG, f"{where}: the attachment has {size} bytes; the limit is {limit}", f"{where}.data"
        )
    if att.declared_size is not None and att.declared_size != size:
        issues.append(
            Issue(VALUE, f"{where}.size says {att.declared_size} bytes but the content has {size}", f"{where}.size")
        )
    if att.declared_sha1 is not None and att.declared_sha1 != sha1:
        issues.append(Issue(VALUE, f"{where}.hash is not the SHA-1 of the content", f"{where}.hash"))
    if att.content_type and not vs.media_types_match(att.content_type, mime):
        issues.append(
            Issue(
                VALUE,
                f"{where}.contentType is {att.content_type} but the content is {format_name} ({mime})",
                f"{where}.contentType",
            )
        )


def check_bytes(att: AttachmentDraft, content: Content, limit: int, *, issues: list[Issue]) -> None:
    check_content(
        att,
        size=len(content.data),
        sha1=content.sha1,
        mime=content.mime,
        format_name=content.format_name,
        limit=limit,
        issues=issues,
    )


def _attachment(
    index: int, raw: Any, model: Any, expression: str, limit: int, *, issues: list[Issue], in_bundle: bool
) -> AttachmentDraft | None:
    where = f"{expression}.content[{index}].attachment"
    raw_att = raw.get("attachment") if isinstance(raw, dict) else None
    data = raw_att.get("data") if isinstance(raw_att, dict) else None
    att = model.attachment
    draft = AttachmentDraft(
        expression=where,
        content_type=att.contentType or "",
        title=att.title or "",
        creation=att.creation if isinstance(att.creation, dt.datetime) and att.creation.tzinfo else None,
        declared_size=att.size,
    )
    raw_hash = raw_att.get("hash") if isinstance(raw_att, dict) else None
    if raw_hash is not None:
        digest = decode_base64(raw_hash, f"{where}.hash")
        if len(digest) != 20:
            issues.append(Issue(VALUE, f"{where}.hash must be a base64 SHA-1 digest (20 bytes)", f"{where}.hash"))
        else:
            draft.declared_sha1 = digest.hex()
    if not draft.content_type:
        issues.append(Issue(REQUIRED, f"{where}.contentType is required", f"{where}.contentType"))
    if data is not None and att.url:
        issues.append(Issue(INVALID, f"{where}: give data or url, not both", where))
        return None
    if data is None and not att.url:
        issues.append(Issue(REQUIRED, f"{where}: the attachment has neither data nor url", f"{where}.data"))
        return None
    if data is not None:
        content = Content.of(decode_base64(data, f"{where}.data"))
        check_bytes(draft, content, limit, issues=issues)
        draft.content = content
    else:
        url = str(att.url)
        match = _BINARY_REF.search(url)
        if url.startswith("urn:uuid:") and in_bundle:
            draft.reference = url
        elif match is not None and not url.startswith(("urn:", "http:", "https:")):
            draft.reference = f"Binary/{match.group(1)}"
        else:
            hint = "a Binary entry of this transaction (urn:uuid:...)" if in_bundle else "Binary/<id>"
            issues.append(
                Issue(
                    NOT_SUPPORTED,
                    f"{where}.url must reference {hint}; the archive does not fetch content from URLs",
                    f"{where}.url",
                )
            )
            return None
    return draft


def file_name(att: AttachmentDraft, index: int, mime: str) -> str:
    """The stored file name: the attachment's title when it is a usable name, else document-N.ext."""
    if att.title:
        return att.title
    return f"document-{index + 1}{_EXTENSIONS.get(mime, '.bin')}"


# --- DocumentReference ---------------------------------------------------------------------------


def parse_document(
    raw: dict[str, Any], *, expression: str, tz: dt.tzinfo, limit: int, in_bundle: bool = False
) -> DocumentDraft:
    expect_type(raw, "DocumentReference", expression)
    stripped = dict(raw)
    contents = raw.get("content")
    if isinstance(contents, list):
        stripped["content"] = [_without_data(c) for c in contents]
    model = _validate(DocumentReference, stripped, expression)
    issues: list[Issue] = []
    _check_status(model, expression, issues)
    class_code = _class_code(model, expression, issues)
    metadata = _patient(model, expression, issues)
    if class_code and vs.is_patient_class(class_code) and not metadata.get("patient_id"):
        issues.append(
            Issue(
                REQUIRED,
                f"{expression}.subject: a {class_code} document must name its patient "
                "(subject.identifier, Patient/<id> or a contained Patient)",
                f"{expression}.subject",
            )
        )
    date = _date(model, expression, tz, issues)
    metadata |= _context(model, class_code, tz)
    loinc = _loinc(model)
    if loinc:
        metadata["document_type"] = loinc
    master = _identifier_text(model.masterIdentifier)
    if master:
        if len(master) > 200:
            issues.append(
                Issue(VALUE, "masterIdentifier is longer than 200 characters", f"{expression}.masterIdentifier")
            )
        metadata["external_id"] = master[:200]
    if not model.content:
        issues.append(
            Issue(REQUIRED, f"{expression}.content: at least one attachment is required", f"{expression}.content")
        )
    elif len(model.content) > MAX_CONTENTS:
        issues.append(
            Issue(
                TOO_COSTLY,
                f"{expression}.content: at most {MAX_CONTENTS} attachments per document",
                f"{expression}.content",
            )
        )
    attachments = []
    for i, item in enumerate(model.content or []):
        draft = _attachment(
            i,
            contents[i] if isinstance(contents, list) else None,
            item,
            expression,
            limit,
            issues=issues,
            in_bundle=in_bundle,
        )
        if draft is not None:
            attachments.append(draft)
    _check_names(attachments, issues)
    title = _title(model, attachments)
    if not title:
        issues.append(
            Issue(
                REQUIRED,
                f"{expression}.description: the document needs a title (description, attachment.title or type.text)",
                f"{expression}.description",
            )
        )
    responsible = "、".join(a.display for a in model.author or [] if a.display)
    if len(responsible) > 200:
        issues.append(Issue(VALUE, "the author names are longer than 200 characters", f"{expression}.author"))
    security = _security_level(model, expression, issues)
    department, department_codes = _department(model, expression, issues)
    if issues:
        raise FhirError(422, issues)
    assert date is not None
    return DocumentDraft(
        expression=expression,
        class_code=class_code,
        department_code=department,
        department_codes=department_codes,
        title=title[:500],
        date=date,
        responsible=responsible,
        security_level=security,
        metadata=metadata,
        master_identifier=master,
        attachments=attachments,
        source=str(model.meta.source) if model.meta and model.meta.source else "",
    )


def _without_data(content: Any) -> Any:
    if not isinstance(content, dict) or not isinstance(content.get("attachment"), dict):
        return content
    attachment = dict(content["attachment"])
    attachment.pop("data", None)
    attachment.pop("hash", None)
    return {**content, "attachment": attachment}


def _check_status(model: Any, expression: str, issues: list[Issue]) -> None:
    if model.status not in vs.STATUS_CODES:
        issues.append(
            Issue(
                CODE_INVALID,
                f"status {model.status!r} is not one of {', '.join(vs.STATUS_CODES)}",
                f"{expression}.status",
            )
        )
    elif model.status not in vs.ACCEPTED_STATUSES:
        issues.append(Issue(BUSINESS_RULE, "a document entered in error is not archived", f"{expression}.status"))
    doc_status = model.docStatus
    if doc_status is not None and doc_status not in {"preliminary", "final", "amended", "entered-in-error"}:
        issues.append(
            Issue(
                CODE_INVALID,
                f"docStatus {doc_status!r} is not a DocumentReference docStatus",
                f"{expression}.docStatus",
            )
        )
    elif doc_status == "entered-in-error":
        issues.append(Issue(BUSINESS_RULE, "a document entered in error is not archived", f"{expression}.docStatus"))


def _loinc(model: Any) -> str:
    codings = model.type.coding if model.type is not None and model.type.coding else []
    for coding in codings:
        if coding.system == vs.LOINC and coding.code in vs.DOCUMENT_TYPES:
            return str(coding.code)
    return ""


def _class_code(model: Any, expression: str, issues: list[Issue]) -> str:
    named = []
    for i, category in enumerate(model.category or []):
        for j, coding in enumerate(category.coding or []):
            if coding.system == vs.CLASS_SYSTEM:
                if not coding.code:
                    issues.append(
                        Issue(REQUIRED, "category coding has no code", f"{expression}.category[{i}].coding[{j}]")
                    )
                else:
                    named.append(str(coding.code))
    if len(set(named)) > 1:
        issues.append(
            Issue(
                CONFLICT, f"category names several classes: {', '.join(sorted(set(named)))}", f"{expression}.category"
            )
        )
        return ""
    from_type = ""
    codings = model.type.coding if model.type is not None and model.type.coding else []
    for j, coding in enumerate(codings):
        if coding.system != vs.LOINC:
            continue
        known = vs.DOCUMENT_TYPES.get(coding.code or "")
        if known is None:
            issues.append(
                Issue(
                    CODE_INVALID,
                    f"LOINC {coding.code} is not in the archive's document type ValueSet "
                    f"({', '.join(vs.DOCUMENT_TYPES)}); name the class in category instead",
                    f"{expression}.type.coding[{j}].code",
                )
            )
            return ""
        from_type = known.class_code
        break
    chosen = named[0] if named else ""
    if chosen and from_type and not (chosen == from_type or chosen.startswith(from_type + "-")):
        issues.append(
            Issue(
                CONFLICT,
                f"type says class {from_type} but category says {chosen}",
                f"{expression}.category",
            )
        )
        return ""
    if not chosen and not from_type:
        issues.append(
            Issue(
                REQUIRED,
                f"name the document type with a LOINC code of the archive's ValueSet or the archive class in "
                f"category (system {vs.CLASS_SYSTEM})",
                f"{expression}.type",
            )
        )
    return chosen or from_type


def _patient(model: Any, expression: str, issues: list[Issue]) -> dict[str, Any]:
    subject = model.subject
    if subject is None:
        return {}
    where = f"{expression}.subject"
    if subject.type and subject.type != "Patient":
        issues.append(Issue(INVALID, f"subject must be a Patient, not {subject.type}", f"{where}.type"))
        return {}
    out: dict[str, Any] = {}
    if subject.identifier is not None and subject.identifier.value:
        out["patient_id"] = subject.identifier.value
    if subject.display:
        out["patient_name"] = subject.display
    ref = subject.reference or ""
    if ref.startswith("#"):
        patient = next((r for r in model.contained or [] if getattr(r, "id", None) == ref[1:]), None)
        if patient is None or patient.get_resource_type() != "Patient":
            issues.append(Issue(INVALID, f"subject.reference {ref} names no contained Patient", f"{where}.reference"))
            return out
        out |= _contained_patient(patient, out)
    elif ref:
        match = _PATIENT_REF.search(ref)
        if match is None or ref.startswith("urn:"):
            issues.append(
                Issue(
                    NOT_SUPPORTED,
                    f"subject.reference {ref[:80]!r} is not supported: use Patient/<id>, #<contained Patient> "
                    "or subject.identifier",
                    f"{where}.reference",
                )
            )
            return out
        out.setdefault("patient_id", match.group(1))
    if len(str(out.get("patient_id", ""))) > 64:
        issues.append(Issue(VALUE, "the patient identifier is longer than 64 characters", where))
    if len(str(out.get("patient_name", ""))) > 100:
        issues.append(Issue(VALUE, "the patient name is longer than 100 characters", where))
    return out


def _contained_patient(patient: Any, known: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    identifiers = [i for i in patient.identifier or [] if i.value]
    medical_record = [i for i in identifiers if i.type and any(c.code == "MR" for c in i.type.coding or [])]
    chosen = (medical_record or identifiers or [None])[0]
    if chosen is not None and "patient_id" not in known:
        out["patient_id"] = chosen.value
    if patient.name and "patient_name" not in known:
        name = patient.name[0]
        text = name.text or (name.family or "") + "".join(name.given or [])
        if text:
            out["patient_name"] = text
    if patient.gender in vs.GENDERS:
        out["gender"] = vs.GENDERS[patient.gender]
    if patient.birthDate is not None:
        out["birth_date"] = str(patient.birthDate)[:10]
    return out


def _date(model: Any, expression: str, tz: dt.tzinfo, issues: list[Issue]) -> dt.date | None:
    if model.date is None:
        issues.append(Issue(REQUIRED, "date (when the document was made) is required", f"{expression}.date"))
        return None
    value: dt.date = model.date.astimezone(tz).date()
    return value


def _as_date(value: Any, tz: dt.tzinfo) -> str:
    if isinstance(value, dt.datetime):
        return (value.astimezone(tz) if value.tzinfo else value).date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value or "")
    return text if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else ""


def _context(model: Any, class_code: str, tz: dt.tzinfo) -> dict[str, Any]:
    context = model.context
    if context is None:
        return {}
    out: dict[str, Any] = {}
    period = context.period
    if period is not None:
        start, end = _as_date(period.start, tz), _as_date(period.end, tz)
        if class_code == "BA-ZY":
            out |= {k: v for k, v in (("admission_date", start), ("discharge_date", end)) if v}
        elif start:
            out["visit_date"] = start
    for encounter in context.encounter or []:
        if encounter.identifier is not None and encounter.identifier.value:
            out["visit_number"] = encounter.identifier.value[:64]
            break
    return out


def _identifier_text(identifier: Any) -> str:
    if identifier is None or not identifier.value:
        return ""
    return f"{identifier.system}|{identifier.value}" if identifier.system else str(identifier.value)


def _title(model: Any, attachments: list[AttachmentDraft]) -> str:
    """题名: description, else the type's text or ValueSet name, else the first attachment's title."""
    if model.description:
        return str(model.description).strip()
    if model.type is not None and model.type.text:
        return str(model.type.text).strip()
    code = _loinc(model)
    if code:
        return vs.DOCUMENT_TYPES[code].display_zh
    return next((att.title for att in attachments if att.title), "")


def _check_names(attachments: list[AttachmentDraft], issues: list[Issue]) -> None:
    seen: set[str] = set()
    for att in attachments:
        if not att.title:
            continue
        try:
            name = clean_filename(att.title).name
        except ValidationError as exc:
            issues.append(Issue(VALUE, f"{att.expression}.title: {exc.message}", f"{att.expression}.title"))
            continue
        if name in seen:
            issues.append(Issue(VALUE, f"two attachments are named {name!r}", f"{att.expression}.title"))
        seen.add(name)


def _security_level(model: Any, expression: str, issues: list[Issue]) -> str:
    ours, mapped = [], []
    for i, label in enumerate(model.securityLabel or []):
        for coding in label.coding or []:
            if coding.system == vs.SECURITY_SYSTEM:
                if coding.code not in vs.CONFIDENTIALITY_OF_SECURITY:
                    issues.append(
                        Issue(
                            CODE_INVALID,
                            f"securityLabel {coding.code!r} is not a 密级 ({'/'.join(vs.CONFIDENTIALITY_OF_SECURITY)})",
                            f"{expression}.securityLabel[{i}]",
                        )
                    )
                else:
                    ours.append(str(coding.code))
            elif coding.system == vs.CONFIDENTIALITY:
                if coding.code not in vs.SECURITY_FROM_CONFIDENTIALITY:
                    issues.append(
                        Issue(
                            CODE_INVALID,
                            f"securityLabel {coding.code!r} is not an HL7 Confidentiality code (U L M N R V)",
                            f"{expression}.securityLabel[{i}]",
                        )
                    )
                else:
                    mapped.append(vs.SECURITY_FROM_CONFIDENTIALITY[str(coding.code)])
    return (ours or mapped or ["内部"])[0]


def _department(model: Any, expression: str, issues: list[Issue]) -> tuple[str, list[Code]]:
    """The archive's own department code ("" when none), and every department code the document
    carries in the order of precedence (docs/capture/fhir.md): own codes, then practiceSetting in
    the hospital's code systems, then the custodian Organization's identifiers."""
    own: list[str] = []
    seen: list[Code] = []
    mapped: list[Code] = []
    setting = model.context.practiceSetting if model.context is not None else None
    where_setting = f"{expression}.context.practiceSetting"
    for coding in (setting.coding or []) if setting is not None else []:
        if not coding.code:
            continue
        if coding.system == vs.DEPARTMENT_SYSTEM:
            own.append(str(coding.code))
            seen.append(Code.of(Kind.OWN, str(coding.code), vs.DEPARTMENT_SYSTEM, where_setting))
        else:
            mapped.append(
                Code.of(Kind.FHIR_PRACTICE_SETTING, str(coding.code), str(coding.system or ""), where_setting)
            )
    for author in model.author or []:
        ident = author.identifier
        if ident is not None and ident.system == vs.DEPARTMENT_SYSTEM and ident.value:
            own.append(str(ident.value))
            seen.append(Code.of(Kind.OWN, str(ident.value), vs.DEPARTMENT_SYSTEM, f"{expression}.author.identifier"))
    for ident, where in _custodian_identifiers(model, expression, issues):
        if ident.system == vs.DEPARTMENT_SYSTEM:
            own.append(str(ident.value))
            seen.append(Code.of(Kind.OWN, str(ident.value), vs.DEPARTMENT_SYSTEM, where))
        else:
            mapped.append(Code.of(Kind.FHIR_ORGANIZATION, str(ident.value), str(ident.system or ""), where))
    if len(set(own)) > 1:
        issues.append(
            Issue(
                CONFLICT,
                f"the document names several departments: {', '.join(sorted(set(own)))}",
                where_setting,
            )
        )
        return "", []
    return (own[0] if own else ""), seen + mapped


def _custodian_identifiers(model: Any, expression: str, issues: list[Issue]) -> list[tuple[Any, str]]:
    """custodian.identifier, or the identifiers of the contained Organization it references."""
    custodian = model.custodian
    if custodian is None:
        return []
    where = f"{expression}.custodian"
    found = []
    if custodian.identifier is not None and custodian.identifier.value:
        found.append((custodian.identifier, f"{where}.identifier"))
    ref = custodian.reference or ""
    if ref.startswith("#"):
        org = next((r for r in model.contained or [] if getattr(r, "id", None) == ref[1:]), None)
        if org is None or org.get_resource_type() != "Organization":
            issues.append(
                Issue(INVALID, f"custodian.reference {ref} names no contained Organization", f"{where}.reference")
            )
            return found
        found += [(i, f"{where}.reference{ref}.identifier") for i in org.identifier or [] if i.value]
    return found


# --- Binary ------------------------------------------------------------------------------------


def parse_binary(raw: dict[str, Any], *, expression: str, limit: int, full_url: str = "") -> BinaryDraft:
    expect_type(raw, "Binary", expression)
    stripped, data = _take(raw, "data")
    model = _validate(Binary, stripped, expression)
    if data is None:
        raise FhirError.of(422, REQUIRED, f"{expression}.data: the Binary has no content", f"{expression}.data")
    content = Content.of(decode_base64(data, f"{expression}.data"))
    issues: list[Issue] = []
    check_bytes(AttachmentDraft(expression, model.contentType, ""), content, limit, issues=issues)
    if issues:
        raise FhirError(422, issues)
    return BinaryDraft(expression=expression, full_url=full_url, content_type=model.contentType, content=content)


# --- transaction Bundle ---------------------------------------------------------------------------


def parse_transaction(raw: dict[str, Any], *, tz: dt.tzinfo, limit: int) -> Transaction:
    """A transaction Bundle of Binary and DocumentReference entries, references resolved.
    Every entry is checked before anything is stored; all problems are reported together."""
    kind = resource_type(raw, "Bundle")
    if kind != "Bundle":
        raise FhirError.of(
            400, INVALID, f"POST to the base accepts a transaction Bundle, not {kind}", "Bundle.resourceType"
        )
    bundle_type = raw.get("type")
    if bundle_type != "transaction":
        raise FhirError.of(
            422,
            NOT_SUPPORTED,
            f"Bundle.type {bundle_type!r} is not supported: send a transaction (all entries or none are archived); "
            "post documents one by one to DocumentReference for independent outcomes",
            "Bundle.type",
        )
    entries = raw.get("entry")
    if not isinstance(entries, list) or not entries:
        raise FhirError.of(422, REQUIRED, "the transaction has no entries", "Bundle.entry")
    if len(entries) > MAX_ENTRIES:
        raise FhirError.of(422, TOO_COSTLY, f"a transaction may hold at most {MAX_ENTRIES} entries", "Bundle.entry")
    skeleton = {**raw, "entry": [_without_resource(e) for e in entries]}
    bundle = _validate(Bundle, skeleton, "Bundle")
    result = Transaction(identifier=_identifier_text(bundle.identifier))
    failures: list[FhirError] = []
    urls: dict[str, int] = {}
    for i, (entry, model) in enumerate(zip(entries, bundle.entry or [], strict=True)):
        try:
            _entry(i, entry, model, result, urls, tz=tz, limit=limit)
        except FhirError as exc:
            failures.append(exc)
    if not failures:
        _resolve(result, failures, limit)
    if failures:
        raise FhirError(min(f.status for f in failures), [i for f in failures for i in f.issues][: MAX_ISSUES * 2])
    return result


def _without_resource(entry: Any) -> Any:
    return {k: v for k, v in entry.items() if k != "resource"} if isinstance(entry, dict) else entry


def _entry(
    i: int, entry: dict[str, Any], model: Any, result: Transaction, urls: dict[str, int], *, tz: dt.tzinfo, limit: int
) -> None:
    where = f"Bundle.entry[{i}]"
    resource = entry.get("resource")
    if not isinstance(resource, dict):
        raise FhirError.of(400, REQUIRED, f"{where} has no resource", f"{where}.resource")
    kind = resource_type(resource, f"{where}.resource")
    request = model.request
    if request is None:
        raise FhirError.of(400, REQUIRED, f"{where}.request is required in a transaction", f"{where}.request")
    if request.method != "POST" or str(request.url).strip("/") != kind:
        raise FhirError.of(
            422,
            NOT_SUPPORTED,
            f"{where}.request must be POST {kind} (got {request.method} {request.url}); the archive only creates",
            f"{where}.request",
        )
    full_url = str(model.fullUrl or "")
    if full_url:
        if full_url in urls:
            raise FhirError.of(
                400, INVALID, f"{where}.fullUrl {full_url} repeats entry {urls[full_url]}", f"{where}.fullUrl"
            )
        urls[full_url] = i
    if kind == "Binary":
        if not full_url.startswith("urn:uuid:"):
            raise FhirError.of(
                400,
                REQUIRED,
                f"{where}.fullUrl must be a urn:uuid: the DocumentReference points at",
                f"{where}.fullUrl",
            )
        binary = parse_binary(resource, expression=f"{where}.resource", limit=limit, full_url=full_url)
        binary.entry = i
        result.binaries.append(binary)
    elif kind == "DocumentReference":
        doc = parse_document(resource, expression=f"{where}.resource", tz=tz, limit=limit, in_bundle=True)
        condition = request.ifNoneExist or ""
        if condition:
            match = re.fullmatch(r"identifier=(.+)", condition)
            if match is None:
                raise FhirError.of(
                    422,
                    NOT_SUPPORTED,
                    f"{where}.request.ifNoneExist supports identifier=system|value only",
                    f"{where}.request.ifNoneExist",
                )
            doc.condition = match.group(1)
        doc.entry = i
        result.documents.append(doc)
    else:
        raise FhirError.of(
            422,
            NOT_SUPPORTED,
            f"{where}: {kind} is not archived; a transaction holds Binary and DocumentReference",
            f"{where}.resource",
        )


def _resolve(result: Transaction, failures: list[FhirError], limit: int) -> None:
    """Point every urn:uuid attachment at its Binary entry; a Binary nobody uses is an error."""
    binaries = {b.full_url: b for b in result.binaries}
    used: set[str] = set()
    if not result.documents:
        failures.append(FhirError.of(422, REQUIRED, "the transaction has no DocumentReference", "Bundle.entry"))
    for doc in result.documents:
        issues: list[Issue] = []
        for att in doc.attachments:
            if not att.reference.startswith("urn:uuid:"):
                continue
            binary = binaries.get(att.reference)
            if binary is None:
                issues.append(
                    Issue(
                        INVALID,
                        f"{att.expression}.url {att.reference} names no Binary entry of this transaction",
                        f"{att.expression}.url",
                    )
                )
                continue
            used.add(att.reference)
            att.content = binary.content
            att.entry_url, att.reference = att.reference, ""
            check_bytes(att, binary.content, limit, issues=issues)
        if issues:
            failures.append(FhirError(422, issues))
    for binary in result.binaries:
        if binary.full_url not in used:
            failures.append(
                FhirError.of(
                    422,
                    BUSINESS_RULE,
                    f"{binary.expression}: no DocumentReference of the transaction uses this Binary",
                    binary.expression,
                )
            )


def sha1_base64(hex_digest: str) -> str:
    """attachment.hash: the base64 of the SHA-1 digest (R4)."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def valid_id(value: str) -> bool:
    return bool(_FHIR_ID.fullmatch(value))
