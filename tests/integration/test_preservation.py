"""Encryption at rest, fixity, key rotation and crash recovery against the real store."""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction

from medarchive.access.services import read_content
from medarchive.capture.services import Description, IncomingFile, create_record
from medarchive.preservation import services as preservation
from medarchive.preservation.models import Blob, PreservationEvent
from medarchive.security.models import AuditEntry


def _blob_path(address: str) -> Path:
    return Path(settings.CONFIG.blob_dir) / address[:2] / address


def _ingest(users: dict[str, Any], body: bytes, name: str = "病历.pdf") -> Any:
    desc = Description(class_code="WS", department_code="BGS", title="出院小结", date="2025-01-02")
    return create_record(desc, [IncomingFile(name=name, stream=io.BytesIO(body))], actor=users["archivist"])


def test_no_plaintext_anywhere_under_the_data_directory(users: dict[str, Any]) -> None:
    marker = b"PLAINTEXT-MARKER-" + secrets.token_hex(16).encode()
    body = marker + secrets.token_bytes(300_000) + marker
    record = _ingest(users, body)
    window = body[100_000:100_064]
    hits = []
    for root, _dirs, files in os.walk(settings.CONFIG.data_dir):
        for name in files:
            data = Path(root, name).read_bytes()
            if marker in data or window in data:
                hits.append(os.path.join(root, name))
    assert hits == []
    assert b"".join(read_content(users["archivist"], record.pk).chunks) == body


def test_fixity_passes_then_catches_a_flipped_byte_and_names_the_file(users: dict[str, Any]) -> None:
    record = _ingest(users, b"%PDF-1.7 " + secrets.token_bytes(5000), name="影像报告.pdf")
    component = record.components.get()
    report = preservation.verify_fixity(actor=users["auditor"], record_id=record.pk)
    assert report.ok and report.checked == 1
    path = _blob_path(component.blob_id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = preservation.verify_fixity(actor=users["auditor"], record_id=record.pk)
    assert not report.ok
    assert report.failed[0].files == [f"{record.electronic_no}/影像报告.pdf"]
    events = PreservationEvent.objects.filter(blob_id=component.blob_id, event_type="fixity check")
    assert list(events.values_list("outcome", flat=True)) == ["success", "failure"]
    assert Blob.objects.get(pk=component.blob_id).last_fixity_ok is False
    assert AuditEntry.objects.filter(action="fixity:verify", result="failure").exists()


def test_missing_blob_is_a_fixity_failure(users: dict[str, Any]) -> None:
    record = _ingest(users, b"%PDF-1.7 " + secrets.token_bytes(100))
    _blob_path(record.components.get().blob_id).unlink()
    report = preservation.verify_fixity(actor=None, record_id=record.pk)
    assert not report.ok and report.failed[0].problems


def test_key_rotation_rewraps_without_touching_content(users: dict[str, Any]) -> None:
    body = b"%PDF-1.7 " + secrets.token_bytes(20_000)
    record = _ingest(users, body)
    blob = record.components.get().blob
    before_bytes = _blob_path(blob.address).read_bytes()
    new_key, count = preservation.rotate_keys(actor=users["sysadmin"])
    blob.refresh_from_db()
    assert blob.key_id == new_key and count >= 1
    assert _blob_path(blob.address).read_bytes() == before_bytes
    preservation.reset_blob_store()  # a fresh process reads the rotated key file
    assert b"".join(read_content(users["archivist"], record.pk).chunks) == body
    assert preservation.verify_fixity(actor=None, record_id=record.pk).ok


def test_only_the_right_roles_run_fixity_and_rotation(users: dict[str, Any]) -> None:
    from medarchive.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        preservation.verify_fixity(actor=users["officer"])
    with pytest.raises(PermissionDenied):
        preservation.rotate_keys(actor=users["auditor"])


class _Killed(Exception):
    pass


def test_recover_withdraws_the_object_of_a_writer_killed_before_its_commit(users: dict[str, Any]) -> None:
    staged = preservation.blob_store().stage(io.BytesIO(b"orphan " + secrets.token_bytes(64)), max_bytes=None)
    with pytest.raises(_Killed), transaction.atomic():
        [row] = preservation.publish([staged])
        assert row.state == Blob.STORED and _blob_path(row.address).exists()
        raise _Killed  # the process dies here: the rollback takes the row, the object and intent stay
    intent = staged.intent.path
    assert intent.exists() and _blob_path(staged.address).exists()
    elsewhere = intent.with_name(f"{staged.address}~some-host-that-is-gone~1~1")
    intent.rename(elsewhere)
    assert preservation.recover().intents_withdrawn == []  # another host's writer gets the grace period
    dead = elsewhere.with_name(f"{staged.address}~{preservation._HOST}~999999999~1")
    elsewhere.rename(dead)
    report = preservation.recover()
    assert report.intents_withdrawn == [staged.address]
    assert not _blob_path(staged.address).exists() and not dead.exists()
    assert not Blob.objects.filter(pk=staged.address).exists()


def test_recover_keeps_the_object_of_a_writer_killed_after_its_commit(users: dict[str, Any], make_record: Any) -> None:
    record = make_record(content=b"%PDF-1.7 committed, then killed")
    address = record.components.get().blob_id
    dead = settings.CONFIG.blob_dir / ".staging" / f"{address}~{preservation._HOST}~999999999~1"
    dead.write_bytes(b"")  # the intent it had no time to remove
    assert preservation.recover().intents_withdrawn == []
    assert _blob_path(address).exists() and not dead.exists()


def test_recover_reclaims_a_pending_claim_of_a_dead_writer(users: dict[str, Any]) -> None:
    staged = preservation.blob_store().stage(io.BytesIO(b"withdrawing " + secrets.token_bytes(64)), max_bytes=None)
    staged.commit()  # a writer withdrawing this object claimed it, then died before deleting it
    Blob.objects.create(
        address=staged.address, size=0, sha256="", sm3="", suite="", key_id="", wrapped_key=b"", stored_size=0,
        state=Blob.PENDING, owner="some-host-that-is-gone:1",
    )  # fmt: skip
    assert preservation.recover().pending_reclaimed == []  # another host's writer gets the grace period
    Blob.objects.filter(pk=staged.address).update(owner=f"{os.uname().nodename}:999999999")
    report = preservation.recover()
    assert report.pending_reclaimed == [staged.address]
    assert not _blob_path(staged.address).exists() and not Blob.objects.filter(pk=staged.address).exists()


def test_staging_clean_up_honours_the_configured_grace(users: dict[str, Any], settings: Any) -> None:
    import dataclasses
    import time

    staging = settings.CONFIG.blob_dir / ".staging"
    store = preservation.blob_store()
    young, old = staging / "stage-young.part", staging / "stage-old.part"
    for path in (young, old):
        path.write_bytes(b"ciphertext of a writer")
    now = time.time()
    os.utime(young, (now - 50, now - 50))  # a live writer paused for 50 s
    os.utime(old, (now - 200, now - 200))  # a killed writer's leftovers
    settings.CONFIG = dataclasses.replace(settings.CONFIG, staging_grace_seconds=120)
    assert preservation.recover().staging_removed == 1  # the worker's job uses the configured grace
    assert young.exists() and not old.exists()
    assert preservation.recover(grace_seconds=30).staging_removed == 1  # an explicit --grace wins
    assert not young.exists()
    assert store.storage.cleanup_staging(older_than=30) == 0


class _OneShotStream(io.RawIOBase):
    """A pipe-like source: it can be read once, front to back, and never rewound."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def seek(self, *args: Any) -> int:
        raise AssertionError("the content was read twice")

    def readinto(self, buffer: Any) -> int:
        chunk = self._data[self._pos : self._pos + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def test_content_is_hashed_in_the_one_pass_that_stores_it(users: dict[str, Any]) -> None:
    import hashlib

    body = b"%PDF-1.7 " + secrets.token_bytes(3 * 1024 * 1024 + 17)
    desc = Description(class_code="WS", department_code="BGS", title="单次读取", date="2025-01-02")
    record = create_record(desc, [IncomingFile(name="a.pdf", stream=_OneShotStream(body))], actor=users["archivist"])
    component = record.components.get()
    assert component.sha256 == hashlib.sha256(body).hexdigest()
    assert component.sm3 == hashlib.new("sm3", body).hexdigest()


def test_sm4_gcm_archive_path(users: dict[str, Any], settings: Any) -> None:
    import dataclasses

    settings.CONFIG = dataclasses.replace(settings.CONFIG, cipher="sm4-gcm")
    preservation.reset_blob_store()
    try:
        body = b"%PDF-1.7 " + secrets.token_bytes(2 * 1024 * 1024)
        record = _ingest(users, body)
        assert record.components.get().blob.suite == "sm4-gcm"
        assert b"".join(read_content(users["archivist"], record.pk).chunks) == body
        assert preservation.verify_fixity(actor=None, record_id=record.pk).ok
    finally:
        preservation.reset_blob_store()
