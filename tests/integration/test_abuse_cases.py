"""Abuse cases found in review: each test is an attack or a broken input that must fail safely."""

from __future__ import annotations

import dataclasses
import io
import math
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, transaction
from django.test import Client

from medarchive.access import queries
from medarchive.archiving import services as archiving
from medarchive.archiving.models import Component, Record
from medarchive.archiving.volumes import add_to_volume, create_volume
from medarchive.capture.services import Description, IncomingFile, create_record, update_draft
from medarchive.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from medarchive.preservation import services as preservation
from medarchive.preservation.keys import KeyRing
from medarchive.preservation.models import Blob
from medarchive.security import audit, trailcheck
from medarchive.security.models import AuditEntry
from medarchive.security.services import add_user, create_token, revoke_token

STRONG = "Another-Secret-99"


def _auth(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


# --- separation of duties (SEC-02) -------------------------------------------------------------


def test_only_the_security_admin_creates_accounts(users: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied):
        add_user("puppet", actor=users["sysadmin"], role="archivist", password=STRONG)
    created = add_user("li", actor=users["secadmin"], role="archivist", password=STRONG)
    assert created.role == "archivist"


@pytest.mark.parametrize("role", ["sysadmin", "secadmin", "auditor"])
def test_administrator_accounts_come_only_from_the_local_console(users: dict[str, Any], role: str) -> None:
    with pytest.raises(PermissionDenied) as info:
        add_user(f"new-{role}", actor=users["secadmin"], role=role, password=STRONG)
    assert info.value.code == "console_only" and info.value.details["action"] == "user:role:assign"
    assert "本机控制台" in info.value.message


def test_tokens_are_issued_to_their_owner_only(users: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied) as info:
        create_token(users["archivist"], actor=users["sysadmin"])
    assert info.value.code == "token_owner_only"
    token, _ = create_token(users["archivist"], actor=users["archivist"], name="my script")
    with pytest.raises(PermissionDenied):
        revoke_token(token.pk, actor=users["officer"])
    revoke_token(token.pk, actor=users["secadmin"])  # a leaked token can be killed by security


# --- scopes, openness, existence ----------------------------------------------------------------


def test_a_list_only_token_sees_patient_identifiers_masked(
    client: Client, users: dict[str, Any], make_record: Any
) -> None:
    make_record(department="NK", class_code="BA-ZY", metadata={"patient_id": "P001", "patient_name": "张三"})
    _, raw = create_token(users["archivist"], actor=None, scopes=["record:list"])
    items = client.get("/api/v1/records", **_auth(raw)).json()["items"]
    assert items[0]["metadata"] == {"patient_id": "***", "patient_name": "***"}


def test_submitters_cannot_open_records_and_drafts_are_never_public(users: dict[str, Any], make_record: Any) -> None:
    with pytest.raises(PermissionDenied) as info:
        make_record(actor=users["officer"], open_status="开放")
    assert (info.value.code, info.value.field) == ("open_status_reserved", "open_status")
    record = make_record(actor=users["officer"])
    with pytest.raises(PermissionDenied) as info:
        update_draft(record.pk, {"open_status": "开放"}, actor=users["officer"])
    assert (info.value.code, info.value.field) == ("open_status_reserved", "open_status")
    draft = make_record(open_status="开放")  # the archivist may, but a draft is still not public
    assert not queries.visible_records(users["researcher"]).filter(pk=draft.pk).exists()
    for step in (archiving.submit_record, archiving.accept_record, archiving.archive_record):
        step(draft.pk, actor=users["archivist"])
    assert queries.visible_records(users["researcher"]).filter(pk=draft.pk).exists()


def test_changes_to_invisible_records_look_like_missing_records(users: dict[str, Any], make_record: Any) -> None:
    nk_record = make_record(department="NK")
    with pytest.raises(NotFound):
        update_draft(nk_record.pk, {"title": "x"}, actor=users["officer"])
    with pytest.raises(NotFound):
        archiving.submit_record(nk_record.pk, actor=users["officer"])
    with pytest.raises(NotFound):
        archiving.submit_record("not-a-uuid", actor=users["archivist"])


def test_volumes_hold_their_own_department_only(users: dict[str, Any], make_record: Any) -> None:
    volume = create_volume(actor=users["archivist"], class_code="KJ", department_code="NK", title="NK 项目", year=2024)
    record = make_record(class_code="KJ-SB", department="BGS", actor=users["officer"])
    with pytest.raises(PermissionDenied):
        add_to_volume(record.pk, volume.pk, actor=users["officer"])
    with pytest.raises(ValidationError) as info:
        add_to_volume(record.pk, volume.pk, actor=users["archivist"])
    assert info.value.code == "other_department"


def test_idempotency_keys_belong_to_their_caller(users: dict[str, Any], make_record: Any) -> None:
    def submit(actor: Any, department: str) -> Any:
        desc = Description(class_code="WS", department_code=department, title="t", date="2025-01-01")
        return create_record(
            desc, [IncomingFile(name="a.pdf", stream=io.BytesIO(b"%PDF x"))], actor=actor, idempotency_key="his-1234"
        )

    first = submit(users["officer_nk"], "NK")
    second = submit(users["officer"], "BGS")  # same key, other caller: no 409, no leak
    assert first.pk != second.pk


# --- database guards (PRE-07) -------------------------------------------------------------------


def _archived(make_record: Any, users: dict[str, Any]) -> Any:
    record = make_record()
    for step in (archiving.submit_record, archiving.accept_record, archiving.archive_record):
        step(record.pk, actor=users["archivist"])
    return record


def test_an_archived_record_cannot_be_unfrozen_to_edit_it(users: dict[str, Any], make_record: Any) -> None:
    record = _archived(make_record, users)
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Record.objects.filter(pk=record.pk).update(state="draft")
    assert Record.objects.get(pk=record.pk).state == "archived"


def test_no_file_can_be_added_to_or_moved_into_an_archived_record(users: dict[str, Any], make_record: Any) -> None:
    record = _archived(make_record, users)
    other = make_record()
    component = record.components.get()
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Component.objects.create(
            record=record,
            sequence=2,
            filename="extra.pdf",
            size=1,
            mime_type="x",
            format_name="x",
            sha256="0" * 64,
            sm3="0" * 64,
            blob=component.blob,
        )
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        other.components.update(record=record, sequence=9)


# --- storage recovery and keys ------------------------------------------------------------------


class _Rollback(Exception):
    pass


def _published_then_rolled_back(body: bytes) -> Any:
    """A writer that published its object and whose transaction then rolled back, before it withdrew it."""
    staged = preservation.blob_store().stage(io.BytesIO(body), max_bytes=None)
    with pytest.raises(_Rollback), transaction.atomic():
        preservation.publish([staged])
        raise _Rollback
    assert not Blob.objects.filter(address=staged.address).exists()
    assert preservation.blob_store().storage.exists(staged.address)
    return staged


def test_recover_never_withdraws_a_live_writer_on_this_host(users: dict[str, Any]) -> None:
    staged = _published_then_rolled_back(b"in flight")
    assert preservation.recover(grace_seconds=0).intents_withdrawn == []  # its writer (this process) lives
    assert preservation.blob_store().storage.exists(staged.address)
    preservation.withdraw([staged])
    assert not preservation.blob_store().storage.exists(staged.address)
    assert not staged.intent.path.exists()


def test_content_being_withdrawn_is_not_linked_to_a_new_record(users: dict[str, Any]) -> None:
    staged = preservation.blob_store().stage(io.BytesIO(b"being withdrawn"), max_bytes=None)
    Blob.objects.create(
        address=staged.address, size=0, sha256="", sm3="", suite="", key_id="", wrapped_key=b"", stored_size=0,
        state=Blob.PENDING, owner="elsewhere:1",
    )  # fmt: skip
    with pytest.raises(Conflict) as info, transaction.atomic():
        preservation.publish([staged])
    assert info.value.code == "blob_busy"


def test_a_running_process_reads_files_rekeyed_by_another_process(
    users: dict[str, Any], make_record: Any, settings: Any
) -> None:
    record = make_record(content=b"%PDF-1.7 rekeyed elsewhere")
    from medarchive.access.services import read_content

    assert b"".join(read_content(users["archivist"], record.pk).chunks)  # this process caches its key ring
    other = KeyRing.load(settings.CONFIG.key_file)  # `medarchive keys rotate` in another process
    other.rotate(settings.CONFIG.key_file)
    blob = record.components.get().blob
    blob.key_id, blob.wrapped_key = other.wrap(other.unwrap(blob.key_id, bytes(blob.wrapped_key)))
    blob.save(update_fields=["key_id", "wrapped_key"])
    assert b"".join(read_content(users["archivist"], record.pk).chunks) == b"%PDF-1.7 rekeyed elsewhere"


def test_configuration_repr_hides_secrets(settings: Any) -> None:
    config = dataclasses.replace(
        settings.CONFIG, master_key="TOP-SECRET-MASTER", database_url="postgres://u:pw-123@db/x"
    )
    text = repr(config)
    assert config.secret_key not in text and "TOP-SECRET-MASTER" not in text and "pw-123" not in text


# --- audit ----------------------------------------------------------------------------------------


def test_web_refusals_and_dashboard_titles_are_audited(client: Client, users: dict[str, Any], make_record: Any) -> None:
    record = make_record(department="BGS")
    client.force_login(users["viewer"])
    assert client.get(f"/records/{record.pk}/files/1/").status_code == 403
    assert AuditEntry.objects.filter(action="record:content:read", result="denied", actor_name="viewer").exists()
    assert client.get("/").status_code == 200
    shown = AuditEntry.objects.filter(action="record:list", actor_name="viewer").latest("seq").details["shown"]
    assert str(record.pk) in shown


def test_audit_details_must_survive_every_database(users: dict[str, Any]) -> None:
    for bad in ({"x": 1e20}, {"x": math.nan}, {"x": "a\x00b"}, {"x": [0.5]}):
        with pytest.raises(TypeError), transaction.atomic():
            audit.record_event("test:event", actor=None, details=bad)


def test_verification_stops_at_the_head_it_read(users: dict[str, Any]) -> None:
    head_before = AuditEntry.objects.count()
    with transaction.atomic():
        audit.record_event("test:event", actor=None)
    entries = list(trailcheck._entries(1, head_before))
    assert [e.seq for e in entries] == list(range(1, head_before + 1))


# --- hostile input --------------------------------------------------------------------------------


def test_hostile_inputs_get_clear_errors_not_crashes(client: Client, users: dict[str, Any], make_record: Any) -> None:
    with pytest.raises(ValidationError, match="NaN") as info:
        make_record(metadata={"amount": math.inf})
    assert (info.value.code, info.value.field) == ("not_finite", "metadata.amount")
    with pytest.raises(ValidationError) as info:
        queries.list_records(users["archivist"], queries.RecordFilter(q="a\x00b"))
    assert (info.value.code, info.value.field) == ("bad_search_text", "q")
    record = _archived(make_record, users)
    with pytest.raises(ValidationError) as info:
        archiving.hold_record(record.pk, actor=users["archivist"], reason="长" * 201)
    assert (info.value.code, info.value.field) == ("too_long", "reason")
    with pytest.raises(ValidationError) as info:
        preservation.verify_fixity(actor=None, sample=-1)
    assert (info.value.code, info.value.field) == ("bad_sample", "sample")
    with pytest.raises(NotFound):
        preservation.verify_fixity(actor=None, record_id="x")
    client.force_login(users["archivist"])
    assert client.get("/records/?page=²&year=²").status_code == 200
    _, raw = create_token(users["archivist"], actor=None)
    form = {
        "class_code": "WS",
        "department": "BGS",
        "title": "t",
        "date": "2025-01-01",
        "metadata": '{"n": NaN}',
        "files": [SimpleUploadedFile("a.pdf", b"%PDF x")],
    }
    response = client.post("/api/v1/records", form, **_auth(raw))
    assert response.status_code == 422 and response.json()["field"] == "metadata.n"
    assert Record.objects.count() == 1  # only the archived one made above


def test_an_overlong_login_name_is_refused_and_audited(client: Client, archive: Any) -> None:
    response = client.post("/login/", {"username": "u" * 80, "password": "wrong"})
    assert response.status_code == 401
    entry = AuditEntry.objects.filter(action="auth:login").latest("seq")
    assert entry.result == "failure" and entry.details["username"] == "u" * 80
