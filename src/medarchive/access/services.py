"""Reading content: permission first, audit in the same transaction as the decision, then stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from medarchive.access.queries import get_record
from medarchive.archiving.models import Component
from medarchive.core.errors import NotFound
from medarchive.preservation import services as preservation
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action


@dataclass
class ContentStream:
    component: Component
    chunks: Iterator[bytes]


def read_content(actor: User, record_id: Any, *, sequence: int = 1) -> ContentStream:
    """Open one file of a record for reading. Every call is audited as `record:content:read` (SEC-04).

    The audit entry is committed before the first byte leaves, so a read that was started
    is on record even if the client disconnects.
    """
    record = get_record(actor, record_id)
    require(actor, Action.RECORD_CONTENT_READ, record)
    component = record.components.select_related("blob").filter(sequence=sequence).first()
    if component is None:
        raise NotFound(
            _("Record %(record)s has no file number %(sequence)s."),
            code="file_not_found",
            field="sequence",
            record=record.electronic_no,
            sequence=sequence,
        )
    audit.record_read(
        Action.RECORD_CONTENT_READ,
        actor=actor,
        object_type="record",
        object_id=str(record.pk),
        details={"file": component.filename, "sequence": sequence, "sha256": component.sha256},
    )
    return ContentStream(component=component, chunks=preservation.open_blob(component.blob))
