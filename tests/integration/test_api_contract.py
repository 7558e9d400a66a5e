"""The API's contract: one Problem body for every error, and a document that declares what the server does."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from medarchive.security.services import create_token

PROBLEM_KEYS = {"code", "message", "field"}


@pytest.fixture
def auth(users: dict[str, Any]) -> dict[str, str]:
    _, raw = create_token(users["archivist"], actor=None, name="contract")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) >= PROBLEM_KEYS and isinstance(body["message"], str) and body["message"], body
    assert set(body) <= PROBLEM_KEYS | {"details", "errors"}, body
    for entry in body.get("errors", []):
        assert PROBLEM_KEYS <= set(entry) <= PROBLEM_KEYS | {"details"}, entry
    return body


def test_unparseable_json_is_a_400_problem_naming_the_body(client: Client, auth: dict[str, str]) -> None:
    for raw in (b"{not json", b"\x00", b'{"reason": "x"', "{'单引号': 1}".encode()):
        response = client.post("/api/v1/review/accept", raw, content_type="application/json", **auth)
        body = problem(response, 400)
        assert body["code"] == "invalid_json" and body["field"] == "body"


@pytest.mark.parametrize(
    ("raw", "kind"), [(b"[null, null]", "array"), (b'"text"', "string"), (b"42", "number"), (b"null", "null")]
)
def test_a_json_body_that_is_not_an_object_is_a_422_problem(
    client: Client, auth: dict[str, str], raw: bytes, kind: str
) -> None:
    # notifications/read has only optional fields: an array used to read as "mark everything read".
    response = client.post("/api/v1/duties/notifications/read", raw, content_type="application/json", **auth)
    body = problem(response, 422)
    assert body["code"] == "not_an_object" and body["field"] == "body" and kind in body["message"]


def test_validation_errors_name_each_field_without_the_parameter_name(client: Client, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/records?page_size=0&page=x", **auth)
    body = problem(response, 422)
    assert {e["field"] for e in body["errors"]} == {"page_size", "page"}
    response = client.post("/api/v1/uploads", {"filename": "a.pdf"}, content_type="application/json", **auth)
    assert problem(response, 422)["field"] == "size"


def test_unknown_routes_and_methods_under_the_api_answer_problems(client: Client, auth: dict[str, str]) -> None:
    assert problem(client.get("/api/v1/no-such-thing", **auth), 404)["code"] == "no_such_operation"
    assert problem(client.get("/api/v1/records/", **auth), 404)["code"] == "no_such_operation"
    refused = client.delete("/api/v1/records", **auth)
    assert problem(refused, 405)["code"] == "method_not_allowed"
    assert set(refused["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    # Outside the API the web keeps its own pages.
    assert not client.get("/no-such-page/").get("Content-Type", "").startswith("application/json")


def test_requests_django_refuses_before_any_operation_are_problems_too(
    client: Client, auth: dict[str, str], users: dict[str, Any]
) -> None:
    wrong_host = client.get("/api/v1/health", HTTP_HOST="archive.evil.example")
    assert problem(wrong_host, 400)["code"] == "bad_request"
    # A browser session that posts without its CSRF token (a forged cross-site request).
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["archivist"])
    forged = browser.post("/api/v1/review/accept", {"record_ids": []}, content_type="application/json")
    assert problem(forged, 403)["code"] == "csrf_failed"


def test_every_authentication_failure_is_a_401_problem(client: Client, archive: Any) -> None:
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer mda_wrong"}, {"HTTP_AUTHORIZATION": "Basic abc"}):
        for url in ("/api/v1/records", "/api/v1/openapi.json"):
            response = client.get(url, **headers)
            assert problem(response, 401)["code"] == "not_authenticated", url
            assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_body_over_the_memory_limit_is_a_413_problem(client: Client, auth: dict[str, str], settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    raw = b'{"record_ids": ["' + b"a" * 2000 + b'"]}'
    body = problem(client.post("/api/v1/review/accept", raw, content_type="application/json", **auth), 413)
    assert body["code"] == "payload_too_large" and body["details"]["limit"] == 1024


def test_the_document_declares_the_problem_for_every_error_of_every_operation(
    client: Client, auth: dict[str, str]
) -> None:
    spec = client.get("/api/v1/openapi.json", **auth).json()
    assert set(spec["components"]["schemas"]["Problem"]["required"]) == PROBLEM_KEYS
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            codes = {int(c) for c in operation["responses"]}
            assert {401, 422, 500} <= codes, (method, path)
            for code, answer in operation["responses"].items():
                if int(code) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, code)
