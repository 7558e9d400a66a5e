"""`medarchive import-dicom` in a subprocess: summary, refused files named, exit codes, re-runs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_charset_files, get_testdata_file
from tests.e2e.conftest import PASSWORD, Cli

pytestmark = pytest.mark.slow
STUDY = "1.2.826.0.1.3680043.8.498.400"


def instance_bytes(sop: str, **changes: Any) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.preamble = b"\0" * 128
    ds.SpecificCharacterSet = "GB18030"
    ds.StudyInstanceUID, ds.SOPInstanceUID = STUDY, sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.PatientID, ds.PatientName, ds.StudyDate, ds.StudyDescription = "P7", "赵^六", "20250302", "腹部增强"
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_import_a_folder_with_good_and_bad_files(cli: Cli, tmp_path: Path) -> None:
    cli.run("user", "add", "pacs", "--role", "interface", "--password-stdin", input=PASSWORD + "\n")
    folder = tmp_path / "光盘"
    (folder / "S1").mkdir(parents=True)
    (folder / "S1" / "IM1").write_bytes(instance_bytes("1.2.3.400.1", InstanceNumber=1))
    (folder / "S1" / "IM2").write_bytes(instance_bytes("1.2.3.400.2", InstanceNumber=2))
    (folder / "chrX2.dcm").write_bytes(Path(get_charset_files("chrX2.dcm")[0]).read_bytes())
    (folder / "说明.txt").write_text("不是影像", encoding="utf-8")
    (folder / "empty.dcm").write_bytes(b"")

    # The interface account has no department of its own: it must be told.
    result = cli.run("import-dicom", str(folder), "--as", "pacs", check=False)
    assert result.returncode == 2 and "pacs has no department; give --department CODE" in result.stderr

    result = cli.run("import-dicom", str(folder), "--as", "pacs", "--department", "NK", check=False)
    assert result.returncode == 2, result.stderr  # some files were refused
    text = " ".join(result.stdout.split())
    assert "说明.txt: not a DICOM file" in text and "empty.dcm: empty file (0 bytes)" in text
    assert "5 files: 2 studies captured, 0 already in, 0 rejected; 2 files refused, 0 skipped" in text
    assert "reading headers" in result.stderr  # the progress bar

    listed = json.loads(cli.run("records", "list", "--as", "pacs", "--json").stdout)["items"]
    assert sorted(r["title"] for r in listed) == ["CT 检查 腹部增强 2025-03-02", "OT 检查"]
    ct = next(r for r in listed if r["title"].startswith("CT"))
    shown = json.loads(cli.run("records", "show", ct["id"], "--as", "pacs", "--json").stdout)
    assert shown["metadata"]["patient_name"] == "赵六" and shown["metadata"]["instance_count"] == 2
    out = tmp_path / "back.dcm"
    cli.run("content", "get", ct["id"], "--file", "2", "--out", str(out), "--as", "pacs")
    assert out.read_bytes() == (folder / "S1" / "IM2").read_bytes()

    # Again, only the good files, as JSON: nothing captured twice, exit code 0.
    (folder / "说明.txt").unlink()
    (folder / "empty.dcm").unlink()
    result = cli.run("import-dicom", str(folder), "--as", "pacs", "--department", "NK", "--json")
    report = json.loads(result.stdout)
    assert (report["received"], report["replayed"], report["refused"]) == (0, 2, [])
    assert {s["status"] for s in report["studies"]} == {"replayed"}
    assert len(json.loads(cli.run("records", "list", "--as", "pacs", "--json").stdout)["items"]) == 2


def test_import_refuses_a_missing_path_and_an_unknown_department(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("import-dicom", str(tmp_path / "nope"), "--as", "archivist", "--department", "NK", check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = cli.run("import-dicom", str(tmp_path), "--as", "archivist", "--department", "XX", check=False)
    assert result.returncode == 2 and "unknown department 'XX'" in result.stderr
    result = cli.run("import-dicom", str(tmp_path), "--as", "officer", "--department", "NK", check=False)
    assert result.returncode == 3 and "officer may not create records for department NK" in result.stderr
