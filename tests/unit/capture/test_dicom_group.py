"""Instances → one study record: keys, grouping, refusals, title, date, class and metadata."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from medarchive.capture.dicom.extract import Instance
from medarchive.capture.dicom.group import INPATIENT, OUTPATIENT, Gatherer, Member, Study, study_key

TODAY = dt.date(2025, 6, 1)
STUDY = "1.2.826.0.1.3680043.8.498.1"


def inst(sop: str = "1.2.3.1", study: str = STUDY, **fields: object) -> Instance:
    base: dict[str, object] = {
        "sop_instance_uid": sop,
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
        "study_uid": study,
        "modality": "CT",
        "patient_id": "P001",
        "patient_name": "张三",
        "study_date": "2025-03-01",
        "study_description": "胸部平扫",
    }
    return Instance(**(base | fields))  # type: ignore[arg-type]


def study_of(*instances: Instance) -> Study[str]:
    gatherer: Gatherer[str] = Gatherer()
    for i in instances:
        assert gatherer.add(Member(i, i.sop_instance_uid)) == (None, None)
    (study,) = gatherer.studies
    return study


def test_key_names_the_study_and_hashes_the_sorted_instances() -> None:
    key = study_key(STUDY, ["1.2.3.2", "1.2.3.1"])
    assert key == study_key(STUDY, ["1.2.3.1", "1.2.3.2", "1.2.3.1"])
    assert key.startswith(f"dicom:{STUDY}:") and len(key.rsplit(":", 1)[1]) == 64
    assert key != study_key(STUDY, ["1.2.3.1"])
    assert key != study_key("1.2.3.9", ["1.2.3.2", "1.2.3.1"])
    assert len(study_key("1" * 64, ["2" * 64])) <= 200  # fits the idempotency key column


@given(st.lists(st.from_regex(r"[1-9][0-9]{0,5}(\.[0-9]{1,5}){1,4}", fullmatch=True), min_size=1, unique=True))
def test_key_does_not_depend_on_arrival_order(uids: list[str]) -> None:
    assert study_key(STUDY, uids) == study_key(STUDY, list(reversed(uids)))


def test_instances_are_grouped_per_study() -> None:
    gatherer: Gatherer[str] = Gatherer()
    for i in (inst("1.1"), inst("2.1", study="9.9"), inst("1.2"), inst("2.2", study="9.9"), inst("1.3")):
        assert gatherer.add(Member(i, i.sop_instance_uid)) == (None, None)
    assert [(s.uid, len(s.members)) for s in gatherer.studies] == [(STUDY, 3), ("9.9", 2)]
    assert len(gatherer) == 5


def test_the_same_instance_twice_is_refused_or_replaced() -> None:
    gatherer: Gatherer[str] = Gatherer()
    gatherer.add(Member(inst("1.1"), "first"))
    reason, replaced = gatherer.add(Member(inst("1.1"), "second"))
    assert reason == "SOPInstanceUID 1.1 appears twice" and replaced is None
    assert gatherer.add(Member(inst("1.1"), "retry"), replace=True) == (None, "first")
    assert [m.payload for m in gatherer.studies[0].members] == ["retry"]


def test_an_instance_already_seen_in_another_study_is_refused() -> None:
    gatherer: Gatherer[str] = Gatherer()
    gatherer.add(Member(inst("1.1"), "a"))
    reason, _ = gatherer.add(Member(inst("1.1", study="9.9"), "b"), replace=True)
    assert reason is not None and "another study" in reason
    assert [s.uid for s in gatherer.studies] == [STUDY]


def test_an_instance_of_another_patient_is_refused() -> None:
    gatherer: Gatherer[str] = Gatherer()
    gatherer.add(Member(inst("1.1"), "a"))
    reason, _ = gatherer.add(Member(inst("1.2", patient_id="P999"), "b"))
    assert reason == f"PatientID differs from the other instances of study {STUDY}"
    assert gatherer.add(Member(inst("1.3", patient_id=""), "c")) == (None, None)  # silent is not different
    assert len(gatherer.studies[0].members) == 2


def test_files_are_ordered_by_series_then_instance() -> None:
    study = study_of(
        inst("1.4", series_number=2, instance_number=1),
        inst("1.3", series_number=1, instance_number=10),
        inst("1.2", series_number=1, instance_number=2),
        inst("1.1"),
    )
    assert [m.payload for m in study.ordered()] == ["1.2", "1.3", "1.4", "1.1"]
    assert study.members[0].filename == "1.4.dcm"


def test_title_modality_and_metadata() -> None:
    study = study_of(
        inst("1.1", birth_date="1980-02-15", gender="男", accession_number="A1", source_ae="CT01"),
        inst("1.2", modality="PT", modalities_in_study=("CT", "PT", "SR")),
    )
    assert study.modality == "CT/PT/SR"
    assert study.title == "CT/PT/SR 检查 胸部平扫 2025-03-01"
    assert study.class_code == OUTPATIENT
    assert study.metadata() == {
        "patient_id": "P001",
        "patient_name": "张三",
        "birth_date": "1980-02-15",
        "gender": "男",
        "study_uid": STUDY,
        "accession_number": "A1",
        "modality": "CT/PT/SR",
        "study_date": "2025-03-01",
        "study_description": "胸部平扫",
        "source_system": "CT01",
        "instance_count": 2,
    }
    assert study.metadata("PACS1")["source_system"] == "PACS1"


def test_description_for_capture() -> None:
    desc = study_of(inst("1.1")).description("NK", TODAY)
    assert (desc.class_code, desc.department_code, desc.date) == (OUTPATIENT, "NK", dt.date(2025, 3, 1))
    assert desc.title == "CT 检查 胸部平扫 2025-03-01"
    assert desc.metadata["instance_count"] == 1


def test_an_admission_id_makes_it_an_inpatient_record() -> None:
    study = study_of(inst("1.1"), inst("1.2", admission_id="ZY0042"))
    assert study.class_code == INPATIENT
    assert study.metadata()["admission_no"] == "ZY0042"


def test_title_without_description_date_or_modality() -> None:
    assert study_of(inst("1.1", modality="", study_description="", study_date="")).title == "影像 检查"


def test_record_date_falls_back_and_never_refuses_the_study() -> None:
    assert study_of(inst("1.1", study_date="", other_date="2024-12-31")).record_date(TODAY) == dt.date(2024, 12, 31)
    assert study_of(inst("1.1", study_date="", other_date="")).record_date(TODAY) == TODAY
    future = study_of(inst("1.1", study_date="2099-01-01", other_date=""))
    assert future.record_date(TODAY) == TODAY
    assert future.metadata()["study_date"] == "2099-01-01"  # kept for the quality check to flag
    assert study_of(inst("1.1", study_date="1850-01-01")).record_date(TODAY) == TODAY


def test_values_longer_than_the_schema_allows_are_cut_not_refused() -> None:
    study = study_of(inst("1.1", patient_name="名" * 300, study_description="d" * 900, accession_number="a" * 99))
    meta = study.metadata()
    assert (len(meta["patient_name"]), len(meta["study_description"]), len(meta["accession_number"])) == (100, 500, 64)
    assert len(study.title) <= 500


def test_first_non_empty_value_wins() -> None:
    study = study_of(inst("1.1", patient_name="", series_number=1), inst("1.2", patient_name="李四", series_number=2))
    assert study.metadata()["patient_name"] == "李四"
