"""What makes two arrivals "the same message": the sender's identifier *and* a digest of what it carried. Pure.

A connector names the identifier (an idempotency key: `hl7:<MSH-3>^<MSH-4>:<MSH-10>`, a FHIR
masterIdentifier, a DICOM study and its instances, a file's digest); the door adds the content
digest below. The same identifier with the same digest is a retransmission (answered as before,
nothing redone); the same identifier with another digest is a *different* message that reused the
identifier (a restarted control-ID counter, a corrected document re-sent under its old number) and
must never be answered as a duplicate and dropped.

The digest covers the description as the connector built it and every file's name, role and
SHA-256: a retransmission of the same bytes always builds the same description, while a new
document under an old identifier differs in one or the other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

# Files only: for channels whose description depends on who relayed the content (DICOM: the
# calling AE decides the department) rather than on the content itself.
FILES, ALL = "files", "all"


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def content_digest(description: Mapping[str, Any] | None, files: Iterable[tuple[str, str, str]]) -> str:
    """SHA-256 over the description (None: files only) and the (name, role, sha256) of each file, in order."""
    body = {
        "description": dict(description) if description is not None else None,
        "files": [list(f) for f in files],
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def same_files(earlier: Iterable[str], now: Iterable[str]) -> bool:
    """For identifiers recorded before content digests were kept: the same file digests, in any order."""
    return sorted(earlier) == sorted(now)


def derived_key(key: str, digest: str, *, limit: int = 200) -> str:
    """The key under which content that arrived with a reused identifier is kept (a channel that
    already acknowledged it may not refuse it): the identifier plus the content's digest."""
    suffix = f"~{digest[:16]}"
    if len(key) + len(suffix) <= limit:
        return key + suffix
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest() + suffix
