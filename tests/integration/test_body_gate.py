"""The body gate in front of every view: refusals from the headers alone, in the form of each route.

Django's test client hands the view a body it already holds, so these tests declare a Content-Length
far larger than what they send: a gate that read the body (or let a view read it) would not answer
from the headers. The same gate in front of waitress is driven over sockets in tests/e2e/test_body_limits.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from tests.debris import staging_debris

from medarchive.core import gate
from medarchive.security.services import create_token

HUNDRED_MB = str(100 * 1024 * 1024)


@pytest.fixture
def bearer(users: dict[str, Any]) -> dict[str, str]:
    _, raw = create_token(users["archivist"], actor=None, name="gate")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _post(client: Client, path: str, length: str, content_type: str = "multipart/form-data; boundary=x", **extra: Any):
    return client.generic("POST", path, b"--x\r\n", content_type=content_type, CONTENT_LENGTH=length, **extra)


def _staging(settings: Any) -> list[Any]:
    return staging_debris(settings.CONFIG.blob_dir / ".staging")


def test_a_large_body_without_valid_credentials_is_401_before_it_is_read(
    client: Client, users: dict[str, Any], settings: Any
) -> None:
    for extra in ({}, {"HTTP_AUTHORIZATION": "Bearer mda_forged"}, {"HTTP_AUTHORIZATION": "Basic YTpi"}):
        response = _post(client, "/api/v1/records", HUNDRED_MB, **extra)
        assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")
    fhir = _post(client, "/fhir/r4/Binary", HUNDRED_MB, content_type="application/pdf")
    assert fhir.status_code == 401 and fhir.json()["resourceType"] == "OperationOutcome"
    assert fhir.json()["issue"][0]["code"] == "login"
    web = _post(client, "/records/new/", HUNDRED_MB)
    assert web.status_code == 401 and web["Content-Type"].startswith("text/html")
    chunked = client.generic(
        "PATCH", "/api/v1/uploads/0b7c1cfa-1b0e-4a59-9d2f-6a1c0c9a3e11", b"", HTTP_TRANSFER_ENCODING="chunked"
    )
    assert chunked.status_code == 401  # a body of unknown length counts as large
    assert _staging(settings) == []


def test_a_small_anonymous_body_reaches_the_application_which_refuses_it(client: Client, archive: Any) -> None:
    response = client.post("/api/v1/review/accept", {"record_ids": []}, content_type="application/json")
    assert response.status_code == 401 and response.json()["field"] == "Authorization"
    login = client.post("/login/", {"username": "nobody", "password": "wrong-password"})
    assert login.status_code == 401 and "<form" in login.content.decode()  # the login page, not the gate


def test_a_body_past_its_routes_limit_is_413_in_the_routes_form(
    client: Client, bearer: dict[str, str], settings: Any
) -> None:
    over = str(gate.upload_limit() + 1)
    api = _post(client, "/api/v1/submissions", over, **bearer)
    assert api.status_code == 413 and api.json()["code"] == "payload_too_large"
    assert api.json()["details"]["limit"] == gate.upload_limit()
    fhir = _post(client, "/fhir/r4/DocumentReference", over, content_type="application/fhir+json", **bearer)
    assert fhir.status_code == 413 and fhir.json()["issue"][0]["code"] == "too-long"
    web = _post(client, "/records/new/", over, **bearer)
    assert web.status_code == 413 and web["Content-Type"].startswith("text/html")
    # JSON and form routes take at most Django's in-memory limit with its framing.
    json_route = _post(client, "/api/v1/duties/rules", str(gate.form_limit() + 1), "application/json", **bearer)
    assert json_route.status_code == 413 and json_route.json()["details"]["limit"] == gate.form_limit()
    assert _staging(settings) == []


def test_the_limits_follow_the_configured_upload_size(settings: Any) -> None:
    import dataclasses

    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=50 * 1024 * 1024)
    small = gate.upload_limit()
    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=2 * 1024 * 1024 * 1024)
    assert gate.upload_limit() - small == 2 * 1024 * 1024 * 1024 - 50 * 1024 * 1024
    assert gate.upload_limit() > 2 * 1024 * 1024 * 1024 + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert gate.is_upload("PATCH", "/api/v1/uploads/abc") and not gate.is_upload("GET", "/api/v1/uploads/abc")
    assert not gate.is_upload("POST", "/api/v1/records/abc/hold")


def test_a_valid_session_passes_the_gate_and_an_idle_one_does_not(client: Client, users: dict[str, Any]) -> None:
    client.force_login(users["archivist"])
    session = client.session
    session["medarchive_last_seen"] = time.time()
    session.save()
    # Past the gate, the view itself answers (here: the CSRF check of a session client, 403).
    passed = _post(client, "/api/v1/records", HUNDRED_MB)
    assert passed.status_code != 401, passed.content
    session["medarchive_last_seen"] = time.time() - 10 * 3600
    session.save()
    assert _post(client, "/api/v1/records", HUNDRED_MB).status_code == 401
