"""The door: quality checks, routing, registers and the review (CAP-02/03/06/07), on the real database and store."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest

from medarchive.archiving.models import ArchiveClass, BusinessEvent, Record
from medarchive.capture import review
from medarchive.capture.intake import Item, Register, RegisterMismatch, receive
from medarchive.capture.models import Intake, Submission
from medarchive.capture.queries import returned_inbox, review_queue
from medarchive.capture.services import Description, IncomingFile
from medarchive.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from medarchive.preservation.models import Blob
from medarchive.preservation.services import blob_store
from medarchive.security.models import AuditEntry

PDF = b"%PDF-1.7\n"


def _pdf(n: int) -> bytes:
    return PDF + f"document {n} ".encode() * 40


def _inpatient(n: int = 1, **metadata: Any) -> Description:
    meta = {"patient_id": f"P{n:04d}", "patient_name": "张三", **metadata}
    return Description(
        class_code="BA-ZY", department_code="NK", title=f"住院病案 {n}", date="2025-03-01", metadata=meta
    )


def _notice(n: int = 1, **fields: Any) -> Description:
    date = fields.pop("date", "2025-03-01")
    return Description(class_code="WS", department_code="BGS", title=f"关于第{n}号事项的通知", date=date, **fields)


def _item(desc: Description, content: bytes, name: str = "a.pdf", key: str | None = None) -> Item:
    return Item(desc, [IncomingFile(name=name, stream=io.BytesIO(content))], key=key, label=name)


def _chinese_text(*, seed: int, length: int = 3000) -> str:
    rng = random.Random(seed)
    common = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
    return "".join(rng.choice(common) for _ in range(length))


def _one(actor: Any, desc: Description, content: bytes, name: str = "a.pdf", **kw: Any) -> Any:
    return receive([_item(desc, content, name)], actor=actor, channel="rest", **kw).outcomes[0]


def _rules(outcome: Any) -> set[str]:
    return {f["rule"] for f in outcome.intake.findings}


def test_a_clean_record_of_an_auto_accepting_class_is_accepted_with_every_step_recorded(users: dict[str, Any]) -> None:
    outcome = _one(users["officer_nk"], _inpatient(), _pdf(1))
    record = outcome.record
    assert outcome.ok and record.state == "accepted" and outcome.intake.state == "accepted"
    steps = list(BusinessEvent.objects.filter(record=record).values_list("action", "state"))
    assert steps == [("登记", "草稿"), ("提交", "已提交"), ("检测", "已提交"), ("接收", "已接收")]
    actions = list(AuditEntry.objects.filter(object_id=str(record.pk)).values_list("action", flat=True))
    assert actions == ["record:create", "record:submit", "record:submit", "record:accept"]


def test_a_class_without_auto_accept_waits_in_the_queue(users: dict[str, Any]) -> None:
    outcome = _one(users["officer"], _notice(), _pdf(2))
    assert outcome.record.state == "submitted" and outcome.intake.state == "pending"
    assert outcome.intake.findings == []
    queue = review_queue(users["archivist"])
    assert [i.record_id for i in queue.items] == [outcome.record.pk]


def test_missing_mandatory_metadata_is_an_error(users: dict[str, Any]) -> None:
    desc = _inpatient()
    desc.metadata.pop("patient_id")
    outcome = _one(users["officer_nk"], desc, _pdf(3))
    assert outcome.record.state == "submitted" and outcome.intake.errors == 1
    assert outcome.intake.findings[0]["field"] == "metadata.patient_id"


def test_formats_are_judged_from_content_not_the_name(users: dict[str, Any]) -> None:
    # A zip named .pdf is a zip: not accepted for 文书.
    outcome = _one(users["officer"], _notice(), b"PK\x03\x04" + b"\x00" * 200, name="renamed.pdf")
    assert _rules(outcome) == {"format"} and outcome.intake.errors == 1
    assert "ZIP" in outcome.intake.findings[0]["message"]


def test_an_office_file_is_accepted_with_a_conversion_warning(users: dict[str, Any]) -> None:
    from medarchive.demo.files import word_document

    outcome = _one(users["officer"], _notice(), word_document("通知", ["正文"]), name="通知.docx")
    assert _rules(outcome) == {"convert"} and outcome.intake.errors == 0 and outcome.intake.warnings == 1


def test_size_rule_of_the_class(users: dict[str, Any]) -> None:
    ArchiveClass.objects.filter(code="WS").update(intake_rules={"formats": ["application/pdf"], "max_bytes": 100})
    from medarchive.core import refcache

    refcache.clear()
    outcome = _one(users["officer"], _notice(), _pdf(4))
    assert _rules(outcome) == {"size"}


def test_dates_must_be_sane(users: dict[str, Any]) -> None:
    outcome = _one(users["officer_nk"], _inpatient(admission_date="2025-03-10", discharge_date="2025-03-01"), _pdf(5))
    assert _rules(outcome) == {"date"} and "before" in outcome.intake.findings[0]["message"]
    future = _one(users["officer_nk"], _inpatient(2, discharge_date="2999-01-01"), _pdf(6))
    assert "future" in future.intake.findings[0]["message"]
    # A value that is not a date at all is refused by the metadata schema before anything is written.
    garbage = _one(users["officer_nk"], _inpatient(3, discharge_date="yesterday"), _pdf(7))
    assert garbage.error is not None and garbage.error.field and "discharge_date" in garbage.error.field


def test_exact_duplicates_are_errors_and_near_duplicates_warnings(users: dict[str, Any]) -> None:
    first = _one(users["officer"], _notice(1), _pdf(8))
    twin = _one(users["officer"], _notice(2), _pdf(8), name="again.pdf")
    assert _rules(twin) == {"duplicate"} and first.record.electronic_no in twin.intake.findings[0]["message"]
    text = _chinese_text(seed=1)
    _one(users["officer"], _notice(3), text.encode(), name="a.txt")
    # The same text saved again: other encoding, other line breaks, two characters changed.
    edited = "\n".join(text[i : i + 60] for i in range(0, len(text), 60)).replace(text[100], "改", 1)
    near = _one(users["officer"], _notice(4), edited.encode("gb18030"), name="b.txt")
    assert "near_duplicate" in _rules(near)
    unrelated = _one(users["officer"], _notice(5), _chinese_text(seed=2).encode(), name="c.txt")
    assert "near_duplicate" not in _rules(unrelated)


def test_a_bad_item_is_rejected_and_the_rest_received_leaving_nothing_behind(users: dict[str, Any]) -> None:
    before = len(list(blob_store().storage.addresses()))
    result = receive(
        [_item(_notice(1), _pdf(9)), _item(_notice(2), b"", name="empty.pdf"), _item(_notice(3), _pdf(10), name="b")],
        actor=users["officer"],
        channel="import",
    )
    assert [o.status for o in result.outcomes] == ["received", "rejected", "received"]
    assert result.outcomes[1].error is not None and "empty" in result.outcomes[1].error.message
    submission = Submission.objects.get(pk=result.submission.pk)
    assert (submission.received_count, submission.failed_count) == (2, 1)
    assert [i["status"] for i in submission.report["items"]] == ["received", "rejected", "received"]
    assert len(list(blob_store().storage.addresses())) == before + 2
    assert not Blob.objects.exclude(state=Blob.STORED).exists()


def test_a_register_that_does_not_match_fails_the_whole_submission(users: dict[str, Any]) -> None:
    before = len(list(blob_store().storage.addresses()))
    items = [_item(_notice(1), _pdf(11)), _item(_notice(2), _pdf(12), name="b.pdf")]
    with pytest.raises(RegisterMismatch) as caught:
        receive(items, actor=users["officer"], channel="rest", key="batch-1", register=Register(3, 10))
    mismatch = caught.value
    assert mismatch.code == "register_mismatch" and len(mismatch.details["problems"]) == 2
    assert (mismatch.details["declared_count"], mismatch.details["received_count"]) == (3, 2)
    assert "登记表登记了 3 件档案、共 10 字节" in mismatch.message and "实际收到 2 件" in mismatch.message
    assert not Record.objects.exists() and len(list(blob_store().storage.addresses())) == before
    failed = Submission.objects.get()
    assert failed.state == "rejected" and failed.report["register"]["received_count"] == 2
    # The key is free again: the corrected retry goes through.
    total = len(_pdf(11)) + len(_pdf(12))
    items = [_item(_notice(1), _pdf(11)), _item(_notice(2), _pdf(12), name="b.pdf")]
    ok = receive(items, actor=users["officer"], channel="rest", key="batch-1", register=Register(2, total))
    assert [o.status for o in ok.outcomes] == ["received", "received"]


def test_a_retried_submission_creates_nothing_twice(users: dict[str, Any]) -> None:
    def send() -> Any:
        items = [_item(_notice(1), _pdf(13), key="s#0"), _item(_notice(2), _pdf(14), name="b.pdf", key="s#1")]
        return receive(items, actor=users["officer"], channel="rest", key="s")

    first, again = send(), send()
    assert [o.status for o in again.outcomes] == ["replayed", "replayed"]
    assert [o.record.pk for o in again.outcomes] == [o.record.pk for o in first.outcomes]
    assert Record.objects.count() == 2 and again.submission.pk == first.submission.pk
    assert Submission.objects.get().received_count == 2


# --- the review ---------------------------------------------------------------------------------


def test_errors_block_acceptance_unless_overridden_with_a_reason(users: dict[str, Any]) -> None:
    outcome = _one(users["officer"], _notice(), b"PK\x03\x04" + b"\x00" * 50, name="x.zip")
    archivist = users["archivist"]
    with pytest.raises(Conflict) as blocked:
        review.accept(outcome.record.pk, actor=archivist)
    assert (blocked.value.code, blocked.value.field, blocked.value.details["errors"]) == (
        "blocking_findings",
        "findings",
        1,
    )
    with pytest.raises(ValidationError) as info:
        review.accept(outcome.record.pk, actor=archivist, override=True)
    assert (info.value.code, info.value.field) == ("required", "comment")
    record = review.accept(outcome.record.pk, actor=archivist, override=True, comment="原件即为压缩包，经确认保留")
    assert record.state == "accepted"
    last = BusinessEvent.objects.filter(record=record).last()
    assert last is not None and "原件即为压缩包" in last.basis


def test_return_fix_resubmit_and_accept(users: dict[str, Any]) -> None:
    desc = _inpatient()
    desc.metadata.pop("patient_name")
    record = _one(users["officer_nk"], desc, _pdf(15)).record
    with pytest.raises(ValidationError):
        review.return_to_department(record.pk, actor=users["archivist"], comment="  ")
    review.return_to_department(record.pk, actor=users["archivist"], comment="请补充患者姓名")
    record.refresh_from_db()
    assert record.state == "draft"
    inbox = returned_inbox(users["officer_nk"])
    assert [i.record_id for i in inbox.items] == [record.pk] and inbox.items[0].comment == "请补充患者姓名"
    assert returned_inbox(users["officer"]).items == []  # another department sees nothing
    from medarchive.capture.services import update_draft

    update_draft(record.pk, {"metadata": {**record.metadata, "patient_name": "张三"}}, actor=users["officer_nk"])
    review.submit(record.pk, actor=users["officer_nk"])
    intake = Intake.objects.get(record=record)
    record.refresh_from_db()
    # BA-ZY accepts clean records by itself: the fixed resubmission goes straight in.
    assert intake.rounds == 2 and intake.state == "accepted" and record.state == "accepted"
    verbs = list(BusinessEvent.objects.filter(record=record).values_list("action", flat=True))
    assert verbs == ["登记", "提交", "检测", "退回", "著录修改", "重新提交", "检测", "接收"]


def test_the_archivist_fixes_metadata_at_the_door_and_the_checks_run_again(users: dict[str, Any]) -> None:
    outcome = _one(users["officer"], _notice(doc_number=""), _pdf(16))
    ArchiveClass.objects.filter(code="WS").update(
        required_fields=["doc_type"], intake_rules={"formats": ["application/pdf"]}
    )
    from medarchive.core import refcache

    refcache.clear()
    intake = review.recheck(outcome.record.pk, actor=users["archivist"])
    assert intake.errors == 1
    review.fix(outcome.record.pk, {"metadata": {"doc_type": "通知"}}, actor=users["archivist"])
    assert Intake.objects.get(record=outcome.record).errors == 0


def test_withdraw_keeps_the_record_and_its_files_as_withdrawn(users: dict[str, Any]) -> None:
    record = _one(users["officer"], _notice(), _pdf(17)).record
    review.return_to_department(record.pk, actor=users["archivist"], comment="重复提交")
    with pytest.raises(ValidationError):
        review.withdraw(record.pk, actor=users["officer"], reason="")
    review.withdraw(record.pk, actor=users["officer"], reason="已在其他件中归档")
    record.refresh_from_db()
    assert record.state == "withdrawn" and record.components.count() == 1
    with pytest.raises(Conflict):
        review.submit(record.pk, actor=users["officer"])
    # A withdrawn record no longer counts as a duplicate of new content.
    again = _one(users["officer"], _notice(2), _pdf(17))
    assert "duplicate" not in _rules(again)


def test_who_may_do_what_at_the_door(users: dict[str, Any]) -> None:
    record = _one(users["officer"], _notice(), _pdf(18)).record
    with pytest.raises(PermissionDenied):
        review.accept(record.pk, actor=users["officer"])
    with pytest.raises(PermissionDenied):
        review_queue(users["officer"])
    with pytest.raises(NotFound):  # another department's record does not exist for them
        review.withdraw(record.pk, actor=users["officer_nk"], reason="x")
    with pytest.raises(PermissionDenied):
        review.return_to_department(record.pk, actor=users["officer"], comment="x")


def test_bulk_accept_reports_each_record(users: dict[str, Any]) -> None:
    good = [_one(users["officer"], _notice(n), _pdf(100 + n), name=f"{n}.pdf").record for n in range(3)]
    bad = _one(users["officer"], _notice(9), b"PK\x03\x04" + b"\x00" * 50, name="x.zip").record
    outcomes = review.accept_many([*(r.pk for r in good), bad.pk, "not-a-uuid"], actor=users["archivist"])
    assert [o.ok for o in outcomes] == [True, True, True, False, False]
    assert "1 个错误" in outcomes[3].message
    assert Record.objects.filter(state="accepted").count() == 3


def test_a_rerun_replaces_fixed_rows_in_the_register_and_counts_nothing_twice(users: dict[str, Any]) -> None:
    def run(second_date: str) -> Any:
        items = [
            Item(_notice(1), [IncomingFile(name="a.pdf", stream=io.BytesIO(_pdf(20)))], key="r1", label="row 1"),
            Item(
                _notice(2, date=second_date),
                [IncomingFile(name="b.pdf", stream=io.BytesIO(_pdf(21)))],
                key="r2",
                label="row 2",
            ),
        ]
        return receive(items, actor=users["officer"], channel="import", key="manifest-x")

    first = run("2025-13-01")
    assert [o.status for o in first.outcomes] == ["received", "rejected"]
    run("2025-13-01")  # the same broken carrier again
    fixed = run("2025-03-02")
    assert [o.status for o in fixed.outcomes] == ["replayed", "received"]
    submission = Submission.objects.get()
    assert [i["status"] for i in submission.report["items"]] == ["received", "received"]
    assert (submission.received_count, submission.failed_count) == (2, 0)
    assert submission.received_bytes == len(_pdf(20)) + len(_pdf(21))


def test_a_file_its_parser_chokes_on_is_still_captured(users: dict[str, Any]) -> None:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:  # a .docx whose XML is garbage: python-docx raises lxml errors
        archive.writestr("[Content_Types].xml", "<Types")
        archive.writestr("word/document.xml", "<w:document><<<")
    outcome = _one(users["officer"], _notice(), out.getvalue(), name="broken.docx")
    assert outcome.ok and outcome.record is not None


def test_an_unexpected_failure_fails_its_item_only_and_the_register_is_written(
    users: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from medarchive.capture import intake as door

    real = door.check

    def flaky(record: Any, intake: Any, *, actor: Any) -> Any:
        if record.title.endswith("2号事项的通知"):
            raise RuntimeError("disk on fire")
        return real(record, intake, actor=actor)

    monkeypatch.setattr(door, "check", flaky)
    before = len(list(blob_store().storage.addresses()))
    result = receive(
        [_item(_notice(1), _pdf(30)), _item(_notice(2), _pdf(31), name="b.pdf"), _item(_notice(3), _pdf(32), name="c")],
        actor=users["officer"],
        channel="rest",
    )
    assert [o.status for o in result.outcomes] == ["received", "rejected", "received"]
    error = result.outcomes[1].error
    assert error is not None and error.code == "internal_error" and "disk" not in error.message
    assert Record.objects.count() == 2 and len(list(blob_store().storage.addresses())) == before + 2
    assert Submission.objects.get().failed_count == 1


def test_a_duplicate_in_another_department_is_not_named_to_the_submitter(users: dict[str, Any]) -> None:
    from django.test import Client

    from medarchive.capture.findings import for_viewer
    from medarchive.security.services import create_token

    theirs = _one(users["officer_nk"], _inpatient(1), _pdf(40)).record  # NK's record
    mine = _one(users["officer"], _notice(1), _pdf(40), name="copy.pdf")  # same bytes, BGS
    stored = mine.intake.findings[0]
    assert stored["rule"] == "duplicate" and stored["params"]["record_id"] == str(theirs.pk)
    shown = for_viewer(mine.intake.findings, users["officer"])
    assert theirs.electronic_no not in str(shown) and "already in the archive" in shown[0]["message"]
    assert for_viewer(mine.intake.findings, users["archivist"]) == mine.intake.findings
    _, raw = create_token(users["officer"], actor=None, name="t")
    response = Client().get(f"/api/v1/records/{mine.record.pk}/intake", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200 and theirs.electronic_no not in response.content.decode()
    # reading the intake is a metadata read, audited like any other
    assert AuditEntry.objects.filter(action="record:metadata:read", object_id=str(mine.record.pk)).exists()


def test_a_record_at_the_door_is_edited_only_by_the_archive_and_then_checked_again(users: dict[str, Any]) -> None:
    from medarchive.capture.services import update_draft

    pending = _one(users["officer"], _notice(7), _pdf(51)).record
    with pytest.raises(Conflict, match="正在等待档案室审核"):
        update_draft(pending.pk, {"metadata": {"discharge_date": "2099-01-01"}}, actor=users["officer"])
    update_draft(pending.pk, {"metadata": {"discharge_date": "2099-01-01"}}, actor=users["archivist"])
    intake = Intake.objects.get(record=pending)
    assert intake.errors == 1 and intake.findings[0]["field"] == "metadata.discharge_date"
    with pytest.raises(Conflict):
        review.accept(pending.pk, actor=users["archivist"])


def test_withdrawing_frees_the_key_so_the_corrected_record_can_come_again(users: dict[str, Any]) -> None:
    def send(title: str) -> Any:
        desc = _notice(1)
        desc.title = title
        items = [Item(desc, [IncomingFile(name="a.pdf", stream=io.BytesIO(_pdf(60)))], key="folder:abc", label="a.pdf")]
        return receive(items, actor=users["officer"], channel="folder").outcomes[0]

    first = send("错误的题名")
    review.return_to_department(first.record.pk, actor=users["archivist"], comment="题名有误")
    review.withdraw(first.record.pk, actor=users["officer"], reason="重新提交")
    again = send("正确的题名")
    assert again.status == "received" and again.record.pk != first.record.pk
    assert again.record.title == "正确的题名" and "duplicate" not in _rules(again)


def test_reading_a_submission_register_is_audited(users: dict[str, Any]) -> None:
    from medarchive.capture.queries import get_submission, submissions

    outcome = _one(users["officer"], _notice(1), _pdf(70))
    get_submission(users["officer"], outcome.intake.submission_id)
    submissions(users["archivist"])
    shown = [e.details["shown"] for e in AuditEntry.objects.filter(action="record:list")]
    assert [str(outcome.record.pk)] in shown and len(shown) == 2
