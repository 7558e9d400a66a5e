"""DICOM instance → study facts: Chinese names in every declared (and undeclared) character set, dates, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.valuerep import PersonName

from medarchive.capture.dicom import samples
from medarchive.capture.dicom.extract import (
    CANNOT_UNDERSTAND,
    DOES_NOT_MATCH_SOP_CLASS,
    DicomProblem,
    EmptyInstance,
    MissingIdentifier,
    NotDicom,
    dicom_date,
    person_name,
    read_instance,
)


def charset_file(name: str) -> bytes:
    return Path(get_charset_files(name)[0]).read_bytes()


def instance_bytes(**changes: object) -> bytes:
    """CT_small.dcm with a zero preamble and the given attributes changed (None deletes)."""
    return samples.ct_instance(**changes)


def read(data: bytes):  # type: ignore[no-untyped-def]
    return read_instance(io.BytesIO(data))


def test_gb18030_name_is_decoded_and_the_ideographic_group_preferred() -> None:
    facts = read(charset_file("chrX2.dcm"))  # (0008,0005) GB18030, PatientName Wang^XiaoDong=王^小东=
    assert facts.patient_name == "王小东"
    assert facts.patient_id == "X2EXAMPLE"
    assert facts.study_uid == "1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0"
    assert facts.sop_instance_uid == "1.3.6.1.4.1.5962.1.1.0.1.1.1175775771.5714.0"
    assert facts.modality == "OT"


def test_utf8_name_is_decoded() -> None:
    assert read(charset_file("chrX1.dcm")).patient_name == "王小東"  # ISO_IR 192


def test_iso_2022_ideographic_names_are_decoded() -> None:
    assert read(charset_file("chrH31.dcm")).patient_name == "山田太郎"
    assert read(charset_file("chrI2.dcm")).patient_name == "洪吉洞"


def test_alphabetic_name_keeps_a_space_between_its_parts() -> None:
    assert read(charset_file("chrFren.dcm")).patient_name == "Buc Jérôme"


def test_undeclared_gbk_bytes_are_read_as_gb18030() -> None:
    # Blank the declared character set (same length, so the file stays valid): the name's bytes
    # are GB18030, which Latin-1 would turn into "Íõ^Ð¡¶«".
    data = charset_file("chrX2.dcm").replace(b"GB18030 ", b"        ", 1)
    assert read(data).patient_name == "王小东"


def test_undeclared_utf8_bytes_are_read_as_utf8() -> None:
    data = charset_file("chrX1.dcm").replace(b"ISO_IR 192", b"          ", 1)
    assert read(data).patient_name == "王小東"


def test_a_name_written_in_gb18030_by_pydicom_reads_back() -> None:
    data = instance_bytes(SpecificCharacterSet="GB18030", PatientName="张^三丰")
    assert read(data).patient_name == "张三丰"


def test_study_facts() -> None:
    data = instance_bytes(
        PatientSex="F",
        PatientBirthDate="19800215",
        AccessionNumber="A2025-001",
        StudyDescription="胸部平扫",
        SpecificCharacterSet="ISO_IR 192",
        StudyDate="20250301",
        AdmissionID="ZY0042",
        ModalitiesInStudy=["CT", "PT"],
    )
    facts = read(data)
    assert (facts.gender, facts.birth_date, facts.study_date) == ("女", "1980-02-15", "2025-03-01")
    assert (facts.accession_number, facts.study_description, facts.admission_id) == ("A2025-001", "胸部平扫", "ZY0042")
    assert facts.modality == "CT" and facts.modalities_in_study == ("CT", "PT")
    assert facts.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert (facts.series_number, facts.instance_number) == (1, 1)
    assert facts.source_ae == "CLUNIE1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("20250301", "2025-03-01"), ("2025.03.01", "2025-03-01"), ("20251301", ""), ("2025", ""), ("", ""), (None, "")],
)
def test_dicom_dates(raw: str | None, expected: str) -> None:
    assert dicom_date(raw) == expected


def test_person_name_edge_cases() -> None:
    assert person_name(None) == ""
    assert person_name(PersonName("")) == ""
    assert person_name(PersonName("^^^^")) == ""
    assert person_name(PersonName("Wang^XiaoDong=^")) == "Wang XiaoDong"  # empty ideographic group
    assert person_name(PersonName("李^四")) == "李四"  # CJK in the alphabetic group
    assert person_name(PersonName("Doe^John\x1b")) == "Doe John"  # control characters never reach a title


def test_empty_file() -> None:
    with pytest.raises(EmptyInstance, match="empty file"):
        read(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n" + b"x" * 300,
        "这不是DICOM".encode() * 20,
        b"\0" * 131,
        Path(get_testdata_file("no_meta.dcm")).read_bytes(),  # a bare dataset: not Part 10
    ],
    ids=["pdf", "text", "short", "no-part10-header"],
)
def test_not_dicom(data: bytes) -> None:
    with pytest.raises(NotDicom, match="not a DICOM file") as caught:
        read(data)
    assert caught.value.dimse_status == CANNOT_UNDERSTAND


def test_dicm_prefix_followed_by_garbage_has_no_study() -> None:
    with pytest.raises(DicomProblem):
        read(b"\0" * 128 + b"DICM" + b"\xff\x13garbage" * 40)


def test_missing_study_uid() -> None:
    with pytest.raises(MissingIdentifier, match=r"no StudyInstanceUID \(0020,000D\)") as caught:
        read(instance_bytes(StudyInstanceUID=None))
    assert caught.value.dimse_status == DOES_NOT_MATCH_SOP_CLASS
    assert caught.value.field == "StudyInstanceUID"


def test_missing_sop_instance_uid() -> None:
    with pytest.raises(MissingIdentifier, match="no SOPInstanceUID"):
        read(instance_bytes(SOPInstanceUID=None))


def test_a_study_uid_that_is_not_a_uid_is_refused() -> None:
    data = instance_bytes(StudyInstanceUID="1.2.3").replace(b"1.2.3\0", b"../../", 1)
    with pytest.raises(MissingIdentifier, match="is not a DICOM UID"):
        read(data)


def test_dicomdir_is_recognised() -> None:
    facts = read(Path(get_testdata_file("DICOMDIR")).read_bytes())
    assert facts.is_dicomdir
    assert facts.study_uid == ""


def test_pixel_data_is_not_needed() -> None:
    facts = read(Path(get_testdata_file("MR_truncated.dcm")).read_bytes())  # pixel data cut short
    assert facts.study_uid == "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=600))
def test_any_bytes_after_the_prefix_give_facts_or_a_dicom_problem(body: bytes) -> None:
    try:
        facts = read(b"\0" * 128 + b"DICM" + body)
    except DicomProblem as exc:
        assert exc.message
    else:
        assert facts.study_uid or facts.is_dicomdir


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0, max_value=2000))
def test_a_truncated_real_file_gives_facts_or_a_dicom_problem(cut: int) -> None:
    data = charset_file("chrX2.dcm")[:cut]
    try:
        facts = read(data)
    except DicomProblem:
        return
    assert facts.study_uid == "1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0"
