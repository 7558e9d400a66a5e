"""The audit hash chain: canonical form, hashing and verification. Pure logic, no Django.

Security policy: each entry's hash covers the previous hash and every field of the
entry, so an edited field, a deleted row (seq gap) or a swapped pair (prev-hash
mismatch) is found at the first row it affects. A cut-off tail is found by comparing
the last row with the separately stored head. The chain proves order and integrity,
not secrecy; anyone with write access to both the table and the head could rebuild
it, which is why the table refuses UPDATE/DELETE at the database level and the
system administrator has no audit permission (SEC-02).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainEntry:
    seq: int
    at: dt.datetime
    actor_id: int | None
    actor_name: str
    action: str
    object_type: str
    object_id: str
    result: str
    source: str
    details: dict[str, Any]
    algorithm: str
    prev_hash: str
    entry_hash: str = ""


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(entry: ChainEntry) -> bytes:
    body = {
        "seq": entry.seq,
        "at": _timestamp(entry.at),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "result": entry.result,
        "source": entry.source,
        "details": entry.details,
        "algorithm": entry.algorithm,
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def digest(algorithm: str, prev_hash: str, body: bytes) -> str:
    if algorithm not in {"sm3", "sha256"}:
        raise ValueError(f"unknown audit hash algorithm {algorithm!r}")
    h = hashlib.new(algorithm)
    h.update(prev_hash.encode("ascii"))
    h.update(body)
    return h.hexdigest()


def seal(entry: ChainEntry) -> str:
    return digest(entry.algorithm, entry.prev_hash, canonical(entry))


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_bad_seq": self.first_bad_seq, "problem": self.problem}


def verify(entries: Iterable[ChainEntry], *, head_seq: int, head_hash: str) -> ChainReport:
    """Walk entries in seq order; report the first one that breaks the chain."""
    expected_seq, prev = 1, GENESIS
    checked = 0
    for entry in entries:
        checked += 1
        if entry.seq != expected_seq:
            missing = "missing" if entry.seq > expected_seq else "out of order"
            return ChainReport(False, checked, expected_seq, f"entry #{expected_seq} is {missing} (found #{entry.seq})")
        if entry.prev_hash != prev:
            return ChainReport(False, checked, entry.seq, f"entry #{entry.seq} does not link to entry #{entry.seq - 1}")
        if seal(entry) != entry.entry_hash:
            return ChainReport(False, checked, entry.seq, f"entry #{entry.seq} was altered after it was written")
        prev, expected_seq = entry.entry_hash, expected_seq + 1
    last = expected_seq - 1
    if last != head_seq or prev != head_hash:
        return ChainReport(
            False,
            checked,
            last + 1,
            f"the log ends at #{last} but the chain head says #{head_seq}: entries were removed",
        )
    return ChainReport(True, checked)
