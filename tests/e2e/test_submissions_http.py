"""`POST /api/v1/submissions` against the real server: a retry is a retry, a reused key is refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.slow
PASSWORD = "Correct-Horse-42"


def _pdf(tag: str) -> bytes:
    return b"%PDF-1.7\n" + f"{tag} ".encode() * 400 + b"\n%%EOF\n"


def _push(base: str, token: str, manifest: list[dict[str, Any]], files: dict[str, bytes], **headers: str) -> Any:
    """One multipart request, written out by hand (no client library beyond the standard one)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="manifest"\r\n\r\n'.encode()
        + json.dumps(manifest, ensure_ascii=False).encode()
        + b"\r\n"
    ]
    for name, data in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        parts.append(head.encode() + b"Content-Type: application/pdf\r\n\r\n" + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{base}/api/v1/submissions",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_a_reused_idempotency_key_is_refused_over_http_and_a_retry_is_answered(
    cli: Any, serving: Callable[[Any], Any]
) -> None:
    created = json.loads(cli.run("token", "create", "officer", "--name", "OA", "--json").stdout)
    token = created["token"]
    entry = {"class_code": "WS", "department": "BGS", "title": "通知", "date": "2025-03-01", "files": ["a.pdf"]}
    key = {"Idempotency-Key": "OA-20250301-17"}
    with serving(cli) as base:
        first = _push(base, token, [entry], {"a.pdf": _pdf("a")}, **key)
        retry = _push(base, token, [entry], {"a.pdf": _pdf("a")}, **key)
        reused = _push(base, token, [entry], {"a.pdf": _pdf("another document")}, **key)
        item_reused = _push(
            base, token, [{**entry, "key": "OA-20250301-17#0", "title": "另一份"}], {"a.pdf": _pdf("a")}
        )
    assert first[0] == 201, first
    assert retry[0] == 200 and retry[1]["id"] == first[1]["id"]
    assert reused[0] == 409 and reused[1]["code"] == "idempotency_key_reused"
    assert reused[1]["details"]["submission_id"] == first[1]["id"]
    assert item_reused[0] == 207 and item_reused[1]["items"][0]["problem"]["code"] == "identifier_reused"
    listed = json.loads(cli.run("records", "list", "--as", "archivist", "--json").stdout)
    assert listed["total"] == 1
