"""Prepared statements (core/fastsql.py) write and read rows exactly as the ORM does, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.db.models.signals import post_save

from medarchive.archiving.models import BusinessEvent, Component, Record
from medarchive.core import fastsql
from medarchive.core.models import Department
from medarchive.preservation.models import Blob
from medarchive.security.models import AuditEntry

FIELDS = [f.attname for f in Record._meta.concrete_fields]


def test_a_record_read_back_equals_what_the_orm_reads(make_record: Any) -> None:
    record = make_record(metadata={"patient_id": "P-001", "名称": "含中文的值", "n": 3}, responsible="张三")
    mine = fastsql.get(Record, record.pk)
    orm = Record.objects.get(pk=record.pk)
    assert mine is not None
    assert {f: getattr(mine, f) for f in FIELDS} == {f: getattr(orm, f) for f in FIELDS}
    assert isinstance(mine.created_at, dt.datetime) and mine.created_at.tzinfo is not None
    assert isinstance(mine.date, dt.date) and isinstance(mine.pk, uuid.UUID)
    assert mine.metadata["名称"] == "含中文的值"
    assert not mine._state.adding
    assert fastsql.get(Record, uuid.uuid4()) is None


def test_select_filters_on_fields_and_attnames_and_orders(make_record: Any) -> None:
    record = make_record()
    rows = fastsql.select(Component, record_id=record.pk, order_by="sequence")
    assert [c.pk for c in rows] == list(record.components.order_by("sequence").values_list("pk", flat=True))
    assert fastsql.select(Component, record=record.pk, limit=1)[0].pk == rows[0].pk
    events = fastsql.select(BusinessEvent, record_id=record.pk, order_by="at, id")
    assert [e.pk for e in events] == list(record.business_events.values_list("pk", flat=True))


def test_insert_stores_what_an_orm_create_would(users: dict[str, Any], make_record: Any) -> None:
    record = make_record()
    event = BusinessEvent(
        record=record, actor=users["archivist"], action="test", state="draft", at=dt.datetime.now(dt.UTC)
    )
    assert fastsql.insert(event) is True
    assert event.pk is not None and not event._state.adding  # the key came back from the database
    stored = BusinessEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.actor_id, stored.at) == ("test", users["archivist"].pk, event.at)


def test_ignore_conflict_leaves_the_existing_row_and_says_so(make_record: Any) -> None:
    blob = make_record().components.get().blob
    clash = Blob(
        address=blob.address, size=1, sha256="0" * 64, sm3="0" * 64, suite="x", key_id="k", wrapped_key=b"",
        stored_size=1, state=Blob.STORED,
    )  # fmt: skip
    assert fastsql.insert(clash, ignore_conflict=True) is False
    assert Blob.objects.get(pk=blob.address).sha256 == blob.sha256


def test_models_with_save_receivers_are_refused(archive: Any) -> None:
    def receiver(**_: Any) -> None:
        pass

    post_save.connect(receiver, sender=AuditEntry, weak=False, dispatch_uid="test-fastsql")
    try:
        with pytest.raises(TypeError, match="signal receivers"):
            fastsql.insert(AuditEntry(seq=1))
    finally:
        post_save.disconnect(dispatch_uid="test-fastsql", sender=AuditEntry)
    with pytest.raises(TypeError, match="signal receivers"):
        fastsql.insert(Department(code="X", name="x"))  # the reference cache listens to departments
