"""卷: assembling items into a volume and archiving them together (ARC-06)."""

from __future__ import annotations

from typing import Any

import pytest

from medarchive.archiving import services as archiving
from medarchive.archiving.volumes import add_to_volume, archive_volume, create_volume
from medarchive.core.errors import Conflict, PermissionDenied, Problems, ValidationError


def _accepted(make_record: Any, users: dict[str, Any], **fields: Any) -> Any:
    record = make_record(class_code="KJ-SB", department="BGS", **fields)
    archiving.submit_record(record.pk, actor=users["archivist"])
    return archiving.accept_record(record.pk, actor=users["archivist"])


def test_volume_archives_its_items_in_date_order(users: dict[str, Any], make_record: Any) -> None:
    archivist = users["archivist"]
    volume = create_volume(actor=archivist, class_code="KJ", department_code="BGS", title="CT 机采购项目", year=2024)
    later = _accepted(make_record, users, title="验收报告", date="2024-09-01")
    earlier = _accepted(make_record, users, title="采购合同", date="2024-03-01")
    for record in (later, earlier):
        add_to_volume(record.pk, volume.pk, actor=archivist)
    archived = archive_volume(volume.pk, actor=archivist)
    assert archived.archival_code == "Z001-KJ·2024·D30-0001" and archived.item_count == 2
    earlier.refresh_from_db()
    later.refresh_from_db()
    assert (earlier.archival_code, later.archival_code) == ("Z001-KJ·2024·D30-0001-001", "Z001-KJ·2024·D30-0001-002")
    assert earlier.state == later.state == "archived"
    assert volume.items.count() == archived.item_count  # 卷内文件数量相符性


def test_volume_rules(users: dict[str, Any], make_record: Any) -> None:
    archivist = users["archivist"]
    with pytest.raises(ValidationError) as info:
        create_volume(actor=archivist, class_code="WS", department_code="BGS", title="x", year=2024)
    assert (info.value.code, info.value.field, info.value.message) == (
        "not_a_volume_class",
        "class",
        "门类 WS 按件整理，不组卷。",
    )
    with pytest.raises(Problems) as every:
        create_volume(actor=archivist, class_code="WS", department_code="BGS", title=" ", year=1800)
    assert [(p.code, p.field) for p in every.value.problems] == [
        ("not_a_volume_class", "class"),
        ("required", "title"),
        ("implausible_date", "year"),
    ]
    with pytest.raises(PermissionDenied):
        create_volume(actor=users["officer_nk"], class_code="KJ", department_code="BGS", title="x", year=2024)
    volume = create_volume(actor=archivist, class_code="KJ", department_code="BGS", title="项目", year=2024)
    with pytest.raises(ValidationError) as info:
        archive_volume(volume.pk, actor=archivist)
    assert info.value.code == "empty_volume"
    with pytest.raises(ValidationError) as info:
        add_to_volume(make_record(class_code="WS").pk, volume.pk, actor=archivist)
    assert info.value.code == "wrong_volume_class" and info.value.details == {"class_code": "WS", "volume_class": "KJ"}
    draft = make_record(class_code="KJ-SB")
    add_to_volume(draft.pk, volume.pk, actor=archivist)
    with pytest.raises(Conflict) as info:
        archive_volume(volume.pk, actor=archivist)
    assert info.value.code == "wrong_state" and info.value.details["state"] == "draft"
    draft.refresh_from_db()
    assert draft.archival_code is None  # nothing of the volume was archived
