"""Audited reads (ADR 0020): appended without the chain head, sealed into the chain in order, guarded
like the chain itself, and never lost or let through unaudited."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from medarchive.access import queries
from medarchive.access.services import read_content
from medarchive.core import fastsql
from medarchive.security import audit, readlog, sealer, trailcheck
from medarchive.security.models import AuditEntry, PendingAuditEntry
from medarchive.security.roles import Action
from medarchive.security.services import verify_audit

PENDING = PendingAuditEntry._meta.db_table


@pytest.fixture
def background(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a server process: a sealer is said to run, so reads are left for it."""
    monkeypatch.setattr(sealer, "running", lambda: True)


def test_a_process_without_a_sealer_seals_each_read_at_once(users: dict[str, Any], make_record: Any) -> None:
    record = make_record()
    queries.audit_metadata_read(users["archivist"], record)
    assert not PendingAuditEntry.objects.exists()
    entry = AuditEntry.objects.order_by("-seq").first()
    assert entry is not None and entry.action == Action.RECORD_METADATA_READ and entry.sealed_from is not None
    assert trailcheck.verify_chain().ok


def test_reads_wait_unsealed_and_are_sealed_in_order_with_what_they_said(
    users: dict[str, Any], make_record: Any, background: None
) -> None:
    record = make_record()
    before = AuditEntry.objects.count()
    queries.audit_metadata_read(users["archivist"], record)
    b"".join(read_content(users["archivist"], record.pk).chunks)
    queries.list_records(users["archivist"], queries.RecordFilter())
    waiting = list(PendingAuditEntry.objects.order_by("id"))
    assert [p.action for p in waiting] == [Action.RECORD_METADATA_READ, Action.RECORD_CONTENT_READ, Action.RECORD_LIST]
    assert AuditEntry.objects.count() == before  # the chain head was not touched
    count, oldest = audit.unsealed()
    assert count == 3 and oldest == waiting[0].at

    assert audit.seal_pending() == 3
    sealed = list(AuditEntry.objects.filter(sealed_from__isnull=False).order_by("seq"))[-3:]
    assert [s.sealed_from for s in sealed] == [p.pk for p in waiting]
    for entry, pending in zip(sealed, waiting, strict=True):
        assert (entry.action, entry.at, entry.actor_id, entry.object_id, entry.details) == (
            pending.action, pending.at, pending.actor_id, pending.object_id, pending.details
        )  # fmt: skip
    assert not PendingAuditEntry.objects.exists() and audit.unsealed() == (0, None)
    assert trailcheck.verify_chain().ok
    assert audit.seal_pending() == 0  # nothing waiting: nothing locked


def test_verify_seals_the_waiting_reads_first_and_says_so(
    users: dict[str, Any], make_record: Any, background: None
) -> None:
    record = make_record()
    for _ in range(3):
        queries.audit_metadata_read(users["archivist"], record)
    report = verify_audit(actor=users["auditor"])
    assert report.ok and report.sealed_now == 3 and report.unsealed == 0
    assert report.as_dict()["sealed_now"] == 3
    assert not PendingAuditEntry.objects.exists()


def test_the_auditors_trail_shows_reads_the_sealer_has_not_reached(
    users: dict[str, Any], make_record: Any, background: None
) -> None:
    from medarchive.security.queries import AuditFilter, audit_trail

    record = make_record()
    queries.audit_metadata_read(users["archivist"], record)
    page = audit_trail(users["auditor"], AuditFilter(action=Action.RECORD_METADATA_READ.value))
    assert any(e.object_id == str(record.pk) for e in page.items)


def test_an_unsealed_entry_cannot_be_changed_or_removed(
    users: dict[str, Any], make_record: Any, background: None
) -> None:
    queries.audit_metadata_read(users["archivist"], make_record())
    pending = PendingAuditEntry.objects.get()
    for statement in (f"UPDATE {PENDING} SET actor_name = 'someone else'", f"DELETE FROM {PENDING}"):
        with pytest.raises(DatabaseError, match="medarchive:"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert PendingAuditEntry.objects.get().actor_name == pending.actor_name


# --- the read log: group commit in a server process ------------------------------------------------


@pytest.fixture
def read_log(transactional_db: Any) -> Any:
    readlog.start()
    yield readlog
    readlog.stop()  # its database connection closes: the test database can be dropped


def _entry(n: int) -> PendingAuditEntry:
    from medarchive.core import clock

    return PendingAuditEntry(at=clock.now(), actor_name=f"reader-{n}", action="record:list", result="success")


def test_concurrent_reads_are_committed_together_before_each_returns(read_log: Any) -> None:
    errors: list[BaseException] = []

    def read(n: int) -> None:
        try:
            read_log.submit(_entry(n))
            # Back from submit: the entry is committed, visible to any other connection.
            assert PendingAuditEntry.objects.filter(actor_name=f"reader-{n}").exists()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=read, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert PendingAuditEntry.objects.filter(actor_name__startswith="reader-").count() == 12


def test_a_batch_that_cannot_be_written_fails_its_reads(read_log: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(rows: Any, **_: Any) -> None:
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(fastsql, "insert_many", broken)
    with pytest.raises(DatabaseError, match="disk I/O"):
        read_log.submit(_entry(1))
    assert not PendingAuditEntry.objects.exists()
