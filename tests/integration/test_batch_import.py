"""Batch import of offline carriers (CAP-08) on the real database and blob store."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.utils import translation
from tests.debris import staging_debris

from medarchive.archiving.models import Record
from medarchive.capture.batch import importer
from medarchive.capture.batch.carrier import UnsafeCarrier
from medarchive.capture.batch.importer import Defaults, import_carrier
from medarchive.capture.batch.manifest import ManifestError
from medarchive.capture.intake import RegisterMismatch
from medarchive.capture.models import Submission
from medarchive.core.errors import PermissionDenied
from medarchive.preservation.models import Blob
from medarchive.preservation.services import blob_store


def _said(error: Any) -> str:
    """The message in English and in zh-Hans: a fragment of either names the problem."""
    with translation.override("en"):
        english = error.message
    return f"{english}\n{error.message}"


@pytest.fixture
def his(archive: Any) -> Any:
    from medarchive.security.services import add_user

    return add_user("his", actor=None, role="interface", password="Correct-Horse-42")


def _pdf(tag: str) -> bytes:
    return b"%PDF-1.7\n" + f"document {tag} ".encode() * 30


def _carrier(folder: Path, manifest: str, files: dict[str, bytes], *, name: str = "清单.csv") -> Path:
    folder.mkdir(exist_ok=True)
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / name).write_text(manifest, encoding="utf-8")
    return folder


def _stored() -> int:
    return len(list(blob_store().storage.addresses()))


def _staging_is_empty() -> bool:
    staging = getattr(blob_store().storage, "staging", None)
    return staging is None or staging_debris(Path(staging)) == []


HEADER = "题名,日期,门类,部门,文件,患者ID,患者姓名\n"


def test_n_rows_with_one_bad_give_n_minus_one_received_one_flagged_and_a_stored_register(
    his: Any, tmp_path: Path
) -> None:
    manifest = (
        HEADER + "院办会议纪要,2025-03-01,WS,BGS,a.pdf,,\n"
        "出院记录,2025/3/2,BA-ZY,NK,b.pdf,P001,张三\n"
        "检验报告,20250303,BA-ZY,NK,c.pdf,P002,李四\n"
        "丢失的文件,2025-03-04,WS,BGS,lost.pdf,,\n"
    )
    folder = _carrier(tmp_path / "c", manifest, {"a.pdf": _pdf("a"), "b.pdf": _pdf("b"), "c.pdf": _pdf("c")})
    before = _stored()

    result = import_carrier(folder, actor=his)

    assert [(r.row, r.outcome.status) for r in result.rows] == [
        (2, "received"),
        (3, "received"),
        (4, "received"),
        (5, "rejected"),
    ]
    bad = result.rows[3].outcome.error
    assert bad is not None and bad.code == "missing_file" and "lost.pdf is not in the carrier" in _said(bad)
    assert result.failed and _stored() == before + 3 and _staging_is_empty()
    submission = Submission.objects.get(pk=result.submission.pk)
    assert (submission.channel, submission.source, submission.key) == (
        "import",
        "清单.csv",
        f"import:{result.manifest.sha256}",
    )
    assert (submission.received_count, submission.failed_count) == (3, 1)
    assert [i["label"] for i in submission.report["items"]] == [
        "row 2: a.pdf",
        "row 3: b.pdf",
        "row 4: c.pdf",
        "row 5: lost.pdf",
    ]
    assert submission.report["items"][3]["problem"]["code"] == "missing_file"
    stored_manifest = submission.report["manifest"]
    assert stored_manifest["sha256"] == hashlib.sha256(manifest.encode()).hexdigest()
    assert (stored_manifest["rows"], stored_manifest["carrier_kind"], stored_manifest["name"]) == (
        4,
        "folder",
        "清单.csv",
    )
    inpatient = Record.objects.get(title="出院记录")
    assert (inpatient.archive_class.code, inpatient.department.code, inpatient.state) == ("BA-ZY", "NK", "accepted")
    assert inpatient.metadata == {"patient_id": "P001", "patient_name": "张三"}
    assert str(inpatient.date) == "2025-03-02"
    assert Record.objects.get(title="院办会议纪要").state == "submitted"  # WS waits for review


def test_every_kind_of_bad_row_is_flagged_with_its_own_reason_and_leaves_nothing_behind(
    his: Any, tmp_path: Path, settings: Any
) -> None:
    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=2000)
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(_pdf("secret"))
    rows = {
        "missing": ("WS", "BGS", "2025-03-01", "nope.pdf", "", "", "missing_file", "nope.pdf is not in the carrier"),
        "class": ("XX", "BGS", "2025-03-01", "f1.pdf", "", "", "unknown_class", "XX"),
        "department": ("WS", "ZZ", "2025-03-01", "f2.pdf", "", "", "unknown_department", "ZZ"),
        "date": ("WS", "BGS", "2025-02-30", "f3.pdf", "", "", "bad_date", "2025-02-30"),
        "no date": ("WS", "BGS", "", "f4.pdf", "", "", "required", "日期"),
        "future": ("WS", "BGS", "2999-01-01", "f5.pdf", "", "", "implausible_date", "2999-01-01"),
        "empty": ("WS", "BGS", "2025-03-01", "empty.pdf", "", "", "empty_file", "empty"),
        "big": ("WS", "BGS", "2025-03-01", "big.pdf", "", "", "payload_too_large", "2000"),
        "dotdot": ("WS", "BGS", "2025-03-01", "../secret.pdf", "", "", "unsafe_path", "leaves the carrier"),
        "absolute": ("WS", "BGS", "2025-03-01", str(outside), "", "", "unsafe_path", "absolute"),
        "symlink": ("WS", "BGS", "2025-03-01", "link.pdf", "", "", "unsafe_path", "outside the carrier"),
        "size": ("WS", "BGS", "2025-03-01", "f6.pdf", "5", "", "size_mismatch", "declares 5 bytes"),
        "sha": ("WS", "BGS", "2025-03-01", "f7.pdf", "", "0" * 64, "checksum_mismatch", "manifest declares"),
        "bad sha": ("WS", "BGS", "2025-03-01", "f8.pdf", "", "xyz", "sha256_malformed", "64 hex digits"),
        "no file": ("WS", "BGS", "2025-03-01", "", "", "", "no_files", "至少"),
        "no class": ("", "BGS", "2025-03-01", "f9.pdf", "", "", "required", "门类"),
        "two names": ("WS", "BGS", "2025-03-01", "f10.pdf;sub/f10.pdf", "", "", "duplicate_filename", "f10.pdf"),
        "meta type": ("WS", "BGS", "2025-03-01", "f11.pdf", "", "", "wrong_type", "页数"),
        "mandatory": ("BA-ZY", "NK", "2025-03-01", "f12.pdf", "", "", "", ""),  # received, with findings
    }
    lines = ["题名,门类,部门,日期,文件,字节数,sha256,页数"]
    for title, (cls, dept, date, path, size, sha, _code, _msg) in rows.items():
        pages = "三页" if title == "meta type" else ""
        lines.append(f"{title},{cls},{dept},{date},{path},{size},{sha},{pages}")
    files = {f"f{i}.pdf": _pdf(f"f{i}") for i in range(1, 13)} | {"sub/f10.pdf": _pdf("sub"), "empty.pdf": b""}
    files["big.pdf"] = _pdf("big") * 10
    folder = _carrier(tmp_path / "c", "\n".join(lines) + "\n", files)
    (folder / "link.pdf").symlink_to(outside)
    before, blobs = _stored(), Blob.objects.count()

    result = import_carrier(folder, actor=his)

    outcomes = dict(zip(rows, (r.outcome for r in result.rows), strict=True))
    for title, (*_, code, fragment) in rows.items():
        outcome = outcomes[title]
        if not code:
            assert outcome.status == "received", title
            continue
        assert outcome.status == "rejected", title
        assert outcome.error is not None and outcome.error.code == code, (title, outcome.error)
        assert fragment in _said(outcome.error), (title, _said(outcome.error))
    assert outcomes["mandatory"].intake is not None and outcomes["mandatory"].intake.errors == 2
    assert Record.objects.count() == 1 and Blob.objects.count() == blobs + 1
    assert _stored() == before + 1 and _staging_is_empty()
    assert not Blob.objects.exclude(state=Blob.STORED).exists()


def test_running_the_same_import_again_creates_nothing_twice(his: Any, tmp_path: Path) -> None:
    manifest = (
        HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n二,2025-03-01,BA-ZY,NK,b.pdf,P1,王五\n三,2025-03-01,WS,BGS,x.pdf,,\n"
    )
    folder = _carrier(tmp_path / "c", manifest, {"a.pdf": _pdf("a"), "b.pdf": _pdf("b")})
    first = import_carrier(folder, actor=his)
    stored = _stored()

    again = import_carrier(folder, actor=his)

    assert [r.outcome.status for r in again.rows] == ["replayed", "replayed", "rejected"]
    assert [r.outcome.record.pk for r in again.rows[:2]] == [r.outcome.record.pk for r in first.rows[:2]]  # type: ignore[union-attr]
    assert again.submission.pk == first.submission.pk and Submission.objects.count() == 1
    assert Record.objects.count() == 2 and _stored() == stored
    submission = Submission.objects.get()
    assert submission.received_count == 2
    assert [i["status"] for i in submission.report["items"]].count("received") == 2


def test_the_same_row_under_another_manifest_is_reported_already_imported(his: Any, tmp_path: Path) -> None:
    files = {"a.pdf": _pdf("a")}
    import_carrier(_carrier(tmp_path / "one", HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n", files), actor=his)
    other = _carrier(
        tmp_path / "two",
        HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n二,2025-03-02,WS,BGS,b.pdf,,\n",
        {
            **files,
            "b.pdf": _pdf("b"),
        },
    )

    result = import_carrier(other, actor=his)

    assert [r.outcome.status for r in result.rows] == ["replayed", "received"] and Record.objects.count() == 2
    assert Submission.objects.count() == 2


def test_the_same_files_described_otherwise_are_not_dropped_as_already_imported(his: Any, tmp_path: Path) -> None:
    files = {"a.pdf": _pdf("a")}
    first = import_carrier(_carrier(tmp_path / "one", HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n", files), actor=his)
    other = _carrier(tmp_path / "two", HEADER + "另一个题名,2025-04-01,WS,BGS,a.pdf,,\n", files)

    result = import_carrier(other, actor=his)

    (row,) = result.rows
    assert row.outcome.status == "rejected" and Record.objects.count() == 1
    assert row.outcome.error is not None and row.outcome.error.code == "identifier_reused"
    number = first.rows[0].outcome.record.electronic_no  # type: ignore[union-attr]
    assert row.outcome.error.details["record"] == number and number in row.outcome.error.message
    assert result.submission.report["items"][0]["problem"]["code"] == "identifier_reused"


def test_names_of_classes_departments_and_retention_terms_resolve_to_codes(his: Any, tmp_path: Path) -> None:
    manifest = (
        "题名,日期,门类,分类号,科室,保管期限,密级,文件,患者标识,患者姓名\n"
        "病案,2025-03-01,病案,住院病案,内科,永久,秘密,a.pdf,P1,张三\n"
        "通知,2025-03-01,文书,,院办公室,30年,,b.pdf,,\n"
        "冲突,2025-03-01,文书,住院病案,内科,,,c.pdf,,\n"
    )
    folder = _carrier(tmp_path / "c", manifest, {"a.pdf": _pdf("a"), "b.pdf": _pdf("b"), "c.pdf": _pdf("c")})

    result = import_carrier(folder, actor=his)

    first, second, third = (r.outcome for r in result.rows)
    assert first.record is not None and second.record is not None
    assert (first.record.archive_class.code, first.record.department.code, first.record.retention) == (
        "BA-ZY",
        "NK",
        "Y",
    )
    assert first.record.security_level == "秘密"
    assert (second.record.archive_class.code, second.record.department.code, second.record.retention) == (
        "WS",
        "BGS",
        "D30",
    )
    assert (
        third.error is not None and third.error.code == "class_subclass_mismatch" and "disagree" in _said(third.error)
    )


def test_command_line_defaults_fill_rows_without_class_or_department(his: Any, tmp_path: Path) -> None:
    manifest = "题名,日期,文件,部门\n一,2025-03-01,a.pdf,\n二,2025-03-01,b.pdf,NK\n"
    folder = _carrier(tmp_path / "c", manifest, {"a.pdf": _pdf("a"), "b.pdf": _pdf("b")})

    result = import_carrier(folder, actor=his, defaults=Defaults(class_code="WS", department_code="BGS"))

    assert [r.outcome.record.department.code for r in result.rows if r.outcome.record] == ["BGS", "NK"]


def test_a_row_with_several_files_is_one_record_with_its_files_in_order(his: Any, tmp_path: Path) -> None:
    manifest = "题名,日期,门类,部门,文件\n病历,2025-03-01,WS,BGS,正文.pdf;附件/附件1.pdf；附件/附件2.pdf\n"
    files = {"正文.pdf": _pdf("m"), "附件/附件1.pdf": _pdf("1"), "附件/附件2.pdf": _pdf("2")}
    folder = _carrier(tmp_path / "c", manifest, files)

    (row,) = import_carrier(folder, actor=his).rows

    assert row.outcome.record is not None
    names = list(row.outcome.record.components.order_by("sequence").values_list("filename", flat=True))
    assert names == ["正文.pdf", "附件1.pdf", "附件2.pdf"]


def test_a_declared_register_that_matches_is_stored_with_the_submission(his: Any, tmp_path: Path) -> None:
    a, b = _pdf("a"), _pdf("b")
    manifest = (
        f"#总件数,2\n#总字节数,{len(a) + len(b)}\n"
        + HEADER
        + "一,2025-03-01,WS,BGS,a.pdf,,\n二,2025-03-01,WS,BGS,b.pdf,,\n"
    )
    folder = _carrier(tmp_path / "c", manifest, {"a.pdf": a, "b.pdf": b})
    phases: list[tuple[int, int, str]] = []

    result = import_carrier(folder, actor=his, progress=lambda *p: phases.append(p))

    submission = Submission.objects.get(pk=result.submission.pk)
    assert (submission.declared_count, submission.declared_bytes) == (2, len(a) + len(b))
    assert (submission.received_count, submission.received_bytes) == (2, len(a) + len(b))
    assert result.register is not None and not result.failed
    assert phases == [(1, 2, "checking"), (2, 2, "checking"), (2, 2, "importing")]


def test_a_declared_register_that_does_not_match_refuses_the_whole_carrier(his: Any, tmp_path: Path) -> None:
    manifest = (
        "#总件数,2\n#总字节数,99999\n" + HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n二,2025-03-01,WS,BGS,lost.pdf,,\n"
    )
    folder = _carrier(tmp_path / "c", manifest, {"a.pdf": _pdf("a")})
    before = _stored()

    with pytest.raises(RegisterMismatch) as caught:
        import_carrier(folder, actor=his)

    assert caught.value.code == "register_mismatch" and caught.value.details["declared_bytes"] == 99999
    assert "Row 5: lost.pdf is not in the carrier" in _said(caught.value)
    assert Record.objects.count() == 0 and _stored() == before and _staging_is_empty()
    submission = Submission.objects.get()
    assert submission.state == Submission.REJECTED and submission.report["manifest"]["declared"]["total_bytes"] == 99999


def test_a_register_mismatch_names_the_first_uncounted_rows_and_keeps_them_all(his: Any, tmp_path: Path) -> None:
    rows = "".join(f"{n},2025-03-01,WS,BGS,lost{n}.pdf,,\n" for n in range(7))
    folder = _carrier(tmp_path / "c", "#总件数,7\n#总字节数,1\n" + HEADER + rows, {})

    with pytest.raises(RegisterMismatch) as caught:
        import_carrier(folder, actor=his)

    exc = caught.value
    assert exc.code == "register_mismatch" and (exc.details["uncounted"], exc.details["shown"]) == (7, 5)
    assert len(exc.details["unreadable_rows"]) == 7 and "lost6.pdf" in exc.details["unreadable_rows"][-1]
    assert "(the first 5 of 7)" in _said(exc) and "Row 8: lost4.pdf" in _said(exc) and "lost5.pdf" not in _said(exc)
    assert "%(" not in exc.message


def test_a_zip_carrier_with_an_xlsx_manifest_in_a_folder(his: Any, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["题名", "日期", "分类号", "部门", "文件名", "患者ID", "患者姓名"])
    sheet.append(["报告", "2025-03-01", "BA-ZY", "NK", "files/报告.pdf", "P7", "赵六"])
    workbook = io.BytesIO()
    book.save(workbook)
    path = tmp_path / "载体.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("移交/目录.xlsx", workbook.getvalue())
        archive.writestr("移交/files/报告.pdf", _pdf("zip"))

    result = import_carrier(path, actor=his)

    (row,) = result.rows
    assert row.outcome.status == "received" and row.outcome.record is not None
    assert row.outcome.record.components.get().sha256 == hashlib.sha256(_pdf("zip")).hexdigest()
    submission = Submission.objects.get()
    assert submission.source == "载体.zip/移交/目录.xlsx"
    assert submission.report["manifest"]["carrier_kind"] == "zip"


def test_a_zip_with_a_traversal_member_is_refused_before_anything_is_written(his: Any, tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("清单.csv", HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n")
        archive.writestr("a.pdf", _pdf("a"))
        archive.writestr("../../etc/cron.d/evil", b"* * * * * root sh")

    with translation.override("en"), pytest.raises(UnsafeCarrier, match="leaves the carrier"):
        import_carrier(path, actor=his)

    assert not Submission.objects.exists() and not Record.objects.exists()


def test_an_officer_imports_only_into_their_own_department(users: dict[str, Any], tmp_path: Path) -> None:
    manifest = HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n二,2025-03-01,WS,NK,b.pdf,,\n"
    folder = _carrier(tmp_path / "c", manifest, {"a.pdf": _pdf("a"), "b.pdf": _pdf("b")})

    result = import_carrier(folder, actor=users["officer"])

    ok, refused = (r.outcome for r in result.rows)
    assert ok.status == "received"
    assert refused.error is not None and refused.error.code == "permission_denied"


def test_a_viewer_may_not_import_at_all(users: dict[str, Any], tmp_path: Path) -> None:
    folder = _carrier(tmp_path / "c", HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n", {"a.pdf": _pdf("a")})
    with pytest.raises(PermissionDenied):
        import_carrier(folder, actor=users["viewer"])
    assert not Submission.objects.exists()


def test_a_file_that_changes_during_the_import_fails_its_row(
    his: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _carrier(tmp_path / "c", HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n", {"a.pdf": _pdf("a")})
    monkeypatch.setattr(importer, "digest", lambda located: "0" * 64)  # as if hashed before a change

    (row,) = import_carrier(folder, actor=his).rows

    assert row.outcome.error is not None and "changed while it was imported" in _said(row.outcome.error)
    assert not Record.objects.exists() and _staging_is_empty()


def test_an_unusable_manifest_fails_the_import_with_nothing_written(his: Any, tmp_path: Path) -> None:
    folder = _carrier(tmp_path / "c", "题名,日期\n一,2025-03-01\n", {})
    with translation.override("en"), pytest.raises(ManifestError, match="no file column") as caught:
        import_carrier(folder, actor=his)
    assert caught.value.code == "manifest_no_file_column"
    assert not Submission.objects.exists()


def test_a_gb18030_manifest_from_excel(his: Any, tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(_pdf("a"))
    (folder / "清单.csv").write_bytes((HEADER + "一,2025-03-01,WS,BGS,a.pdf,,\n").encode("gb18030"))

    result = import_carrier(folder / "清单.csv", actor=his)

    assert result.manifest.encoding == "gb18030" and result.rows[0].outcome.status == "received"
    assert os.path.exists(folder / "a.pdf")  # the carrier is left as it was
