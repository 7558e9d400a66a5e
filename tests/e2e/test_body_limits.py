"""Limits before work, against the real `medarchive serve` (waitress) over raw sockets: a body that is
too large, or large and unauthenticated, is answered from its headers before the server reads it."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

LIMIT = 1024 * 1024  # MEDARCHIVE_MAX_UPLOAD_BYTES for these servers


def _send(base: str, head: str, body: bytes = b"", *, read_timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        header_block, _, rest = received.partition(b"\r\n\r\n")
        lines = header_block.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(lines[0].split()[1]), headers, rest


def _head(method: str, path: str, **headers: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n"


def _staged(cli: Any) -> list[Path]:
    staging = cli.data_dir / "blobs" / ".staging"
    return sorted(staging.iterdir()) if staging.exists() else []


@pytest.fixture
def server(cli: Any, serving: Any) -> Any:
    cli.env["MEDARCHIVE_MAX_UPLOAD_BYTES"] = str(LIMIT)
    token = cli.run("token", "create", "archivist").stdout.strip()
    with serving(cli) as base:
        yield base, token


@pytest.mark.slow
def test_an_unauthenticated_100_mb_post_is_refused_from_its_headers(cli: Any, server: Any) -> None:
    base, _ = server
    hundred_mb = str(100 * 1024 * 1024)
    boundary = "multipart/form-data; boundary=x"
    for auth in ({}, {"Authorization": "Bearer mda_not-a-token"}, {"Cookie": "sessionid=forged"}):
        started = time.monotonic()
        # Only the headers and the first 64 KiB of the body are sent: the answer must not wait for the rest.
        status, headers, body = _send(
            base,
            _head("POST", "/api/v1/records", Content_Type=boundary, Content_Length=hundred_mb, **auth),
            b"--x\r\n" + b"\0" * 65536,
        )
        assert time.monotonic() - started < 5
        assert status == 401 and headers["content-type"].startswith("application/json"), (status, body)
        assert json.loads(body)["code"] == "not_authenticated"
        assert headers.get("connection") == "close"
    assert _staged(cli) == []
    # A client that waits for "100 Continue" is told 401 instead and sends nothing.
    status, _, body = _send(
        base,
        _head(
            "PATCH",
            "/api/v1/uploads/0b7c1cfa-1b0e-4a59-9d2f-6a1c0c9a3e11",
            Content_Length=hundred_mb,
            Expect="100-continue",
            Content_Type="application/offset+octet-stream",
        ),
    )
    assert status == 401 and json.loads(body)["field"] == "Authorization"
    status, headers, body = _send(
        base, _head("POST", "/fhir/r4/Binary", Content_Type="application/pdf", Content_Length=hundred_mb)
    )
    assert status == 401 and json.loads(body)["resourceType"] == "OperationOutcome"


@pytest.mark.slow
def test_a_body_over_the_limit_is_413_in_the_form_of_its_route(cli: Any, server: Any) -> None:
    base, token = server
    auth = {"Authorization": f"Bearer {token}"}
    over = str(LIMIT + 64 * 1024 * 1024)  # past the file limit and any framing
    status, headers, body = _send(
        base,
        _head("POST", "/api/v1/records", Content_Type="multipart/form-data; boundary=x", Content_Length=over, **auth),
    )
    problem = json.loads(body)
    assert status == 413 and problem["code"] == "payload_too_large" and problem["field"] == "body"
    assert set(problem) >= {"code", "message", "field"}
    status, headers, body = _send(
        base, _head("POST", "/fhir/r4/Binary", Content_Type="application/pdf", Content_Length=over, **auth)
    )
    outcome = json.loads(body)
    assert status == 413 and outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-long"
    web = _head("POST", "/records/new/", Content_Type="multipart/form-data; boundary=x", Content_Length=over)
    status, headers, body = _send(base, web)
    assert status == 401 and headers["content-type"].startswith("text/html")  # who first, then how much
    status, headers, body = _send(base, web.replace("Host:", f"Authorization: Bearer {token}\r\nHost:"))
    assert status == 413 and headers["content-type"].startswith("text/html")
    # A JSON route takes no upload-sized body (10 MiB and its framing), even from an authenticated caller.
    status, _, body = _send(
        base,
        _head("POST", "/api/v1/review/accept", Content_Type="application/json", Content_Length=str(20 << 20), **auth),
    )
    assert status == 413 and json.loads(body)["code"] == "payload_too_large"
    # A chunked body is counted as it arrives and cut off at the limit (12.5 MiB sent).
    piece = b"%x\r\n%s\r\n" % (65536, b"\0" * 65536)
    head = _head("POST", "/api/v1/review/accept", Content_Type="application/json", Transfer_Encoding="chunked", **auth)
    status, _, body = _send(base, head, piece * 200)
    assert status == 413 and json.loads(body)["code"] == "payload_too_large"
    assert _staged(cli) == []


@pytest.mark.slow
def test_an_authenticated_upload_within_the_limit_is_received(cli: Any, server: Any) -> None:
    base, token = server
    content = b"%PDF-1.7\n" + b"page " * 100_000  # 500 KB: more than the anonymous allowance
    fields = {"class_code": "WS", "department": "BGS", "title": "年度报告", "date": "2025-03-01"}
    parts = [f'--x\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(b'--x\r\nContent-Disposition: form-data; name="files"; filename="report.pdf"\r\n\r\n' + content)
    body = b"".join(parts) + b"\r\n--x--\r\n"
    head = _head(
        "POST", "/api/v1/records", Content_Type="multipart/form-data; boundary=x", Content_Length=str(len(body)),
        Authorization=f"Bearer {token}",
    )  # fmt: skip
    status, _, answer = _send(base, head, body, read_timeout=60)
    assert status == 201, answer
    assert json.loads(answer)["files"][0]["size"] == len(content)
