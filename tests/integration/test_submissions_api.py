"""/api/v1/submissions, /api/v1/uploads and /api/v1/review through Django's test client."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from tests.debris import staging_debris

from medarchive.access.services import read_content
from medarchive.archiving.models import Record
from medarchive.capture.models import Submission, Upload
from medarchive.security.services import create_token


@pytest.fixture
def auth(users: dict[str, Any]) -> dict[str, dict[str, str]]:
    headers = {}
    for name in ("archivist", "officer", "officer_nk", "viewer"):
        _, raw = create_token(users[name], actor=None, name="test")
        headers[name] = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    return headers


def _pdf(n: int) -> bytes:
    return b"%PDF-1.7\n" + f"page {n} ".encode() * 60


def _entry(name: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "class_code": "WS",
        "department": "BGS",
        "title": f"通知{n}",
        "date": "2025-03-01",
        "files": [name],
        **extra,
    }


def _push(client: Client, headers: dict[str, str], manifest: Any, files: list[Any], **data: Any) -> Any:
    body = {"manifest": json.dumps(manifest, ensure_ascii=False), "files": files, **data}
    return client.post("/api/v1/submissions", body, **headers)


def test_push_many_records_with_a_matching_register(auth: Any) -> None:
    client = Client()
    files = [SimpleUploadedFile(f"{n}.pdf", _pdf(n)) for n in range(3)]
    register = {"item_count": 3, "total_bytes": sum(len(_pdf(n)) for n in range(3))}
    response = _push(
        client,
        auth["officer"],
        [_entry(f"{n}.pdf", n) for n in range(3)],
        files,
        register=json.dumps(register),
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["received_count"] == 3 and body["received_bytes"] == register["total_bytes"]
    assert [i["status"] for i in body["items"]] == ["received"] * 3 and body["items"][0]["review"] == "pending"
    assert client.get(f"/api/v1/submissions/{body['id']}", **auth["officer"]).json()["id"] == body["id"]
    # another submitter does not see it; the archive does
    assert client.get(f"/api/v1/submissions/{body['id']}", **auth["officer_nk"]).status_code == 404
    assert client.get(f"/api/v1/submissions/{body['id']}", **auth["archivist"]).status_code == 200


def test_a_register_mismatch_fails_the_submission_with_a_report(auth: Any) -> None:
    response = _push(
        Client(),
        auth["officer"],
        [_entry("a.pdf", 1)],
        [SimpleUploadedFile("a.pdf", _pdf(1))],
        register=json.dumps({"item_count": 2, "total_bytes": 1}),
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "register_mismatch" and len(problem["details"]["problems"]) == 2
    assert not Record.objects.exists() and Submission.objects.get().state == "rejected"


def test_a_bad_record_is_rejected_and_the_others_received_207(auth: Any) -> None:
    manifest = [_entry("a.pdf", 1), _entry("b.pdf", 2, department="NOPE"), _entry("c.pdf", 3, date="2025-13-01")]
    files = [SimpleUploadedFile(n, _pdf(i)) for i, n in enumerate(["a.pdf", "b.pdf", "c.pdf"])]
    response = _push(Client(), auth["officer"], manifest, files)
    assert response.status_code == 207
    items = response.json()["items"]
    assert [i["status"] for i in items] == ["received", "rejected", "rejected"]
    assert items[1]["problem"]["field"] == "department" and items[2]["problem"]["field"] == "date"
    assert Record.objects.count() == 1


def test_a_retry_with_the_same_idempotency_key_answers_the_same_report(auth: Any) -> None:
    client = Client()
    headers = {**auth["officer"], "HTTP_IDEMPOTENCY_KEY": "oa-20250301-1"}
    first = _push(client, headers, [_entry("a.pdf", 1)], [SimpleUploadedFile("a.pdf", _pdf(1))])
    again = _push(client, headers, [_entry("a.pdf", 1)], [SimpleUploadedFile("a.pdf", _pdf(1))])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["items"] == first.json()["items"]
    assert Record.objects.count() == 1


def test_the_same_idempotency_key_for_another_request_is_refused_not_answered_with_the_old_report(
    auth: Any,
) -> None:
    client = Client()
    headers = {**auth["officer"], "HTTP_IDEMPOTENCY_KEY": "oa-20250301-1"}
    first = _push(client, headers, [_entry("a.pdf", 1)], [SimpleUploadedFile("a.pdf", _pdf(1))])
    other_file = _push(client, headers, [_entry("a.pdf", 1)], [SimpleUploadedFile("a.pdf", _pdf(2))])
    other_title = _push(client, headers, [_entry("a.pdf", 9)], [SimpleUploadedFile("a.pdf", _pdf(1))])
    for response in (other_file, other_title):
        assert response.status_code == 409, response.json()
        problem = response.json()
        assert problem["code"] == "idempotency_key_reused" and problem["field"] == "Idempotency-Key"
        assert problem["details"]["submission_id"] == first.json()["id"]
    assert Record.objects.count() == 1 and Submission.objects.count() == 1
    assert staging_debris() == []
    # The identical request is still a retry.
    assert _push(client, headers, [_entry("a.pdf", 1)], [SimpleUploadedFile("a.pdf", _pdf(1))]).status_code == 200


def test_a_record_key_reused_for_other_content_is_rejected_in_its_item_and_the_rest_received(auth: Any) -> None:
    client = Client()
    first = _push(client, auth["officer"], [_entry("a.pdf", 1, key="doc-1")], [SimpleUploadedFile("a.pdf", _pdf(1))])
    again = _push(client, auth["officer"], [_entry("a.pdf", 1, key="doc-1")], [SimpleUploadedFile("a.pdf", _pdf(1))])
    response = _push(
        client,
        auth["officer"],
        [_entry("b.pdf", 2, key="doc-1"), _entry("c.pdf", 3, key="doc-2")],
        [SimpleUploadedFile("b.pdf", _pdf(2)), SimpleUploadedFile("c.pdf", _pdf(3))],
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["items"][0]["status"] == "replayed"
    assert response.status_code == 207
    reused, fresh = response.json()["items"]
    assert reused["status"] == "rejected" and reused["problem"]["code"] == "identifier_reused"
    assert reused["problem"]["details"]["record"] == first.json()["items"][0]["electronic_no"]
    assert fresh["status"] == "received" and Record.objects.count() == 2


@pytest.mark.parametrize(
    ("manifest", "files", "field"),
    [
        ("not json", ["a.pdf"], "manifest"),
        ([], ["a.pdf"], "manifest"),
        ([_entry("a.pdf", 1, colour="red")], ["a.pdf"], "manifest[0].colour"),
        ([_entry("zzz.pdf", 1)], ["a.pdf"], "manifest[0].files"),
        ([_entry("a.pdf", 1), _entry("a.pdf", 2)], ["a.pdf"], "manifest[1].files"),
        ([_entry("a.pdf", 1)], ["a.pdf", "extra.pdf"], "files"),
        ([_entry("a.pdf", 1, metadata=[1])], ["a.pdf"], "manifest[0].metadata"),
    ],
)
def test_malformed_submissions_name_the_problem_and_store_nothing(
    auth: Any, manifest: Any, files: list[str], field: str
) -> None:
    parts = [SimpleUploadedFile(n, _pdf(i)) for i, n in enumerate(files)]
    body = {"manifest": manifest if isinstance(manifest, str) else json.dumps(manifest), "files": parts}
    response = Client().post("/api/v1/submissions", body, **auth["officer"])
    assert response.status_code == 422 and response.json()["field"] == field, response.json()
    assert not Record.objects.exists() and not Submission.objects.exists()
    assert staging_debris() == []


def test_the_register_itself_is_validated(auth: Any) -> None:
    response = _push(
        Client(),
        auth["officer"],
        [_entry("a.pdf", 1)],
        [SimpleUploadedFile("a.pdf", _pdf(1))],
        register=json.dumps({"item_count": -1}),
    )
    assert response.status_code == 422 and response.json()["field"] == "register.item_count"


def test_a_viewer_may_not_submit(auth: Any) -> None:
    response = _push(Client(), auth["viewer"], [_entry("a.pdf", 1)], [SimpleUploadedFile("a.pdf", _pdf(1))])
    assert response.status_code == 207 and response.json()["items"][0]["problem"]["code"] == "permission_denied"
    assert not Record.objects.exists()
    assert Client().post("/api/v1/submissions", {"manifest": "[]"}).status_code == 401


# --- resumable uploads ---------------------------------------------------------------------------


def _start(client: Client, headers: dict[str, str], name: str, size: int) -> Any:
    return client.post(
        "/api/v1/uploads", json.dumps({"filename": name, "size": size}), content_type="application/json", **headers
    )


def _patch(client: Client, headers: dict[str, str], upload_id: str, offset: int, data: bytes) -> Any:
    return client.patch(
        f"/api/v1/uploads/{upload_id}",
        data,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
        **headers,
    )


def test_a_large_file_arrives_in_pieces_resumes_and_is_captured_byte_identical(auth: Any, users: Any) -> None:
    client = Client()
    content = (_pdf(7) * 300)[:120000]  # three pieces
    started = _start(client, auth["officer"], "大文件.pdf", len(content))
    assert started.status_code == 201
    upload_id = started.json()["id"]
    assert _patch(client, auth["officer"], upload_id, 0, content[:40000]).json()["offset"] == 40000
    # a client that lost track asks where to resume; a wrong offset is refused
    assert client.get(f"/api/v1/uploads/{upload_id}", **auth["officer"]).json()["offset"] == 40000
    wrong = _patch(client, auth["officer"], upload_id, 0, content[:10])
    assert wrong.status_code == 409 and wrong.json()["details"]["offset"] == 40000
    _patch(client, auth["officer"], upload_id, 40000, content[40000:90000])
    done = _patch(client, auth["officer"], upload_id, 90000, content[90000:])
    assert done.json()["complete"] is True
    # no piece holds the plaintext
    pieces = list((Path(settings.CONFIG.data_dir) / "uploads" / upload_id).glob("*.part"))
    assert pieces and all(content[:1000] not in p.read_bytes() for p in pieces)
    # someone else cannot see or use it
    assert client.get(f"/api/v1/uploads/{upload_id}", **auth["officer_nk"]).status_code == 404
    manifest = [{**_entry("x", 1), "files": [{"upload": upload_id}]}]
    response = client.post("/api/v1/submissions", {"manifest": json.dumps(manifest)}, **auth["officer"])
    assert response.status_code == 201, response.json()
    record_id = response.json()["items"][0]["record_id"]
    stream = read_content(users["officer"], record_id)
    assert hashlib.sha256(b"".join(stream.chunks)).hexdigest() == hashlib.sha256(content).hexdigest()
    assert Upload.objects.get(pk=upload_id).used_at is not None and not pieces[0].parent.exists()
    again = client.post("/api/v1/submissions", {"manifest": json.dumps(manifest)}, **auth["officer"])
    assert again.status_code == 409


def test_an_incomplete_upload_cannot_be_submitted_and_pieces_cannot_overrun(auth: Any) -> None:
    client = Client()
    upload_id = _start(client, auth["officer"], "a.pdf", 100).json()["id"]
    _patch(client, auth["officer"], upload_id, 0, b"%PDF-1.7\n")
    manifest = [{**_entry("x", 1), "files": [{"upload": upload_id}]}]
    response = client.post("/api/v1/submissions", {"manifest": json.dumps(manifest)}, **auth["officer"])
    assert response.status_code == 409 and response.json()["code"] == "upload_incomplete"
    assert response.json()["details"]["offset"] == 9 and response.json()["field"] == "upload"
    overrun = _patch(client, auth["officer"], upload_id, 9, b"x" * 200)
    assert overrun.status_code == 413
    assert client.get(f"/api/v1/uploads/{upload_id}", **auth["officer"]).json()["offset"] == 9
    assert _start(client, auth["officer"], "../a.pdf", 10).status_code == 422
    assert _start(client, auth["officer"], "a.pdf", 0).status_code == 422
    assert _patch(client, auth["officer"], upload_id, -1, b"x").status_code == 422


# --- review over the API ------------------------------------------------------------------------


def test_review_queue_return_and_bulk_accept_over_the_api(auth: Any) -> None:
    client = Client()
    files = [SimpleUploadedFile(f"{n}.pdf", _pdf(n)) for n in range(3)]
    body = _push(client, auth["officer"], [_entry(f"{n}.pdf", n) for n in range(3)], files).json()
    ids = [i["record_id"] for i in body["items"]]
    queue = client.get("/api/v1/review/queue", **auth["archivist"]).json()
    assert queue["total"] == 3 and {i["record_id"] for i in queue["items"]} == set(ids)
    assert client.get("/api/v1/review/queue", **auth["officer"]).status_code == 403
    returned = client.post(
        f"/api/v1/records/{ids[0]}/return",
        json.dumps({"comment": "请补充文号"}),
        content_type="application/json",
        **auth["archivist"],
    )
    assert returned.status_code == 200 and returned.json()["state"] == "returned"
    inbox = client.get("/api/v1/review/returned", **auth["officer"]).json()
    assert [i["record_id"] for i in inbox["items"]] == [ids[0]] and inbox["items"][0]["comment"] == "请补充文号"
    bulk = client.post(
        "/api/v1/review/accept",
        json.dumps({"record_ids": ids}),
        content_type="application/json",
        **auth["archivist"],
    ).json()
    assert [b["ok"] for b in bulk] == [False, True, True]
    resubmitted = client.post(f"/api/v1/records/{ids[0]}/submit", **auth["officer"])
    assert resubmitted.status_code == 200 and resubmitted.json()["state"] == "submitted"
    intake = client.get(f"/api/v1/records/{ids[0]}/intake", **auth["officer"]).json()
    assert intake["rounds"] == 2 and intake["state"] == "pending"


def test_abandoned_uploads_are_purged(auth: Any, users: Any) -> None:
    from medarchive.capture import resumable
    from medarchive.core import clock

    upload = resumable.start(actor=users["officer"], filename="a.pdf", size=10)
    fresh = resumable.start(actor=users["officer"], filename="b.pdf", size=10)
    Upload.objects.filter(pk=upload.pk).update(created_at=clock.now() - resumable.STALE_AFTER * 2)
    assert resumable.purge_stale() == "1 abandoned upload(s) removed"
    assert not Upload.objects.filter(pk=upload.pk).exists() and Upload.objects.filter(pk=fresh.pk).exists()
    assert not (Path(settings.CONFIG.data_dir) / "uploads" / str(upload.pk)).exists()


def test_one_upload_feeds_one_record_and_a_refused_record_gives_it_back(auth: Any) -> None:
    client = Client()
    content = _pdf(8)
    upload_id = _start(client, auth["officer"], "a.pdf", len(content)).json()["id"]
    _patch(client, auth["officer"], upload_id, 0, content)
    twice = [{**_entry("x", 1), "files": [{"upload": upload_id}]}, {**_entry("y", 2), "files": [{"upload": upload_id}]}]
    refused = client.post("/api/v1/submissions", {"manifest": json.dumps(twice)}, **auth["officer"])
    assert refused.status_code == 409 and Upload.objects.get(pk=upload_id).used_at is None  # given back
    bad = [{**_entry("x", 1, department="NOPE"), "files": [{"upload": upload_id}]}]
    response = client.post("/api/v1/submissions", {"manifest": json.dumps(bad)}, **auth["officer"])
    assert response.status_code == 207 and Upload.objects.get(pk=upload_id).used_at is None
    good = [{**_entry("x", 1), "files": [{"upload": upload_id}]}]
    assert client.post("/api/v1/submissions", {"manifest": json.dumps(good)}, **auth["officer"]).status_code == 201


def test_a_piece_is_read_outside_any_transaction(auth: Any, users: Any) -> None:
    """A slow client must not hold the database's write lock while its body trickles in."""
    from django.db import connection

    from medarchive.capture import resumable

    upload = resumable.start(actor=users["officer"], filename="a.pdf", size=3)
    depth = len(connection.atomic_blocks)  # the test's own wrapping transaction
    depths: list[int] = []

    class Body:
        def __init__(self) -> None:
            self.parts = [b"%PD", b""]

        def read(self, size: int) -> bytes:
            depths.append(len(connection.atomic_blocks))
            return self.parts.pop(0)

    assert resumable.append(users["officer"], upload.pk, offset=0, body=Body(), length=None).complete  # type: ignore[arg-type]
    assert depths == [depth, depth]


def test_a_push_with_a_token_is_an_interface_push_and_one_from_the_browser_a_web_upload(
    auth: Any, users: dict[str, Any]
) -> None:
    """The web form posts to the same endpoint as hospital systems; the history must still say which."""
    client = Client()
    pushed = _push(client, auth["officer"], [_entry("a.pdf", 1)], [SimpleUploadedFile("a.pdf", _pdf(1))])
    assert pushed.status_code == 201
    browser = Client()
    browser.force_login(users["officer"])
    uploaded = _push(browser, {}, [_entry("b.pdf", 2)], [SimpleUploadedFile("b.pdf", _pdf(2))])
    assert uploaded.status_code == 201, uploaded.content
    found = Record.objects.filter(title__in=["通知1", "通知2"]).select_related("intake__submission")
    by_title = {r.title: r.intake.submission.channel for r in found}
    assert by_title == {"通知1": "rest", "通知2": "web"}
    steps = [(e.action, e.basis) for e in Record.objects.get(title="通知2").business_events.all()]
    assert steps[1][0] == "提交" and steps[1][1].startswith("网页上传")
