"""The codes the FHIR endpoint understands and the ones it answers with. Pure data, no Django import.

fhir.resources checks structure, not ValueSets: every code below is checked here
(docs/capture/fhir.md lists them for the hospital's interface engineers).
"""

from __future__ import annotations

from dataclasses import dataclass

# Code systems and identifier systems of this archive. URNs: they name, they do not resolve.
CLASS_SYSTEM = "urn:medarchive:class"  # 门类/类目 codes of the classification scheme (BA-ZY ...)
DEPARTMENT_SYSTEM = "urn:medarchive:department"  # core.Department codes (NK, BGS ...)
SECURITY_SYSTEM = "urn:medarchive:security-level"  # 密级: 公开 内部 秘密 机密 绝密
FONDS_SYSTEM = "urn:medarchive:fonds"  # 全宗号
ELECTRONIC_NO_SYSTEM = "urn:medarchive:electronic-no"  # 电子文件号
ARCHIVAL_CODE_SYSTEM = "urn:medarchive:archival-code"  # 档号
RECORD_ID_SYSTEM = "urn:ietf:rfc:3986"  # value: urn:uuid:<system id>
EXT_DOCUMENT_DATE = "urn:medarchive:fhir:document-date"  # valueDate: the record's 日期 (文件形成日期)
EXT_SHA256 = "urn:medarchive:fhir:attachment-sha256"  # valueString: hex SHA-256 the archive keeps (CAP-04)
EXT_SM3 = "urn:medarchive:fhir:attachment-sm3"  # valueString: hex SM3

LOINC = "http://loinc.org"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


@dataclass(frozen=True)
class DocumentType:
    code: str
    display: str  # LOINC display name
    display_zh: str
    class_code: str  # the archive class a document of this type goes to, unless the category names one


# The ValueSet of DocumentReference.type: LOINC document codes → archive class. Codes whose
# setting is ambiguous (a lab report belongs to inpatient or outpatient records) map to the
# parent class BA; the sender names the exact class in `category` when it knows it.
DOCUMENT_TYPES: dict[str, DocumentType] = {
    t.code: t
    for t in (
        DocumentType("18842-5", "Discharge summary", "出院小结", "BA-ZY"),
        DocumentType("34117-2", "History and physical note", "入院记录", "BA-ZY"),
        DocumentType("11506-3", "Progress note", "病程记录", "BA-ZY"),
        DocumentType("11504-8", "Surgical operation note", "手术记录", "BA-ZY"),
        DocumentType("28570-0", "Procedure note", "操作记录", "BA-ZY"),
        DocumentType("59284-0", "Consent Document", "知情同意书", "BA-ZY"),
        DocumentType("34108-1", "Outpatient Note", "门诊病历", "BA-MZ"),
        DocumentType("34111-5", "Emergency department Note", "急诊病历", "BA-MZ"),
        DocumentType("11488-4", "Consult note", "会诊记录", "BA"),
        DocumentType("11502-2", "Laboratory report", "检验报告", "BA"),
        DocumentType("18748-4", "Diagnostic imaging study", "影像检查报告", "BA"),
        DocumentType("11526-1", "Pathology study", "病理报告", "BA"),
    )
}

# DocumentReference.status (R4 DocumentReferenceStatus): what a sender may post.
STATUS_CODES = ("current", "superseded", "entered-in-error")
ACCEPTED_STATUSES = ("current", "superseded")  # a document entered in error is not archived

# 密级 ↔ HL7 v3 Confidentiality. Incoming: our own system wins; else the HL7 code maps.
SECURITY_FROM_CONFIDENTIALITY = {"U": "公开", "L": "公开", "M": "内部", "N": "内部", "R": "秘密", "V": "机密"}
CONFIDENTIALITY_OF_SECURITY = {"公开": "U", "内部": "N", "秘密": "R", "机密": "V", "绝密": "V"}
CONFIDENTIALITY_DISPLAY = {
    "U": "unrestricted",
    "L": "low",
    "M": "moderate",
    "N": "normal",
    "R": "restricted",
    "V": "very restricted",
}

GENDERS = {"male": "男", "female": "女", "other": "其他", "unknown": "未知"}

# Spellings of a media type that name the same format as the identified one.
MIME_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/mp3": "audio/mpeg",
    "text/xml": "application/xml",
    "application/dicom+json": "application/dicom",
    "image/tif": "image/tiff",
    "x-application/hl7-v2+er7": "application/hl7-v2",
    "application/hl7-v2+er7": "application/hl7-v2",
}
# Text is told apart by heuristics (CSV needs a comma on line one): any declared text type
# matches any identified text format.
TEXT_TYPES = frozenset(
    {
        "text/plain",
        "text/csv",
        "application/xml",
        "application/json",
        "application/fhir+json",
        "application/fhir+xml",
        "application/hl7-v2",
        "text/html",
        "text/markdown",
    }
)


def is_patient_class(class_code: str) -> bool:
    """病案 classes: a DocumentReference for them must name its patient (subject)."""
    return class_code == "BA" or class_code.startswith("BA-")


def base_media_type(value: str) -> str:
    """`Application/PDF; charset=x` → `application/pdf`, with aliases resolved."""
    base = value.split(";", 1)[0].strip().lower()
    return MIME_ALIASES.get(base, base)


def media_types_match(declared: str, identified: str) -> bool:
    """Whether the declared contentType names the format identified from the content."""
    declared, identified = base_media_type(declared), base_media_type(identified)
    if declared == identified:
        return True
    if identified in TEXT_TYPES and (declared in TEXT_TYPES or declared.startswith("text/")):
        return True
    # An OFD is a zip; a sender calling it application/zip is not wrong about the bytes.
    return identified == "application/ofd" and declared == "application/zip"
