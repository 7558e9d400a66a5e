"""The REST API end to end through Django's test client (real database, real store)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation
from tests.debris import staging_debris

from medarchive.archiving.models import Record
from medarchive.security.models import AuditEntry
from medarchive.security.services import create_token


@pytest.fixture
def token(users: dict[str, Any]) -> dict[str, str]:
    tokens = {}
    for name in ("archivist", "officer", "viewer", "researcher", "auditor", "sysadmin"):
        _, raw = create_token(users[name], actor=None, name="test")
        tokens[name] = raw
    return tokens


def _auth(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _post_record(client: Client, raw: str, *, files: list[Any] | None = None, **fields: Any) -> Any:
    data = {
        "class_code": "WS",
        "department": "BGS",
        "title": "年度工作总结",
        "date": "2025-12-30",
        "metadata": json.dumps({"keywords": ["总结"], "pages": 12}),
        **fields,
    }
    data["files"] = files if files is not None else [SimpleUploadedFile("总结.pdf", b"%PDF-1.7\nbody " * 100)]
    headers = _auth(raw)
    if "idem" in fields:
        headers["HTTP_IDEMPOTENCY_KEY"] = data.pop("idem")
    return client.post("/api/v1/records", data, **headers)


def test_health_and_readiness_are_the_only_anonymous_endpoints(client: Client, archive: Any) -> None:
    assert client.get("/api/v1/health").json()["status"] == "ok"
    ready = client.get("/api/v1/ready")
    assert ready.status_code == 200, ready.content
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "store": "ok", "audit_sealer": "ok", "jobs": "idle"},  # no worker here
    }
    for url in ("/api/v1/records", "/api/v1/openapi.json", "/api/v1/docs"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.json()["code"] == "not_authenticated"


def test_readiness_names_what_fails(client: Client, archive: Any, settings: Any, monkeypatch: Any) -> None:
    import os

    from medarchive import readiness

    real_access = os.access
    monkeypatch.setattr(
        readiness.os, "access", lambda path, mode: False if "blobs" in str(path) else real_access(path, mode)
    )
    answer = client.get("/api/v1/ready")
    problem = answer.json()
    assert answer.status_code == 503 and problem["code"] == "not_ready"
    assert problem["details"]["checks"]["store"] == "not_writable" and "store (not_writable)" in problem["message"]


def test_openapi_document_is_served_to_authenticated_clients(client: Client, token: dict[str, str]) -> None:
    spec = client.get("/api/v1/openapi.json", **_auth(token["viewer"])).json()
    assert spec["info"]["title"] == "medarchive API"
    assert "/api/v1/records" in spec["paths"] and "post" in spec["paths"]["/api/v1/records"]


def test_create_get_list_download_round_trip(client: Client, token: dict[str, str]) -> None:
    body = b"%PDF-1.7\n" + "年度工作总结正文".encode() * 500
    response = _post_record(
        client,
        token["officer"],
        files=[SimpleUploadedFile("总结.pdf", body), SimpleUploadedFile("附件.xlsx", b"PK\x03\x04xl/")],
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["state"] == "draft" and created["class_code"] == "WS" and len(created["files"]) == 2
    assert created["files"][0]["sha256"] == hashlib.sha256(body).hexdigest()
    record_id = created["id"]

    detail = client.get(f"/api/v1/records/{record_id}", **_auth(token["officer"])).json()
    assert detail["metadata"] == {"keywords": ["总结"], "pages": 12}
    assert [h["action"] for h in detail["history"]] == ["登记"]

    listing = client.get("/api/v1/records?q=年度&page_size=10", **_auth(token["officer"])).json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == record_id

    download = client.get(f"/api/v1/records/{record_id}/files/1/content", **_auth(token["officer"]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == body
    assert download["Content-Length"] == str(len(body))
    assert "filename*=UTF-8''%E6%80%BB%E7%BB%93.pdf" in download["Content-Disposition"]
    assert AuditEntry.objects.filter(action="record:content:read", object_id=record_id).count() == 1


def test_patch_then_lifecycle_through_the_api(client: Client, token: dict[str, str]) -> None:
    record_id = _post_record(client, token["officer"]).json()["id"]
    patched = client.patch(
        f"/api/v1/records/{record_id}",
        {"title": "改后的题名", "doc_number": "院办〔2025〕3号"},
        content_type="application/json",
        **_auth(token["officer"]),
    )
    assert patched.status_code == 200 and patched.json()["title"] == "改后的题名"
    assert client.post(f"/api/v1/records/{record_id}/submit", **_auth(token["officer"])).status_code == 200
    denied = client.post(f"/api/v1/records/{record_id}/accept", **_auth(token["officer"]))
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert AuditEntry.objects.filter(action="record:accept", result="denied").exists()
    client.post(f"/api/v1/records/{record_id}/accept", **_auth(token["archivist"]))
    archived = client.post(f"/api/v1/records/{record_id}/archive", **_auth(token["archivist"])).json()
    assert archived["archival_code"] == "Z001-WS·2025·D30·BGS-0001"
    frozen = client.patch(
        f"/api/v1/records/{record_id}", {"title": "x"}, content_type="application/json", **_auth(token["archivist"])
    )
    assert frozen.status_code == 409


def test_review_refusals_carry_their_codes(client: Client, token: dict[str, str]) -> None:
    record_id = _post_record(client, token["officer"]).json()["id"]
    unsent = client.get(f"/api/v1/records/{record_id}/intake", **_auth(token["officer"]))
    assert unsent.status_code == 404 and unsent.json()["code"] == "record_not_submitted"
    assert unsent.json()["details"]["record"] in unsent.json()["message"]
    client.post(f"/api/v1/records/{record_id}/submit", **_auth(token["officer"]))
    # The optional accept body is read like any other: each problem under its code, beside its field.
    bad = client.post(
        f"/api/v1/records/{record_id}/accept",
        {"override": "yes", "comment": "x" * 5000},
        content_type="application/json",
        **_auth(token["archivist"]),
    )
    assert bad.status_code == 422
    problems = {p["field"]: p["code"] for p in bad.json()["errors"]}
    assert problems == {"override": "not_a_boolean", "comment": "too_long"}
    metadata = _post_record(client, token["officer"], metadata="[1]")
    assert metadata.status_code == 422 and metadata.json()["code"] == "metadata_not_an_object"


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"class_code": "ZZ"}, 422, "class_code"),  # the document's enum: the API names its own parameter
        ({"department": "NOPE"}, 422, "department"),
        ({"date": "2025-02-30"}, 422, "date"),
        ({"metadata": "{not json"}, 422, "metadata"),
        ({"metadata": json.dumps({"pages": "many"})}, 422, "metadata.pages"),
        ({"title": ""}, 422, "title"),
    ],
)
def test_bad_requests_get_a_problem_naming_the_field(
    client: Client, token: dict[str, str], fields: dict[str, Any], status: int, field: str
) -> None:
    response = _post_record(client, token["archivist"], **fields)
    assert response.status_code == status, response.content
    problem = response.json()
    assert problem["field"] == field and problem["message"]
    assert Record.objects.count() == 0


def test_missing_form_field_is_reported(client: Client, token: dict[str, str]) -> None:
    response = client.post("/api/v1/records", {"class_code": "WS"}, **_auth(token["archivist"]))
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} >= {"department", "title", "date"}


def test_a_record_without_files_is_refused(client: Client, token: dict[str, str]) -> None:
    response = _post_record(client, token["archivist"], files=[])
    assert response.status_code == 422 and response.json()["field"] in {"files", "files.0"}
    assert Record.objects.count() == 0


def _raw_multipart(fields: dict[str, str], filename: str, body: bytes) -> tuple[bytes, str]:
    """Multipart by hand: Django's test client would strip a path from the file name before sending."""
    boundary = "----medarchive-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        f"Content-Type: application/pdf\r\n\r\n".encode()
        + body
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    ("name", "body", "status", "code"),
    [
        ("../../etc/passwd", b"%PDF x", 422, "unsafe_filename"),
        ("/etc/passwd", b"%PDF x", 422, "unsafe_filename"),
        ("空.pdf", b"", 422, "empty_file"),
        ("big.pdf", b"%PDF" + b"x" * 5000, 413, "payload_too_large"),
    ],
)
def test_bad_files_are_refused(
    client: Client, token: dict[str, str], settings: Any, name: str, body: bytes, status: int, code: str
) -> None:
    import dataclasses

    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=4096)
    fields = {"class_code": "WS", "department": "BGS", "title": "t", "date": "2025-01-01"}
    payload, content_type = _raw_multipart(fields, name, body)
    response = client.post("/api/v1/records", payload, content_type=content_type, **_auth(token["archivist"]))
    assert response.status_code == status, response.content
    assert response.json()["code"] == code and name.rsplit("/", maxsplit=1)[-1] in response.json()["message"]
    assert Record.objects.count() == 0
    assert staging_debris() == []  # nothing half-written left behind


def test_idempotency_key_prevents_a_second_record(client: Client, token: dict[str, str]) -> None:
    first = _post_record(client, token["archivist"], idem="EMR-2025-0001")
    second = _post_record(client, token["archivist"], idem="EMR-2025-0001")
    assert first.status_code == 201 and second.status_code == 409
    assert second.json()["details"]["record_id"] == first.json()["id"]
    assert Record.objects.count() == 1


def test_invisible_records_are_not_found_not_forbidden(client: Client, token: dict[str, str]) -> None:
    record_id = _post_record(client, token["archivist"], department="NK").json()["id"]
    response = client.get(f"/api/v1/records/{record_id}", **_auth(token["officer"]))
    assert response.status_code == 404
    malformed = client.get("/api/v1/records/not-a-uuid", **_auth(token["officer"]))
    assert malformed.status_code == 422 and malformed.json()["field"] == "record_id"  # the document says uuid


def test_revoked_or_wrong_tokens_are_refused(client: Client, token: dict[str, str]) -> None:
    assert client.get("/api/v1/records", HTTP_AUTHORIZATION="Bearer mda_wrong").status_code == 401
    assert client.get("/api/v1/records", HTTP_AUTHORIZATION="Basic abc").status_code == 401


def test_auditor_verifies_the_chain_sysadmin_may_not(client: Client, token: dict[str, str]) -> None:
    assert client.post("/api/v1/audit/verify", **_auth(token["auditor"])).json()["ok"] is True
    assert client.post("/api/v1/audit/verify", **_auth(token["sysadmin"])).status_code == 403


def test_a_scoped_token_can_only_do_its_scope(client: Client, users: dict[str, Any]) -> None:
    _, raw = create_token(users["archivist"], actor=None, name="lister", scopes=["record:list"])
    assert client.get("/api/v1/records", **_auth(raw)).status_code == 200
    refused = _post_record(client, raw)
    assert refused.status_code == 403 and refused.json()["code"] == "token_not_scoped"
    assert refused.json()["details"] == {"action": "record:create"}
    assert refused.json()["message"] == "此 API 令牌无权登记档案。"
    assert Record.objects.count() == 0


def test_idle_web_session_expires(client: Client, users: dict[str, Any], settings: Any) -> None:
    from medarchive.security.middleware import LAST_SEEN

    client.force_login(users["archivist"])
    assert client.get("/records/").status_code == 200
    session = client.session
    session[LAST_SEEN] = session[LAST_SEEN] - settings.MEDARCHIVE_SESSION_IDLE_SECONDS - 1
    session.save()
    response = client.get("/records/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_every_problem_of_a_posted_record_comes_back_at_once(
    client: Client, token: dict[str, str], settings: Any
) -> None:
    """The document's own limits (closed sets, patterns) are checked first, all at once; what only the
    archive knows (a department that exists, a plausible date, a class's required items) next, all at once."""
    schema = _post_record(client, token["archivist"], class_code="NOPE", title=" ", date="1850-01-01")
    assert schema.status_code == 422
    assert {e["field"] for e in schema.json()["errors"]} == {"class_code", "title"}
    response = _post_record(client, token["archivist"], department="NOPE", responsible=" ", date="1850-01-01")
    assert response.status_code == 422
    body = response.json()
    codes = [(e["code"], e["field"]) for e in body["errors"]]
    assert ("unknown_department", "department") in codes and ("implausible_date", "date") in codes
    date = next(e for e in body["errors"] if e["field"] == "date")
    assert "1850" in date["message"] and not re.search(r"[a-z]{3,}", date["message"])  # zh-Hans, the configured one
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the language the user chose in the web UI
    # The middleware leaves the request's language active in this thread: restore it afterwards.
    with translation.override(settings.LANGUAGE_CODE):
        english = _post_record(client, token["archivist"], department="NOPE", date="1850-01-01").json()
    date = next(e for e in english["errors"] if e["field"] == "date")
    assert re.search(r"[a-z]{3,}", date["message"]) and date["details"] == {"date": "1850-01-01", "year": 1900}
