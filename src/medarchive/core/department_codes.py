"""Which department a message belongs to, from the codes it carries. Pure: no Django import.

Hospital systems name departments in their own terms: a FHIR Organization identifier or a
practiceSetting coding of the hospital's code system, an HL7 point of care (PV1-3) or sending
facility (MSH-4), a DICOM Institution Name. The archivist keeps a table of aliases, each
(kind, system, key) → a department (`core.models.DepartmentAlias`); the archive's own
department codes need no alias.

Each connector lists the codes a message carries **in its order of precedence** (documented in
docs/capture/*.md and ADR 0017); `choose` takes the first that names an active department.
When none does, the caller refuses the message and names every code it saw (`describe`), so the
sender's interface engineer and the archivist know what to map.

Keys and systems are compared after `normalise`: trimmed everywhere; DICOM names (free text typed
at a modality) also NFKC-normalised (full-width letters, compatibility ideographs), with runs of
white space made one space and case-folded. FHIR and HL7 codes stay case-sensitive, as those
standards define them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

MAX_KEY = 200
MAX_SYSTEM = 200


class Kind(StrEnum):
    OWN = "own"  # the archive's own department code: never stored as an alias
    FHIR_PRACTICE_SETTING = "fhir-practice-setting"  # DocumentReference.context.practiceSetting: system|code
    FHIR_ORGANIZATION = "fhir-organization"  # custodian Organization identifier: system|value
    HL7_LOCATION = "hl7-location"  # PV1-3.1 point of care; system: PV1-3.4 facility (blank: any)
    HL7_FACILITY = "hl7-facility"  # MSH-4 sending facility (namespace ID, else universal ID)
    DICOM_INSTITUTION = "dicom-institution"  # Institutional Department Name or Institution Name


# The kinds an archivist maps (everything but the archive's own codes).
ALIAS_KINDS = tuple(k for k in Kind if k is not Kind.OWN)
# Kinds whose system only narrows the key: an alias with a blank system matches the key under any.
NARROWING = frozenset({Kind.HL7_LOCATION, Kind.DICOM_INSTITUTION})
# Kinds whose system must be blank.
WITHOUT_SYSTEM = frozenset({Kind.HL7_FACILITY, Kind.OWN})


def normalise(kind: Kind | str, text: str) -> str:
    """The form a key or system is stored and compared in."""
    text = (text or "").strip()
    if Kind(kind) is Kind.DICOM_INSTITUTION:
        text = " ".join(unicodedata.normalize("NFKC", text).split()).casefold()
    return text


@dataclass(frozen=True)
class Code:
    """One code a message carried: what kind, under which system, and where in the message."""

    kind: Kind
    key: str
    system: str = ""
    where: str = ""  # e.g. "PV1-3.1", "DocumentReference.custodian.identifier"

    @classmethod
    def of(cls, kind: Kind, key: str, system: str = "", where: str = "") -> Code:
        return cls(kind, normalise(kind, key), normalise(kind, system), where)

    def label(self) -> str:
        """How a refusal names it: `PV1-3.1 "5W" (PV1-3.4 "EAST")`, `practiceSetting http://x|CARD`."""
        if self.kind in (Kind.FHIR_PRACTICE_SETTING, Kind.FHIR_ORGANIZATION):
            value = f"{self.system}|{self.key}" if self.system else self.key
            return f"{self.where} {value}".strip()
        text = f'{self.where} "{self.key}"'.strip()
        if self.system:
            text += f' (under "{self.system}")'
        return text

    def lookups(self) -> list[tuple[str, str, str]]:
        """The alias rows (kind, system, key) that would map this code, the most specific first."""
        if self.kind is Kind.OWN or not self.key:
            return []
        rows = [(self.kind.value, self.system, self.key)]
        if self.system and self.kind in NARROWING:
            rows.append((self.kind.value, "", self.key))
        return rows


@dataclass(frozen=True)
class Match:
    department: str  # the department code
    code: Code  # the code that decided


def lookups(codes: Iterable[Code]) -> list[tuple[str, str, str]]:
    """Every alias row any of the codes could use (one query fetches them all)."""
    return [row for code in codes for row in code.lookups()]


def choose(codes: Iterable[Code], aliases: Mapping[tuple[str, str, str], str], own: Collection[str]) -> Match | None:
    """The first code, in the caller's order, that names a department.

    `aliases`: (kind, system, key) → department code, for the rows `lookups` asked for whose
    department is active; `own`: the active department codes among the OWN codes."""
    for code in codes:
        if code.kind is Kind.OWN:
            if code.key in own:
                return Match(code.key, code)
            continue
        for row in code.lookups():
            department = aliases.get(row)
            if department is not None:
                return Match(department, code)
    return None


def describe(codes: Iterable[Code]) -> list[str]:
    """Every code seen, once each, in the caller's order: for a refusal that says what to map."""
    seen: list[str] = []
    for code in codes:
        if code.key and (label := code.label()) not in seen:
            seen.append(label)
    return seen


def problems(kind: Kind | str, key: str, system: str) -> list[tuple[str, str]]:
    """What is wrong with an alias: (field, reason) pairs, the first per field. Reasons are English
    slugs the service turns into catalog messages."""
    if kind not in ALIAS_KINDS:
        return [("kind", "unknown_kind")] + ([] if normalise(Kind.OWN, key) else [("key", "required")])
    kind = Kind(kind)
    key, system = normalise(kind, key), normalise(kind, system)
    checks = [
        (not key, "key", "required"),
        (len(key) > MAX_KEY, "key", "too_long"),
        (_has_control(key), "key", "control"),
        (len(system) > MAX_SYSTEM, "system", "too_long"),
        (_has_control(system), "system", "control"),
        (bool(system) and kind in WITHOUT_SYSTEM, "system", "not_allowed"),
        (not system and kind in (Kind.FHIR_ORGANIZATION, Kind.FHIR_PRACTICE_SETTING), "system", "required"),
    ]
    found: dict[str, str] = {}
    for failed, field, reason in checks:
        if failed:
            found.setdefault(field, reason)
    return list(found.items())


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)
