"""import-dicom and symbolic links: named links are the operator's choice; links inside folders are never followed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from medarchive.archiving.models import Record
from medarchive.capture.dicom import importer, samples

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-42"
STUDY = "1.2.826.0.1.3680043.8.498.700"


def instance_bytes(sop: str, **changes: Any) -> bytes:
    return samples.ct_instance(StudyInstanceUID=STUDY, SOPInstanceUID=sop, PatientID="P7", **changes)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def pacs(archive: Any) -> Any:
    from medarchive.security.services import add_user

    return add_user("pacs", actor=None, role="interface", password=PASSWORD)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files the importing account can read that nobody meant to import (another patient's study)."""
    folder = tmp_path / "outside"
    write(folder / "secret1.dcm", instance_bytes("1.2.3.700.91"))
    write(folder / "secret2.dcm", instance_bytes("1.2.3.700.92"))
    return folder


def test_links_inside_a_folder_are_skipped_and_named_not_followed(tmp_path: Path, pacs: Any, outside: Path) -> None:
    cd = tmp_path / "cd"
    write(cd / "IM1", instance_bytes("1.2.3.700.1"))
    (cd / "IM2").symlink_to(outside / "secret1.dcm")
    (cd / "series").symlink_to(outside, target_is_directory=True)
    (cd / "gone").symlink_to(tmp_path / "nowhere")

    found = importer.scan(importer.find_files([cd]))
    outcomes = importer.capture_studies(found, actor=pacs, department_code="NK")

    assert [(o.status, o.instances) for o in outcomes] == [("received", 1)]
    assert Record.objects.get().metadata["instance_count"] == 1
    assert sorted((p.path.name, p.code) for p in found.skipped) == [
        ("IM2", "symlink"),
        ("gone", "symlink"),
        ("series", "symlink"),
    ]
    assert all("symbolic link inside a folder: not followed" in p.message for p in found.skipped)
    assert not found.problems and not importer.failed(found, outcomes)


def test_a_link_named_by_the_operator_is_followed(tmp_path: Path, pacs: Any, outside: Path) -> None:
    (tmp_path / "named.dcm").symlink_to(outside / "secret1.dcm")
    (tmp_path / "named-folder").symlink_to(outside, target_is_directory=True)

    files = importer.find_files([tmp_path / "named.dcm", tmp_path / "named-folder"])
    found = importer.scan(files)
    outcomes = importer.capture_studies(found, actor=pacs, department_code="NK")

    assert files == [outside / "secret1.dcm", outside / "secret2.dcm"]  # resolved once, not twice
    assert [(o.status, o.instances) for o in outcomes] == [("received", 2)]


def test_a_file_swapped_for_a_link_after_the_scan_is_not_read_through_it(
    tmp_path: Path, pacs: Any, outside: Path
) -> None:
    cd = tmp_path / "cd"
    path = write(cd / "IM1", instance_bytes("1.2.3.700.91", PatientName="Honest^Name"))
    found = importer.scan(importer.find_files([cd]))
    path.unlink()
    path.symlink_to(outside / "secret1.dcm")  # same SOP instance, other bytes

    (outcome,) = importer.capture_studies(found, actor=pacs, department_code="NK")

    assert outcome.status == "rejected" and "cannot be read" in outcome.problem
    assert not Record.objects.exists()


def test_a_file_swapped_for_a_link_before_its_header_is_read_is_refused(
    tmp_path: Path, pacs: Any, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cd = tmp_path / "cd"
    path = write(cd / "IM1", instance_bytes("1.2.3.700.1"))
    files = importer.find_files([cd])
    checked = importer._not_a_file

    def swapping(listed: Path) -> Any:
        verdict = checked(listed)  # a regular file when looked at …
        listed.unlink()
        listed.symlink_to(outside / "secret1.dcm")  # … a link when opened
        return verdict

    monkeypatch.setattr(importer, "_not_a_file", swapping)
    found = importer.scan(files)

    assert [(p.path, p.code) for p in found.problems] == [(path, "unreadable")]
    assert not found.gatherer.studies


def test_fifos_inside_a_folder_are_skipped_without_blocking(tmp_path: Path, pacs: Any) -> None:
    cd = tmp_path / "cd"
    write(cd / "IM1", instance_bytes("1.2.3.700.1"))
    os.mkfifo(cd / "pipe")

    found = importer.scan(importer.find_files([cd]))

    assert [(p.path.name, p.code) for p in found.skipped] == [("pipe", "not_a_file")]
    assert len(found.gatherer.studies) == 1
