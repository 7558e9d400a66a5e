"""卷 (volumes) for the classes filed by volume — 科研, 基建, 设备 (ARC-06).

A volume collects accepted items; archiving it gives the volume its 案卷号 and 档号
(`{fonds}-{class}·{year}·{retention}-{item:04d}`, the item number being the 案卷号), fixes
卷内文件数, and archives every item with the volume's code plus its 卷内件号
(ordered by date, then capture time: DA/T 22 ordering by time).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from medarchive.archiving.archival_code import ArchivalCodePattern
from medarchive.archiving.models import ArchiveClass, Record, RecordState, Volume
from medarchive.archiving.services import (
    active_class,
    active_retention,
    locked_record,
    missing_labels,
    missing_mandatory,
    record_step,
    state_label,
)
from medarchive.core import clock
from medarchive.core.errors import Collector, Conflict, ValidationError
from medarchive.core.ids import not_found, parse_uuid
from medarchive.core.labels import Listed, with_labels
from medarchive.core.sequences import next_value
from medarchive.core.services import ensure_fonds, known_department
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action

VOLUME_PATTERN = ArchivalCodePattern.parse("{fonds}-{class}·{year}·{retention}-{item:04d}")


def _in_class(archive_class: ArchiveClass, volume_class: ArchiveClass) -> bool:
    return volume_class.pk in {archive_class.pk, archive_class.parent_id}


def create_volume(
    *, actor: User, class_code: str, department_code: str, title: str, year: int, retention: str | None = None
) -> Volume:
    department = known_department(department_code)
    require(actor, Action.RECORD_CREATE, department_id=department.pk)
    problems = Collector()
    archive_class = rule = None
    with problems.check():
        archive_class = active_class(class_code)
        if archive_class.aggregation != ArchiveClass.VOLUME:
            raise ValidationError(
                _("The class %(class_code)s files items (件), not volumes (卷)."),
                code="not_a_volume_class",
                field="class",
                class_code=class_code,
            )
    if not title.strip():
        problems.add(ValidationError(_("The volume needs a title."), code="required", field="title"))
    if not 1900 <= year <= clock.today().year + 1:
        problems.add(
            ValidationError(_("The year %(year)s is not plausible."), code="implausible_date", field="year", year=year)
        )
    if archive_class is not None or retention:
        with problems.check():
            rule = active_retention(retention or archive_class.default_retention)  # type: ignore[union-attr]
    problems.raise_if_any()
    assert archive_class is not None and rule is not None  # the checks above raised otherwise
    with transaction.atomic():
        volume = Volume.objects.create(
            fonds=ensure_fonds(),
            archive_class=archive_class,
            department=department,
            title=title.strip(),
            year=year,
            retention=rule.code,
            created_by=actor,
        )
        audit.record_event(
            Action.RECORD_CREATE,
            actor=actor,
            object_type="volume",
            object_id=str(volume.pk),
            details={"class": class_code, "title": volume.title},
        )
    return volume


def add_to_volume(record_id: Any, volume_id: Any, *, actor: User) -> Record:
    with transaction.atomic():
        volume = (
            Volume.objects.select_for_update(of=("self",))
            .filter(pk=parse_uuid(volume_id, what="volume"))
            .select_related("archive_class")
            .first()
        )
        if volume is None:
            raise not_found("volume", volume_id)
        record = locked_record(record_id, actor=actor, action=Action.RECORD_UPDATE)
        require(actor, Action.RECORD_UPDATE, department_id=volume.department_id)
        if record.department_id != volume.department_id:
            raise ValidationError(
                _("A volume holds records of its own department only."), code="other_department", field="department"
            )
        if volume.archival_code:
            raise Conflict(
                _("The volume %(volume)s is archived; it takes no more items."),
                code="volume_archived",
                field="volume",
                volume=volume.archival_code,
            )
        if record.state in {RecordState.ARCHIVED, RecordState.ON_HOLD, RecordState.DISPOSED}:
            raise Conflict(
                with_labels(
                    _("Record %(record)s is “%(state)s”; an archived record can no longer be changed."),
                    state=state_label(record.state),
                ),
                code="immutable_record",
                field="state",
                record=record.electronic_no,
                state=str(record.state),
            )
        if not _in_class(record.archive_class, volume.archive_class):
            raise ValidationError(
                _("A record of class %(class_code)s does not belong in a volume of class %(volume_class)s."),
                code="wrong_volume_class",
                field="class",
                class_code=record.archive_class.code,
                volume_class=volume.archive_class.code,
            )
        record.volume = volume
        record.save(update_fields=["volume", "updated_at"])
        record_step(
            record,
            Action.RECORD_UPDATE,
            actor=actor,
            verb="组卷",
            description=volume.title,
            details={"volume": str(volume.pk)},
        )
    return record


def archive_volume(volume_id: Any, *, actor: User) -> Volume:
    """Archive a volume and all its items in one transaction; any item not ready stops the whole volume."""
    with transaction.atomic():
        volume = (
            Volume.objects.select_for_update(of=("self",))
            .select_related("archive_class", "fonds")
            .filter(pk=parse_uuid(volume_id, what="volume"))
            .first()
        )
        if volume is None:
            raise not_found("volume", volume_id)
        if volume.archival_code:
            raise Conflict(
                _("The volume %(volume)s is already archived."),
                code="volume_archived",
                field="state",
                volume=volume.archival_code,
            )
        items = list(volume.items.select_for_update().select_related("archive_class").order_by("date", "created_at"))
        if not items:
            raise ValidationError(_("An empty volume cannot be archived."), code="empty_volume", field="items")
        for item in items:
            require(actor, Action.RECORD_ARCHIVE, item)
        problems = Collector()
        for item in items:
            if item.state != RecordState.ACCEPTED:
                problems.add(
                    Conflict(
                        with_labels(
                            _("Item %(record)s is “%(state)s”; every item of a volume must be accepted first."),
                            state=state_label(item.state),
                        ),
                        code="wrong_state",
                        field="items",
                        record=item.electronic_no,
                        state=str(item.state),
                    )
                )
            missing = missing_mandatory(item)
            if missing:
                problems.add(
                    ValidationError(
                        with_labels(
                            _("Item %(record)s: %(missing)s still empty."), missing=Listed(missing_labels(missing))
                        ),
                        code="missing_mandatory",
                        field="items",
                        record=item.electronic_no,
                        missing=missing,
                    )
                )
        problems.raise_if_any()
        values = {
            "fonds": volume.fonds.code,
            "class": volume.archive_class.code,
            "year": str(volume.year),
            "retention": volume.retention,
        }
        volume.volume_number = next_value(f"volume-code:{VOLUME_PATTERN.series(**values)}")
        volume.archival_code = VOLUME_PATTERN.render(volume.volume_number, **values)
        volume.item_count = len(items)
        volume.archived_at = clock.now()
        volume.save()
        for number, item in enumerate(items, start=1):
            item.item_number = number
            item.archival_code = f"{volume.archival_code}-{number:03d}"
            item.archived_at = volume.archived_at
            item.state = RecordState.ARCHIVED
            item.save()
            record_step(
                item,
                Action.RECORD_ARCHIVE,
                actor=actor,
                verb="归档",
                description=f"卷 {volume.archival_code} 第 {number} 件",
                details={"archival_code": item.archival_code, "volume": str(volume.pk)},
            )
        audit.record_event(
            Action.RECORD_ARCHIVE,
            actor=actor,
            object_type="volume",
            object_id=str(volume.pk),
            details={"archival_code": volume.archival_code, "items": len(items)},
        )
    return volume
