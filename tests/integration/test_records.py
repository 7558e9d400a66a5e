"""Capture and lifecycle through the services, with real storage and the real database."""

from __future__ import annotations

import io
import unicodedata
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import translation

from medarchive.archiving import services as archiving
from medarchive.archiving.models import Record
from medarchive.capture.models import IdempotencyKey
from medarchive.capture.services import Description, IncomingFile, create_record, update_draft
from medarchive.core.errors import (
    Conflict,
    DuplicateSubmission,
    EmptyFile,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Problems,
    ValidationError,
)
from medarchive.preservation.models import Blob, PreservationEvent
from medarchive.preservation.services import blob_store
from medarchive.security.models import AuditEntry


def _desc(**overrides: Any) -> Description:
    base: dict[str, Any] = {
        "class_code": "WS",
        "department_code": "BGS",
        "title": "关于加强病案管理的通知",
        "date": "2025-06-01",
        "responsible": "院办公室",
    }
    return Description(**{**base, **overrides})


def _file(body: bytes = b"%PDF-1.7\nhello", name: str = "通知.pdf") -> IncomingFile:
    return IncomingFile(name=name, stream=io.BytesIO(body))


def _counts() -> tuple[int, int, int, int]:
    return (
        Record.objects.count(),
        Blob.objects.count(),
        len(list(blob_store().storage.addresses())),
        AuditEntry.objects.filter(action="record:create").count(),
    )


def test_capture_stores_attributes_digests_events_and_audit(users: dict[str, Any]) -> None:
    body = b"%PDF-1.7\n" + "正文".encode() * 1000
    record = create_record(_desc(), [_file(body, "报告.jpg")], actor=users["archivist"])
    component = record.components.get()
    assert record.state == "draft" and record.electronic_no.startswith("Z001-2025-")
    assert component.size == len(body)
    assert component.format_name == "PDF" and component.mime_type == "application/pdf"  # CAP-03: from content
    import hashlib

    assert component.sha256 == hashlib.sha256(body).hexdigest()
    assert component.sm3 == hashlib.new("sm3", body).hexdigest()
    events = set(PreservationEvent.objects.filter(component=component).values_list("event_type", flat=True))
    assert events == {"ingestion", "message digest calculation"}
    assert record.business_events.get().action == "登记"
    assert AuditEntry.objects.filter(action="record:create", object_id=str(record.pk)).exists()


def test_two_captures_get_different_ids_and_electronic_numbers(make_record: Any) -> None:
    a, b = make_record(), make_record()
    assert a.pk != b.pk and a.electronic_no != b.electronic_no


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"class_code": "NOPE"}, "class"),
        ({"department_code": "XX"}, "department"),
        ({"title": "  "}, "title"),
        ({"date": "2025-13-40"}, "date"),
        ({"date": "yesterday"}, "date"),
        ({"security_level": "top"}, "security_level"),
        ({"open_status": "maybe"}, "open_status"),
        ({"retention": "D99"}, "retention"),
        ({"metadata": {"pages": "three"}}, "metadata.pages"),
        ({"metadata": {"discharge_date": "not a date"}}, "metadata.discharge_date"),
        ({"metadata": {"nested": {"a": 1}}}, "metadata.nested"),
    ],
)
def test_bad_description_is_refused_and_nothing_is_written(
    users: dict[str, Any], overrides: dict[str, Any], field: str
) -> None:
    before = _counts()
    with pytest.raises(ValidationError) as info:
        create_record(_desc(**overrides), [_file()], actor=users["archivist"])
    assert info.value.field == field, info.value.message
    assert _counts() == before


def test_every_problem_of_a_description_is_reported_at_once_beside_its_field(users: dict[str, Any]) -> None:
    """A form with three wrong fields gets three problems, each naming its field, in either language."""
    before = _counts()
    with pytest.raises(Problems) as info:
        create_record(
            _desc(class_code="NOPE", title=" ", date="1850-01-01", metadata={"pages": "three"}),
            [_file()],
            actor=users["archivist"],
        )
    problems = info.value
    assert [(p.code, p.field) for p in problems.problems] == [
        ("unknown_class", "class"),
        ("required", "title"),
        ("implausible_date", "date"),
        ("wrong_type", "metadata.pages"),
    ]
    assert problems.status == 422 and _counts() == before
    with translation.override("zh-hans"):
        assert problems.by_field() == {
            "class": [f"门类代码 NOPE 不存在；现行分类方案中有：{_known_classes('、')}。"],
            "title": ["题名不能为空。"],
            "date": ["日期 1850-01-01 不合理：早于 1900 年。"],
            "metadata.pages": ["页数应为整数。"],
        }
    with translation.override("en"):
        assert problems.by_field() == {
            "class": [f"The class NOPE does not exist; the active scheme has {_known_classes('、')}."],
            "title": ["Title is required."],
            "date": ["The date 1850-01-01 is not plausible: it is before 1900."],
            "metadata.pages": ["页数 must be a whole number."],
        }
        body = problems.as_problem()
    assert [e["field"] for e in body["errors"]] == ["class", "title", "date", "metadata.pages"]
    assert body["errors"][0]["details"] == {"class_code": "NOPE", "known": _known_classes(None)}


def _known_classes(separator: str | None) -> Any:
    from medarchive.archiving.models import ArchiveClass

    codes = list(ArchiveClass.objects.filter(scheme__active=True).values_list("code", flat=True))
    return codes if separator is None else separator.join(codes)


def test_a_refusal_names_the_action_as_people_read_it(users: dict[str, Any], make_record: Any) -> None:
    record = make_record()
    with pytest.raises(PermissionDenied) as info:
        archiving.accept_record(record.pk, actor=users["officer"])
    assert info.value.code == "permission_denied" and info.value.details["action"] == "record:accept"
    assert info.value.message == "您无权接收档案。"
    with translation.override("en"):
        assert info.value.message == "You may not accept records into the archive."


@pytest.mark.parametrize(
    ("name", "code"),
    [("../x.pdf", "unsafe_filename"), ("/abs.pdf", "unsafe_filename"), ("a\x01.pdf", "control_characters")],
)
def test_bad_filenames_are_refused(users: dict[str, Any], name: str, code: str) -> None:
    before = _counts()
    with pytest.raises(ValidationError) as info:
        create_record(_desc(), [_file(name=name)], actor=users["archivist"])
    assert (info.value.code, info.value.field) == (code, "files[0].name")
    assert _counts() == before


def test_empty_file_is_refused_and_nothing_is_left(users: dict[str, Any]) -> None:
    before = _counts()
    with pytest.raises(EmptyFile):
        create_record(_desc(), [_file(b"%PDF-1.7 good"), _file(b"", "empty.pdf")], actor=users["archivist"])
    assert _counts() == before


def test_file_over_the_limit_is_refused(users: dict[str, Any], settings: Any) -> None:
    import dataclasses

    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=1000)
    before = _counts()
    with pytest.raises(PayloadTooLarge):
        create_record(_desc(), [_file(b"x" * 1001)], actor=users["archivist"])
    assert _counts() == before


def test_non_nfc_filename_is_stored_nfc_with_original_in_metadata(users: dict[str, Any]) -> None:
    decomposed = unicodedata.normalize("NFD", "café.pdf")
    record = create_record(_desc(), [_file(name=decomposed)], actor=users["archivist"])
    component = record.components.get()
    assert component.filename == "café.pdf" and component.original_filename == decomposed
    assert decomposed in record.metadata["original_filenames"]


def test_no_files_is_refused(users: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        create_record(_desc(), [], actor=users["archivist"])
    assert (info.value.code, info.value.field, info.value.message) == (
        "no_files",
        "files",
        "一件档案至少要有一个文件。",
    )


def test_duplicate_idempotency_key_names_the_first_record(users: dict[str, Any]) -> None:
    first = create_record(_desc(), [_file()], actor=users["archivist"], idempotency_key="his-42")
    before = _counts()
    with pytest.raises(DuplicateSubmission) as info:
        create_record(_desc(), [_file(b"%PDF other")], actor=users["archivist"], idempotency_key="his-42")
    assert first.electronic_no in info.value.message
    assert _counts() == before
    assert IdempotencyKey.objects.filter(key="his-42").count() == 1


def test_identical_content_shares_one_blob(users: dict[str, Any]) -> None:
    a = create_record(_desc(), [_file(b"%PDF same bytes")], actor=users["archivist"])
    b = create_record(_desc(), [_file(b"%PDF same bytes")], actor=users["archivist"])
    assert a.components.get().blob_id == b.components.get().blob_id
    assert Blob.objects.get(pk=a.components.get().blob_id).state == Blob.STORED


def test_officer_cannot_capture_for_another_department(users: dict[str, Any]) -> None:
    before = _counts()
    with pytest.raises(PermissionDenied):
        create_record(_desc(department_code="NK"), [_file()], actor=users["officer"])
    assert _counts() == before


def test_lifecycle_assigns_gap_free_archival_codes(users: dict[str, Any], make_record: Any) -> None:
    archivist = users["archivist"]
    codes = []
    for _ in range(3):
        record = make_record(date="2024-05-05", retention="D10")
        archiving.submit_record(record.pk, actor=archivist)
        archiving.accept_record(record.pk, actor=archivist)
        codes.append(archiving.archive_record(record.pk, actor=archivist).archival_code)
    assert codes == ["Z001-WS·2024·D10·BGS-0001", "Z001-WS·2024·D10·BGS-0002", "Z001-WS·2024·D10·BGS-0003"]
    record = Record.objects.get(archival_code=codes[0])
    assert [e.action for e in record.business_events.all()] == ["登记", "提交", "接收", "归档"]


def test_a_failed_archive_returns_its_number(users: dict[str, Any], make_record: Any) -> None:
    archivist = users["archivist"]
    good = make_record(date="2023-01-01")
    bad = make_record(date="2023-01-01", class_code="BA-ZY", department="NK", retention="D30")
    for record in (bad, good):
        archiving.submit_record(record.pk, actor=archivist)
        archiving.accept_record(record.pk, actor=archivist)
    with pytest.raises(ValidationError) as info:
        archiving.archive_record(bad.pk, actor=archivist)  # CAP-02: mandatory metadata missing
    assert info.value.code == "missing_mandatory" and "metadata.patient_id" in info.value.details["missing"]
    assert "患者标识" in info.value.message  # the schema's title, not the key
    assert archiving.archive_record(good.pk, actor=archivist).archival_code.endswith("-0001")


def test_illegal_transitions_are_refused(users: dict[str, Any], make_record: Any) -> None:
    record = make_record()
    with pytest.raises(Conflict) as info:
        archiving.archive_record(record.pk, actor=users["archivist"])
    assert info.value.code == "wrong_state"
    assert info.value.details == {"record": record.electronic_no, "state": "draft", "needed": ["accepted"]}
    assert info.value.message == f"档案 {record.electronic_no} 当前为“草稿”，须为“已接收”才能归档。"
    with translation.override("en"):
        assert info.value.message == (
            f"Record {record.electronic_no} is “Draft”; to archive records it must be “Accepted”."
        )
    with pytest.raises(NotFound):
        archiving.submit_record("00000000-0000-0000-0000-000000000000", actor=users["archivist"])
    with pytest.raises(PermissionDenied):
        archiving.accept_record(record.pk, actor=users["officer"])


def test_update_draft_validates_and_audits(users: dict[str, Any], make_record: Any) -> None:
    record = make_record()
    updated = update_draft(record.pk, {"title": "新题名", "metadata": {"pages": 3}}, actor=users["officer"])
    assert updated.title == "新题名" and updated.metadata == {"pages": 3}
    entry = AuditEntry.objects.filter(action="record:update", object_id=str(record.pk)).get()
    assert entry.details["changed"] == ["metadata", "title"]
    with pytest.raises(ValidationError) as info:
        update_draft(record.pk, {"electronic_no": "X"}, actor=users["archivist"])  # CAP-01: the id is immutable
    assert (info.value.code, info.value.field) == ("not_editable_field", "electronic_no")
    with pytest.raises(ValidationError) as info:
        update_draft(record.pk, {"date": "31/12/2020"}, actor=users["archivist"])
    assert (info.value.code, info.value.field) == ("bad_date", "date")


def test_archived_record_is_immutable_in_services_and_database(users: dict[str, Any], make_record: Any) -> None:
    archivist = users["archivist"]
    record = make_record()
    for step in (archiving.submit_record, archiving.accept_record, archiving.archive_record):
        step(record.pk, actor=archivist)
    with pytest.raises(Conflict) as info:
        update_draft(record.pk, {"title": "改"}, actor=archivist)
    assert info.value.code == "immutable_record"
    # PRE-07: even code that bypasses the services is stopped by the database.
    with pytest.raises(DatabaseError) as info, transaction.atomic():
        Record.objects.filter(pk=record.pk).update(title="tampered")
    assert "immutable" in str(info.value)
    with pytest.raises(DatabaseError), transaction.atomic():
        Record.objects.filter(pk=record.pk).delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        record.components.update(filename="x.pdf")
    # A state change alone (hold) stays possible.
    held = archiving.hold_record(record.pk, actor=archivist, reason="医疗纠纷封存")
    assert held.state == "on_hold"
    assert connection.vendor in {"sqlite", "postgresql"}


def test_the_creating_application_is_captured(users: dict[str, Any]) -> None:
    from medarchive.demo.files import chinese_pdf

    record = create_record(_desc(), [_file(chinese_pdf("通知", ["正文"]), "通知.pdf")], actor=users["archivist"])
    assert record.components.get().creating_application == "medarchive demo generator"
