"""DICOM file import: one record per study, instances kept byte for byte, bad files refused by name."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file

from medarchive.access.services import read_content
from medarchive.archiving.models import Record
from medarchive.capture.dicom import importer, samples
from medarchive.capture.models import Channel, ReviewState, Submission
from medarchive.core.errors import ValidationError

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-42"
STUDY_A = "1.2.826.0.1.3680043.8.498.100"
STUDY_B = "1.2.826.0.1.3680043.8.498.200"


def instance_bytes(study: str, sop: str, **changes: Any) -> bytes:
    """A small CT instance (zero preamble) of `study` for patient 张三丰."""
    return samples.ct_instance(
        **{
            "SpecificCharacterSet": "GB18030",
            "StudyInstanceUID": study,
            "SOPInstanceUID": sop,
            "PatientID": "P001",
            "PatientName": "张^三丰",
            "PatientSex": "M",
            "PatientBirthDate": "19700101",
            "StudyDate": "20250301",
            "StudyDescription": "胸部平扫",
            "AccessionNumber": "ACC001",
            **changes,
        }
    )


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run(paths: list[Path], actor: Any, department: str = "NK") -> tuple[importer.Scan, list[Any]]:
    found = importer.scan(importer.find_files(paths))
    return found, importer.capture_studies(found, actor=actor, department_code=department)


def read_back(actor: Any, record: Record, sequence: int) -> bytes:
    return b"".join(read_content(actor, record.pk, sequence=sequence).chunks)


@pytest.fixture
def pacs(archive: Any) -> Any:
    from medarchive.security.services import add_user

    return add_user("pacs", actor=None, role="interface", password=PASSWORD)


def test_one_record_per_study_with_the_instances_byte_for_byte(tmp_path: Path, pacs: Any) -> None:
    sent = {
        write(tmp_path / "series2" / "IM0001", instance_bytes(STUDY_A, "1.2.3.2.1", SeriesNumber=2, InstanceNumber=1)),
        write(tmp_path / "series1" / "IM0002", instance_bytes(STUDY_A, "1.2.3.1.2", SeriesNumber=1, InstanceNumber=2)),
        write(tmp_path / "series1" / "IM0001", instance_bytes(STUDY_A, "1.2.3.1.1", SeriesNumber=1, InstanceNumber=1)),
        write(tmp_path / "other" / "chrX2.dcm", Path(get_charset_files("chrX2.dcm")[0]).read_bytes()),
    }
    found, outcomes = run([tmp_path], pacs)

    assert not found.problems
    assert [o.status for o in outcomes] == ["received", "received"]
    assert Record.objects.count() == 2
    record = Record.objects.get(metadata__study_uid=STUDY_A)
    assert record.title == "CT 检查 胸部平扫 2025-03-01"
    assert (record.archive_class.code, record.department.code, record.date.isoformat()) == ("BA-MZ", "NK", "2025-03-01")
    assert record.metadata == {
        "patient_id": "P001",
        "patient_name": "张三丰",
        "birth_date": "1970-01-01",
        "gender": "男",
        "study_uid": STUDY_A,
        "accession_number": "ACC001",
        "modality": "CT",
        "study_date": "2025-03-01",
        "study_description": "胸部平扫",
        "source_system": "CLUNIE1",
        "instance_count": 3,
    }
    components = list(record.components.order_by("sequence"))
    assert [c.filename for c in components] == ["1.2.3.1.1.dcm", "1.2.3.1.2.dcm", "1.2.3.2.1.dcm"]
    assert {c.mime_type for c in components} == {"application/dicom"}
    by_sop = {p.read_bytes(): p for p in sent}
    for component in components:
        stored = read_back(pacs, record, component.sequence)
        assert stored in by_sop  # decrypted through the access read path: the very bytes of the file
        assert pydicom.dcmread(io.BytesIO(stored)).SOPInstanceUID == component.filename.removesuffix(".dcm")

    assert record.intake.state == ReviewState.ACCEPTED  # every rule passed: auto-accepted
    assert record.intake.submission.channel == Channel.DICOM
    chinese = Record.objects.get(metadata__study_uid="1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0")
    assert chinese.metadata["patient_name"] == "王小东"
    assert chinese.title == "OT 检查"  # the file gives no description and no date


def test_a_second_run_captures_nothing_twice(tmp_path: Path, pacs: Any) -> None:
    write(tmp_path / "a1.dcm", instance_bytes(STUDY_A, "1.2.3.1"))
    write(tmp_path / "a2.dcm", instance_bytes(STUDY_A, "1.2.3.2"))
    _, first = run([tmp_path], pacs)
    submissions = Submission.objects.count()
    _, again = run([tmp_path], pacs)
    assert [o.status for o in again] == ["replayed"]
    assert again[0].record == first[0].record and again[0].review == "accepted"
    assert Record.objects.count() == 1 and Submission.objects.count() == submissions


def test_the_same_uids_with_other_bytes_are_refused_naming_the_record_not_replayed(tmp_path: Path, pacs: Any) -> None:
    write(tmp_path / "first" / "a1.dcm", instance_bytes(STUDY_A, "1.2.3.1"))
    _, (first,) = run([tmp_path / "first"], pacs)
    write(tmp_path / "later" / "a1.dcm", instance_bytes(STUDY_A, "1.2.3.1", StudyDescription="另一次检查"))
    found, (again,) = run([tmp_path / "later"], pacs)
    assert again.status == "rejected" and again.error is not None and again.error.code == "identifier_reused"
    assert first.record is not None and first.record.electronic_no in again.problem
    assert importer.failed(found, [again]) and Record.objects.count() == 1
    # The same files again under another department (the description is not the identity) replay.
    _, (same,) = run([tmp_path / "first"], pacs, department="BGS")
    assert same.status == "replayed" and same.record == first.record


def test_the_same_study_with_one_more_instance_is_a_second_record_of_the_same_study(tmp_path: Path, pacs: Any) -> None:
    write(tmp_path / "first" / "a1.dcm", instance_bytes(STUDY_A, "1.2.3.1"))
    run([tmp_path / "first"], pacs)
    write(tmp_path / "later" / "a1.dcm", instance_bytes(STUDY_A, "1.2.3.1"))
    write(tmp_path / "later" / "a2.dcm", instance_bytes(STUDY_A, "1.2.3.2"))
    _, outcomes = run([tmp_path / "later"], pacs)
    assert outcomes[0].status == "received"
    records = Record.objects.filter(metadata__study_uid=STUDY_A)
    assert records.count() == 2
    # The repeated instance is flagged for the archivist instead of silently stored twice.
    later = outcomes[0].record
    assert later.intake.state == ReviewState.PENDING
    assert any(f["rule"] == "duplicate" for f in later.intake.findings)


def test_bad_files_are_refused_by_name_and_the_rest_go_on(tmp_path: Path, pacs: Any) -> None:
    good = write(tmp_path / "good.dcm", instance_bytes(STUDY_A, "1.2.3.1"))
    bad = {
        write(tmp_path / "notes.txt", "这不是影像".encode()): "not_dicom",
        write(tmp_path / "empty.dcm", b""): "empty_file",
        write(tmp_path / "bare.dcm", Path(get_testdata_file("no_meta.dcm")).read_bytes()): "not_dicom",
        write(tmp_path / "nostudy.dcm", instance_bytes(STUDY_A, "1.2.3.9", StudyInstanceUID=None)): "dicom_missing_uid",
        write(tmp_path / "twin.dcm", instance_bytes(STUDY_A, "1.2.3.1")): "dicom_conflict",
        write(tmp_path / "other.dcm", instance_bytes(STUDY_A, "1.2.3.8", PatientID="P999")): "dicom_conflict",
    }
    skipped = write(tmp_path / "DICOMDIR", Path(get_testdata_file("DICOMDIR")).read_bytes())
    found, outcomes = run([tmp_path], pacs)

    assert {p.path: p.code for p in found.problems} == {p.resolve(): code for p, code in bad.items()}
    assert all(p.message for p in found.problems)
    assert [s.path for s in found.skipped] == [skipped.resolve()]
    assert [(o.status, o.instances) for o in outcomes] == [("received", 1)]
    record = Record.objects.get()
    assert read_back(pacs, record, 1) == good.read_bytes()
    assert importer.failed(found, outcomes)


def test_a_file_over_the_size_limit_is_refused_alone(tmp_path: Path, pacs: Any, settings: Any) -> None:
    small = write(tmp_path / "a1.dcm", instance_bytes(STUDY_A, "1.2.3.1"))
    big = write(tmp_path / "a2.dcm", instance_bytes(STUDY_A, "1.2.3.2"))
    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=small.stat().st_size)
    big.write_bytes(big.read_bytes() + b"\0\0")  # one more (even) element-free tail: still a valid file
    found, outcomes = run([tmp_path], pacs)
    assert [(p.path.name, p.code) for p in found.problems] == [("a2.dcm", "payload_too_large")]
    assert [(o.status, o.instances) for o in outcomes] == [("received", 1)]


def test_an_unknown_department_rejects_the_study_and_leaves_nothing(tmp_path: Path, pacs: Any) -> None:
    write(tmp_path / "a1.dcm", instance_bytes(STUDY_A, "1.2.3.1"))
    _, outcomes = run([tmp_path], pacs, department="XX")
    assert outcomes[0].status == "rejected" and "部门 XX 不存在" in outcomes[0].problem
    assert not Record.objects.exists()


def test_a_mapped_institution_name_files_the_study_in_its_department(tmp_path: Path, pacs: Any) -> None:
    from medarchive.core.aliases import add_alias

    add_alias("dicom-institution", "CT室", "BGS", actor=pacs_archivist(pacs))
    write(tmp_path / "a1.dcm", instance_bytes(STUDY_A, "1.2.3.1", InstitutionalDepartmentName="CT室"))
    write(tmp_path / "b1.dcm", instance_bytes(STUDY_B, "1.2.3.2", InstitutionalDepartmentName="超声科"))
    _, outcomes = run([tmp_path], pacs, department="NK")
    filed = {o.study_uid: o.record.department.code for o in outcomes}
    # The table, as for the listener; a name nobody mapped falls back to --department.
    assert filed == {STUDY_A: "BGS", STUDY_B: "NK"}


def pacs_archivist(pacs: Any) -> Any:
    from medarchive.security.services import add_user

    return add_user("archivist", actor=None, role="archivist", password=PASSWORD)


def test_an_account_without_the_right_is_refused(tmp_path: Path, users: dict[str, Any]) -> None:
    write(tmp_path / "a1.dcm", instance_bytes(STUDY_A, "1.2.3.1"))
    _, outcomes = run([tmp_path], users["officer"], department="NK")  # officer of BGS
    assert outcomes[0].status == "rejected"
    assert not Record.objects.exists()


def test_an_admission_id_files_it_as_an_inpatient_record(tmp_path: Path, pacs: Any) -> None:
    write(tmp_path / "a1.dcm", instance_bytes(STUDY_B, "1.2.3.1", AdmissionID="ZY0042"))
    _, outcomes = run([tmp_path], pacs)
    record = outcomes[0].record
    assert record.archive_class.code == "BA-ZY" and record.metadata["admission_no"] == "ZY0042"


def test_find_files_refuses_a_missing_path_and_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        importer.find_files([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_bytes(b"x")
    with pytest.raises(ValidationError, match="no files"):
        importer.find_files([tmp_path / "empty"])
