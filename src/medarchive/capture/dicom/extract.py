"""One DICOM instance (a Part 10 file) → the facts its study record needs. Pure: bytes in, facts out.

Text is decoded with the file's Specific Character Set (0008,0005): GB18030, GBK, ISO_IR 192
(UTF-8), ISO 2022 ... all through pydicom. Many Chinese modalities send GBK bytes and declare no
character set at all; then the bytes are tried as UTF-8 and else read as GB18030 (a superset of
GBK and GB2312) instead of turning the patient's name into Latin-1 mojibake.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import IO, Any

import pydicom
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.valuerep import PersonName

from medarchive.core.errors import ValidationError

# DIMSE statuses of the Storage service class (PS3.4 B.2.3), used by the C-STORE SCP.
CANNOT_UNDERSTAND = 0xC000
DOES_NOT_MATCH_SOP_CLASS = 0xA900
OUT_OF_RESOURCES = 0xA700

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_DEFER_BYTES = 1024  # large values (pixel data, encapsulated PDF) are not read: only the header matters here
_DEFAULT_CHARSETS = {"", "ISO_IR 6", "ISO 2022 IR 6"}
_GENDER = {"M": "男", "F": "女", "O": "其他"}

# Values are checked here where they matter (UIDs); pydicom's own warnings about a value's form
# would only repeat the value (a patient's name, say) into the logs.
pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE


class DicomProblem(ValidationError):
    """Input that is not a usable DICOM instance; `dimse_status` is what the SCP answers."""

    code = "dicom_invalid"
    dimse_status = CANNOT_UNDERSTAND


class NotDicom(DicomProblem):
    code = "not_dicom"


class EmptyInstance(NotDicom):
    code = "empty_file"


class MissingIdentifier(DicomProblem):
    code = "dicom_missing_uid"
    dimse_status = DOES_NOT_MATCH_SOP_CLASS


@dataclass(frozen=True)
class Instance:
    """What one instance says about itself and its study ("" when the file does not say)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str = ""
    series_number: int | None = None
    instance_number: int | None = None
    modality: str = ""
    modalities_in_study: tuple[str, ...] = ()
    patient_id: str = ""
    patient_name: str = ""
    birth_date: str = ""  # YYYY-MM-DD
    gender: str = ""
    accession_number: str = ""
    study_date: str = ""  # YYYY-MM-DD
    other_date: str = ""  # series/acquisition/content date, when the study date is missing
    study_description: str = ""
    admission_id: str = ""
    institution_name: str = ""  # (0008,0080)
    department_name: str = ""  # (0008,1040) Institutional Department Name
    source_ae: str = ""  # (0002,0016) of the file meta: who wrote the file

    @property
    def is_dicomdir(self) -> bool:
        return self.sop_class_uid == DICOMDIR_SOP_CLASS


_UNDEFINED = 0xFFFFFFFF  # "undefined length" (sequences, encapsulated pixel data)


def read_instance(stream: IO[bytes]) -> Instance:
    """Parse a DICOM Part 10 file (128-byte preamble, "DICM", file meta) up to its pixel data.

    Raises `NotDicom` for anything else (empty, text, a bare dataset without the Part 10 header)
    and `MissingIdentifier` when the Study or SOP Instance UID is absent or not a UID."""
    head = stream.read(132)
    if not head:
        raise EmptyInstance("empty file (0 bytes)", field="file")
    if len(head) < 132 or head[128:132] != b"DICM":
        raise NotDicom('not a DICOM file: no "DICM" prefix after the 128-byte preamble (DICOM Part 10)', field="file")
    stream.seek(0)
    try:
        ds = pydicom.dcmread(stream, stop_before_pixels=True, defer_size=_DEFER_BYTES)
    except InvalidDicomError as exc:
        raise NotDicom(f"not a DICOM file: {exc}", field="file") from None
    except Exception as exc:
        raise DicomProblem(f"the DICOM header cannot be read: {type(exc).__name__}: {exc}", field="file") from None
    _check_complete(ds)
    try:
        return facts(ds)
    except DicomProblem:
        raise
    except Exception as exc:
        raise DicomProblem(f"the DICOM header cannot be decoded: {type(exc).__name__}: {exc}", field="file") from None


def _check_complete(ds: Dataset) -> None:
    """pydicom keeps what it found of an element cut short by the end of the file (a UID "1" of a
    declared 40 bytes): a truncated file must be refused, not captured with wrong identifiers."""
    for tag, element in ds._dict.items():  # raw elements, before any value conversion
        value, length = getattr(element, "value", None), getattr(element, "length", None)
        if isinstance(value, bytes) and isinstance(length, int) and length != _UNDEFINED and len(value) < length:
            raise DicomProblem(
                f"the file is truncated: element {tag} declares {length} bytes and {len(value)} are present",
                field="file",
            )


def facts(ds: Dataset) -> Instance:
    """The study facts of a dataset read from a file (see `read_instance`)."""
    _guess_charset(ds)
    meta = getattr(ds, "file_meta", None)
    sop_class = _uid(ds, "SOPClassUID") or (_uid(meta, "MediaStorageSOPClassUID") if meta is not None else "")
    if sop_class == DICOMDIR_SOP_CLASS:
        return Instance(sop_instance_uid="", sop_class_uid=sop_class, study_uid="")
    sop_instance = _required_uid(ds, "SOPInstanceUID", "(0008,0018)")
    study = _required_uid(ds, "StudyInstanceUID", "(0020,000D)")
    modalities = ds.get("ModalitiesInStudy")
    return Instance(
        sop_instance_uid=sop_instance,
        sop_class_uid=sop_class,
        study_uid=study,
        series_uid=_uid(ds, "SeriesInstanceUID"),
        series_number=_int(ds.get("SeriesNumber")),
        instance_number=_int(ds.get("InstanceNumber")),
        modality=_text(ds.get("Modality")).upper(),
        modalities_in_study=tuple(_text(m).upper() for m in _values(modalities) if _text(m)),
        patient_id=_text(ds.get("PatientID")),
        patient_name=person_name(ds.get("PatientName")),
        birth_date=dicom_date(ds.get("PatientBirthDate")),
        gender=_GENDER.get(_text(ds.get("PatientSex")).upper(), ""),
        accession_number=_text(ds.get("AccessionNumber")),
        study_date=dicom_date(ds.get("StudyDate")),
        other_date=next(
            (d for d in (dicom_date(ds.get(k)) for k in ("SeriesDate", "AcquisitionDate", "ContentDate")) if d), ""
        ),
        study_description=_text(ds.get("StudyDescription")),
        admission_id=_text(ds.get("AdmissionID")),
        institution_name=_text(ds.get("InstitutionName")),
        department_name=_text(ds.get("InstitutionalDepartmentName")),
        source_ae=_text(meta.get("SourceApplicationEntityTitle")) if meta is not None else "",
    )


def person_name(value: Any) -> str:
    """A readable name: the ideographic group (王^小东 → 王小东) when there is one, else the
    alphabetic group; CJK names are joined without a space, others as "Family Given"."""
    if value is None or value == "":
        return ""
    name = value if isinstance(value, PersonName) else PersonName(str(value))
    groups = name.components
    ideographic = groups[1] if len(groups) > 1 else ""
    chosen = ideographic if ideographic.strip("^ ") else groups[0]
    parts = [_clean(p) for p in chosen.split("^")[:3] if _clean(p)]
    if not parts:
        return ""
    joiner = "" if any(_is_cjk(ch) for ch in "".join(parts)) else " "
    return joiner.join(parts)


def dicom_date(value: Any) -> str:
    """DA "20250301" (or the old "2025.03.01") → "2025-03-01"; "" when absent or not a date."""
    digits = re.sub(r"\D", "", _text(value))
    if len(digits) < 8:
        return ""
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat()
    except ValueError:
        return ""


def _guess_charset(ds: Dataset) -> None:
    """No declared character set but bytes above ASCII in the names: UTF-8 if they decode, else GB18030."""
    declared = ds.get_item(0x00080005)
    value = getattr(declared, "value", None) if declared is not None else None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    values = str(value or "").split("\\") if value is None or isinstance(value, str) else [str(v) for v in value]
    if any(v.strip() not in _DEFAULT_CHARSETS for v in values):
        return
    sample = b"".join(_raw(ds, tag) for tag in (0x00100010, 0x00081030, 0x00100020))
    if not any(byte > 0x7F for byte in sample):
        return
    try:
        sample.decode("utf-8")
        codec = "utf_8"
    except UnicodeDecodeError:
        codec = "gb18030"
    implicit, little = ds.original_encoding
    ds.set_original_encoding(implicit, little, character_encoding=[codec])


def _raw(ds: Dataset, tag: int) -> bytes:
    item = ds.get_item(tag)
    value = getattr(item, "value", None)
    return value if isinstance(value, bytes) else b""


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value.value if hasattr(value, "value") else value) if not isinstance(value, str) else [value]


def _uid(ds: Any, keyword: str) -> str:
    if ds is None:
        return ""
    return _text(ds.get(keyword)).rstrip("\x00 ")


def _required_uid(ds: Dataset, keyword: str, tag: str) -> str:
    value = _uid(ds, keyword)
    if not value:
        raise MissingIdentifier(f"no {keyword} {tag}: the instance cannot be filed under a study", field=keyword)
    if len(value) > 64 or not _UID.fullmatch(value):
        raise MissingIdentifier(f"{keyword} {tag} is not a DICOM UID: {value[:80]!r}", field=keyword)
    return value


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        value = "\\".join(str(v) for v in value)
    return _clean(str(value))


def _clean(value: str) -> str:
    """No control characters (they would fail the title check) and no padding."""
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cc").strip()


def _is_cjk(ch: str) -> bool:
    return "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" or "\uf900" <= ch <= "\ufaff" or ch >= "\U00020000"
