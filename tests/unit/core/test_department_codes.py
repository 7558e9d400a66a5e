"""The pure department resolver: normalisation (hypothesis), precedence, narrowing systems, what a
refusal names, and alias validation."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from medarchive.core.department_codes import ALIAS_KINDS, Code, Kind, choose, describe, lookups, normalise, problems

names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(names)
def test_normalising_twice_changes_nothing(text: str) -> None:
    for kind in Kind:
        once = normalise(kind, text)
        assert normalise(kind, once) == once


@given(names)
def test_dicom_names_ignore_case_width_and_spacing(text: str) -> None:
    kind = Kind.DICOM_INSTITUTION
    variants = [
        text.upper(),
        text.lower(),
        f"  {text}\t",
        unicodedata.normalize("NFKD", text),
        text.replace(" ", "   "),
    ]
    for variant in variants:
        assert normalise(kind, variant) == normalise(kind, normalise(kind, variant))
    assert normalise(kind, f"  {text}\t") == normalise(kind, text)
    assert normalise(kind, text.replace(" ", "   ")) == normalise(kind, text)
    assert normalise(kind, unicodedata.normalize("NFKD", text)) == normalise(kind, text)


@given(names)
def test_a_normalised_dicom_name_has_no_outer_or_double_space(text: str) -> None:
    value = normalise(Kind.DICOM_INSTITUTION, text)
    assert value == value.strip() and "  " not in value


def test_examples_of_dicom_normalisation() -> None:
    kind = Kind.DICOM_INSTITUTION
    assert normalise(kind, "ＣＴ　Room ") == "ct room"  # full-width letters and ideographic space
    assert normalise(kind, " 放射科\n") == "放射科"
    assert normalise(kind, "Straße") == normalise(kind, "STRASSE")


@given(names)
def test_fhir_and_hl7_codes_are_only_trimmed(text: str) -> None:
    for kind in (Kind.FHIR_ORGANIZATION, Kind.FHIR_PRACTICE_SETTING, Kind.HL7_LOCATION, Kind.HL7_FACILITY, Kind.OWN):
        assert normalise(kind, text) == text.strip()


def test_the_first_code_that_maps_wins() -> None:
    codes = [
        Code.of(Kind.FHIR_PRACTICE_SETTING, "0301", "http://h/dept", "practiceSetting"),
        Code.of(Kind.FHIR_ORGANIZATION, "XH", "urn:oid:1.2", "custodian"),
    ]
    both = {("fhir-practice-setting", "http://h/dept", "0301"): "NK", ("fhir-organization", "urn:oid:1.2", "XH"): "BGS"}
    match = choose(codes, both, own=set())
    assert match is not None and (match.department, match.code) == ("NK", codes[0])
    only_custodian = {("fhir-organization", "urn:oid:1.2", "XH"): "BGS"}
    match = choose(codes, only_custodian, own=set())
    assert match is not None and match.department == "BGS"
    assert choose(codes, {}, own=set()) is None


def test_own_codes_need_no_alias_but_must_be_known() -> None:
    codes = [Code.of(Kind.OWN, "XX", "", "PV1-3.1"), Code.of(Kind.OWN, "NK", "", "PV1-10")]
    match = choose(codes, {}, own={"NK"})
    assert match is not None and (match.department, match.code.where) == ("NK", "PV1-10")
    assert lookups(codes) == []


def test_a_narrowing_system_falls_back_to_the_blank_one_but_fhir_systems_do_not() -> None:
    location = Code.of(Kind.HL7_LOCATION, "5W", "EAST")
    assert location.lookups() == [("hl7-location", "EAST", "5W"), ("hl7-location", "", "5W")]
    assert choose([location], {("hl7-location", "", "5W"): "NK"}, own=set()) is not None
    specific = choose([location], {("hl7-location", "", "5W"): "NK", ("hl7-location", "EAST", "5W"): "EK"}, set())
    assert specific is not None and specific.department == "EK"
    setting = Code.of(Kind.FHIR_PRACTICE_SETTING, "0301", "http://h/dept")
    assert setting.lookups() == [("fhir-practice-setting", "http://h/dept", "0301")]
    assert choose([setting], {("fhir-practice-setting", "", "0301"): "NK"}, own=set()) is None


def test_a_refusal_names_every_code_once_in_order() -> None:
    codes = [
        Code.of(Kind.HL7_LOCATION, "5W", "EAST", "PV1-3.1"),
        Code.of(Kind.OWN, "5W", "", "PV1-3.1"),
        Code.of(Kind.OWN, "MED", "", "PV1-10"),
        Code.of(Kind.HL7_FACILITY, "XH", "", "MSH-4"),
        Code.of(Kind.FHIR_ORGANIZATION, "XH", "urn:oid:1.2", "DocumentReference.custodian.identifier"),
        Code.of(Kind.HL7_FACILITY, "", "", "MSH-4"),
    ]
    assert describe(codes) == [
        'PV1-3.1 "5W" (under "EAST")',
        'PV1-3.1 "5W"',
        'PV1-10 "MED"',
        'MSH-4 "XH"',
        "DocumentReference.custodian.identifier urn:oid:1.2|XH",
    ]


def test_alias_problems_name_their_fields() -> None:
    assert problems("fhir-practice-setting", "0301", "http://h/dept") == []
    assert problems("hl7-facility", "XH", "") == []
    assert problems("dicom-institution", "放射科", "") == []
    assert problems("own", "NK", "") == [("kind", "unknown_kind")]
    assert problems("nonsense", "", "") == [("kind", "unknown_kind"), ("key", "required")]
    assert problems("fhir-organization", " ", "") == [("key", "required"), ("system", "required")]
    assert problems("hl7-facility", "XH", "X") == [("system", "not_allowed")]
    assert problems("hl7-location", "x" * 201, "a\x07") == [("key", "too_long"), ("system", "control")]
    assert set(ALIAS_KINDS) == set(Kind) - {Kind.OWN}
