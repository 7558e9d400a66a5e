"""Instances → studies: one record (件) per StudyInstanceUID, described from its instances. Pure.

A study's idempotency key is `dicom:<StudyInstanceUID>:<sha256 of its sorted SOPInstanceUIDs>`:
the same set of instances sent again is the same record (replayed, not captured twice); a study
sent again with instances added or missing is a different set and becomes its own record, linked
to the first by the same `study_uid` metadata (see docs/capture/dicom.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from medarchive.archiving import metadata as metadata_schema
from medarchive.capture.dicom.extract import Instance
from medarchive.capture.services import Description
from medarchive.core.department_codes import Code, Kind

T = TypeVar("T")

OUTPATIENT = "BA-MZ"  # 门(急)诊病案: the default, DICOM rarely says whether the patient was admitted
INPATIENT = "BA-ZY"  # 住院病案: the instances carry an Admission ID (0038,0010)
MAX_TITLE = 500


def study_key(study_uid: str, sop_instance_uids: Iterable[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(set(sop_instance_uids))).encode("ascii", "replace")).hexdigest()
    return f"dicom:{study_uid}:{digest}"


@dataclass
class Member(Generic[T]):
    """One instance and what carries its bytes (a path on import, an IncomingFile on the SCP)."""

    instance: Instance
    payload: T

    @property
    def filename(self) -> str:
        return f"{self.instance.sop_instance_uid}.dcm"


@dataclass
class Study(Generic[T]):
    uid: str
    members: list[Member[T]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return study_key(self.uid, (m.instance.sop_instance_uid for m in self.members))

    def ordered(self) -> list[Member[T]]:
        """Series by series, instance by instance: the order a viewer shows them."""
        return sorted(
            self.members,
            key=lambda m: (
                m.instance.series_number if m.instance.series_number is not None else 1 << 31,
                m.instance.series_uid,
                m.instance.instance_number if m.instance.instance_number is not None else 1 << 31,
                m.instance.sop_instance_uid,
            ),
        )

    def first(self, attribute: str) -> str:
        return next((v for m in self.ordered() if (v := getattr(m.instance, attribute))), "")

    @property
    def modality(self) -> str:
        found = {m.instance.modality for m in self.members if m.instance.modality}
        found |= {mod for m in self.members for mod in m.instance.modalities_in_study}
        return "/".join(sorted(found))

    def record_date(self, today: dt.date) -> dt.date:
        """The study date; else a series/acquisition/content date; else the day it arrived.
        An implausible date (future, before 1900) is not used here; it stays in the metadata,
        where the quality check flags it for the archivist instead of refusing the study."""
        for text in (self.first("study_date"), self.first("other_date")):
            if text:
                day = dt.date.fromisoformat(text)
                if day.year >= 1900 and day <= today:
                    return day
        return today

    @property
    def title(self) -> str:
        parts = [f"{self.modality or '影像'} 检查", self.first("study_description"), self.first("study_date")]
        return " ".join(p for p in parts if p)[:MAX_TITLE]

    @property
    def class_code(self) -> str:
        return INPATIENT if self.first("admission_id") else OUTPATIENT

    def department_codes(self) -> list[Code]:
        """The department codes of the study, by precedence (docs/capture/dicom.md): the
        Institutional Department Name (under its Institution Name, then under any), then the
        Institution Name, both through the archivist's `dicom-institution` aliases."""
        return department_codes(self.first("institution_name"), self.first("department_name"))

    def metadata(self, source_system: str = "") -> dict[str, Any]:
        values: dict[str, Any] = {
            "patient_id": self.first("patient_id"),
            "patient_name": self.first("patient_name"),
            "birth_date": self.first("birth_date"),
            "gender": self.first("gender"),
            "admission_no": self.first("admission_id"),
            "study_uid": self.uid,
            "accession_number": self.first("accession_number"),
            "modality": self.modality,
            "study_date": self.first("study_date"),
            "study_description": self.first("study_description"),
            "source_system": source_system or self.first("source_ae"),
        }
        properties = metadata_schema.schema()["properties"]
        # Cut to the schema's lengths: a value longer than DICOM allows must not cost the study.
        meta: dict[str, Any] = {k: v[: properties.get(k, {}).get("maxLength", len(v))] for k, v in values.items() if v}
        meta["instance_count"] = len(self.members)
        return meta

    def description(self, department_code: str, today: dt.date, *, source_system: str = "") -> Description:
        return Description(
            class_code=self.class_code,
            department_code=department_code,
            title=self.title,
            date=self.record_date(today),
            metadata=self.metadata(source_system),
        )


def department_codes(institution: str, department: str) -> list[Code]:
    kind = Kind.DICOM_INSTITUTION
    codes = []
    if department.strip():
        codes.append(Code.of(kind, department, institution, "InstitutionalDepartmentName"))
    if institution.strip():
        codes.append(Code.of(kind, institution, "", "InstitutionName"))
    return codes


class Gatherer(Generic[T]):
    """Collects instances into studies, refusing those that would corrupt one."""

    def __init__(self) -> None:
        self._studies: dict[str, Study[T]] = {}
        self._where: dict[str, str] = {}  # SOPInstanceUID → StudyInstanceUID

    def add(self, member: Member[T], *, replace: bool = False) -> tuple[str | None, T | None]:
        """Add an instance. Returns (why it was refused, or None; the payload it replaced, or None).

        The same SOPInstanceUID twice: refused, or with `replace` (a sender's retry on the same
        association) the newer copy wins. A PatientID different from the study's is refused."""
        instance = member.instance
        study = self._studies.get(instance.study_uid)
        earlier_study = self._where.get(instance.sop_instance_uid)
        if earlier_study is not None and earlier_study != instance.study_uid:
            return f"SOPInstanceUID {instance.sop_instance_uid} was already received in another study", None
        if study is not None and instance.patient_id:
            known = study.first("patient_id")
            if known and known != instance.patient_id:
                return f"PatientID differs from the other instances of study {instance.study_uid}", None
        if study is None:
            study = self._studies[instance.study_uid] = Study(instance.study_uid)
        if earlier_study is not None:
            index = next(
                i for i, m in enumerate(study.members) if m.instance.sop_instance_uid == instance.sop_instance_uid
            )
            if not replace:
                return f"SOPInstanceUID {instance.sop_instance_uid} appears twice", None
            replaced = study.members[index].payload
            study.members[index] = member
            return None, replaced
        study.members.append(member)
        self._where[instance.sop_instance_uid] = instance.study_uid
        return None, None

    @property
    def studies(self) -> list[Study[T]]:
        return list(self._studies.values())

    def __len__(self) -> int:
        return len(self._where)
