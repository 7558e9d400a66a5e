"""Audit trail, separation of duties, permission matrix, masking, tokens, lockout."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from medarchive.access import queries
from medarchive.access.services import read_content
from medarchive.archiving import services as archiving
from medarchive.core.errors import NotFound, PermissionDenied
from medarchive.security import audit
from medarchive.security.models import AuditEntry
from medarchive.security.permissions import can
from medarchive.security.roles import Action
from medarchive.security.services import authenticate_token, create_token, revoke_token, verify_audit


def _drop_audit_guards() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER audit_append_only_update")
            cursor.execute("DROP TRIGGER audit_append_only_delete")
        else:
            cursor.execute("DROP TRIGGER audit_append_only_update ON security_auditentry")
            cursor.execute("DROP TRIGGER audit_append_only_delete ON security_auditentry")


def test_every_content_read_is_audited(users: dict[str, Any], make_record: Any) -> None:
    record = make_record()
    for _ in range(2):
        b"".join(read_content(users["archivist"], record.pk).chunks)
    reads = AuditEntry.objects.filter(action="record:content:read", object_id=str(record.pk))
    assert reads.count() == 2 and reads.first().actor_name == "archivist"


def test_audit_rows_cannot_be_changed_through_the_database(users: dict[str, Any]) -> None:
    assert AuditEntry.objects.exists()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.update(actor_name="x")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.all().delete()


def test_audit_verify_catches_an_edited_row_and_names_it(users: dict[str, Any], make_record: Any) -> None:
    make_record()
    assert verify_audit(actor=users["auditor"]).ok
    _drop_audit_guards()  # an attacker with database access
    victim = AuditEntry.objects.order_by("seq")[2]
    AuditEntry.objects.filter(pk=victim.pk).update(actor_name="nobody")
    report = audit.verify_chain()
    assert not report.ok and report.first_bad_seq == victim.seq


def test_audit_verify_catches_a_deleted_row(users: dict[str, Any], make_record: Any) -> None:
    make_record()
    _drop_audit_guards()
    victim = AuditEntry.objects.order_by("seq")[1]
    AuditEntry.objects.filter(pk=victim.pk).delete()
    report = audit.verify_chain()
    assert not report.ok and report.first_bad_seq == victim.seq


def test_three_administrators_are_separated(users: dict[str, Any], make_record: Any) -> None:
    record = make_record()
    sysadmin, auditor, secadmin = users["sysadmin"], users["auditor"], users["secadmin"]
    with pytest.raises(PermissionDenied):
        verify_audit(actor=sysadmin)  # SEC-02: the system admin cannot read the audit log
    assert not can(sysadmin, Action.AUDIT_READ)
    assert not can(sysadmin, Action.RECORD_CONTENT_READ, record)
    assert not can(sysadmin, Action.ROLE_ASSIGN)  # cannot grant rights to themselves
    assert verify_audit(actor=auditor).ok
    for action in (
        Action.RECORD_CREATE,
        Action.RECORD_UPDATE,
        Action.RECORD_ARCHIVE,
        Action.USER_MANAGE,
        Action.KEYS_ROTATE,
    ):
        assert not can(auditor, action, record), action  # the auditor changes nothing
    assert can(secadmin, Action.ROLE_ASSIGN) and not can(secadmin, Action.AUDIT_READ)


# role fixture → can it see (BGS draft, NK draft, NK record archived and marked 开放)
MATRIX = [
    ("archivist", (True, True, True)),
    ("officer", (True, False, False)),
    ("clinician", (False, True, True)),
    ("researcher", (False, False, True)),
    ("viewer", (True, False, False)),
    ("sysadmin", (False, False, False)),
    ("auditor", (False, False, False)),
    ("secadmin", (False, False, False)),
]


@pytest.mark.parametrize(("who", "expected"), MATRIX)
def test_permission_matrix_lists_and_gets_agree(
    users: dict[str, Any], make_record: Any, who: str, expected: tuple[bool, bool, bool]
) -> None:
    published = make_record(department="NK", open_status="开放", title="开放的年度报告")
    for step in (archiving.submit_record, archiving.accept_record, archiving.archive_record):
        step(published.pk, actor=users["archivist"])
    records = (make_record(department="BGS"), make_record(department="NK"), published)
    actor = users[who]
    visible = set(queries.visible_records(actor).values_list("pk", flat=True))
    for record, allowed in zip(records, expected, strict=True):
        assert (record.pk in visible) is allowed, (who, record.title)
        if allowed:
            assert queries.get_record(actor, record.pk).pk == record.pk
        else:
            with pytest.raises(NotFound):  # never reveal that an invisible record exists
                queries.get_record(actor, record.pk)


def test_viewer_sees_metadata_but_not_content(users: dict[str, Any], make_record: Any) -> None:
    record = make_record(department="BGS")
    assert queries.get_record(users["viewer"], record.pk)
    with pytest.raises(PermissionDenied):
        read_content(users["viewer"], record.pk)


def test_patient_identifiers_are_masked_without_the_right(users: dict[str, Any], make_record: Any) -> None:
    record = make_record(
        department="NK",
        class_code="BA-ZY",
        open_status="开放",
        metadata={"patient_id": "P000123", "patient_name": "张某某", "pages": 4},
    )
    seen_by_clinician = queries.describe(record, users["clinician"])["metadata"]
    seen_by_researcher = queries.describe(record, users["researcher"])["metadata"]
    assert seen_by_clinician["patient_name"] == "张某某"
    assert seen_by_researcher["patient_name"] == "***" and seen_by_researcher["patient_id"] == "***"
    assert seen_by_researcher["pages"] == 4


def test_tokens_are_stored_hashed_scoped_and_revocable(users: dict[str, Any]) -> None:
    token, raw = create_token(users["officer"], actor=users["officer"], name="HIS")
    assert raw not in token.digest and token.digest != raw and token.prefix == raw[:12]
    assert authenticate_token(raw)[0] == users["officer"]
    assert authenticate_token(raw + "x") is None
    revoke_token(token.pk, actor=users["secadmin"])
    assert authenticate_token(raw) is None


def test_listing_is_audited_with_what_was_shown(users: dict[str, Any], make_record: Any) -> None:
    record = make_record()
    page = queries.list_records(users["officer"], queries.RecordFilter(q="通知"), page_size=10)
    assert [r.pk for r in page.items] == [record.pk]
    entry = AuditEntry.objects.filter(action="record:list", actor_name="officer").get()
    assert entry.details["shown"] == [str(record.pk)] and entry.details["filters"] == {"q": "通知"}


def test_an_account_may_carry_an_email_for_reminders_and_a_bad_one_is_refused(archive: Any) -> None:
    from medarchive.core.errors import ValidationError
    from medarchive.security.services import add_user

    user = add_user("li", actor=None, role="archivist", password="Correct-Horse-42", email="li@hospital.example")
    assert user.email == "li@hospital.example"
    with pytest.raises(ValidationError) as info:
        add_user("wu", actor=None, role="archivist", password="Correct-Horse-42", email="not-an-address")
    assert (info.value.code, info.value.field) == ("bad_email", "email")


def test_a_new_account_reports_every_problem_at_once(archive: Any) -> None:
    from django.utils import translation

    from medarchive.core.errors import Problems
    from medarchive.security.services import add_user

    with pytest.raises(Problems) as info:
        add_user(" ", actor=None, role="boss", password="short", department_code="ZZ", email="nowhere")
    assert [(p.code, p.field) for p in info.value.problems] == [
        ("required", "username"),
        ("invalid_choice", "role"),
        ("unknown_department", "department"),
        ("bad_email", "email"),
        ("weak_password", "password"),
    ]
    with translation.override("zh-hans"):
        assert info.value.by_field()["username"] == ["用户名不能为空。"]
    with translation.override("en"):
        assert info.value.by_field()["username"] == ["User name is required."]
        assert info.value.by_field()["department"] == ["The department ZZ does not exist."]


def test_departments_report_every_problem_at_once(archive: Any) -> None:
    from medarchive.core.errors import Conflict, Problems
    from medarchive.core.services import add_department

    with pytest.raises(Problems) as info:
        add_department("a-b", " ", actor=None)
    assert [(p.code, p.field) for p in info.value.problems] == [("bad_department_code", "code"), ("required", "name")]
    assert info.value.by_field()["name"] == ["部门名称不能为空。"]
    with pytest.raises(Conflict) as taken:
        add_department("NK", "内科二", actor=None)
    assert taken.value.code == "department_exists"
