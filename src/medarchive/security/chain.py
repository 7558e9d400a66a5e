"""The audit chain: canonical form, sealing and verification. Pure logic, no Django.

Security policy (ADR 0004, ADR 0013):

* Each entry's seal covers the previous seal and every field of the entry, so an edited
  field, a deleted row (seq gap) or a swapped pair (broken link) is found at the first row
  it affects.
* Entries from the switch-over sequence `keyed_from` on are sealed with a MAC,
  HMAC-H(audit key, prev ‖ canonical), H = SM3 or SHA-256; the canonical form of such an
  entry names its key id and `keyed_from`, so neither can be changed without the key. The
  key lives outside the database: whoever can only write the database cannot rebuild the
  chain with this public code. Entries before `keyed_from` were written by an older
  version as plain hashes H(prev ‖ canonical); they stay verifiable by that rule and are
  never re-sealed.
* The head (last seq and seal) is compared with the last entry, and checkpoints kept
  outside the database (checkpoints.py) with the entries they name: a cut-off tail, a
  moved head or a rewritten chain is found even when every row is self-consistent.
* Problems are `Finding`s with a stable code, the first bad sequence and a message
  template (marked for the translation catalog, rendered by the caller).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medarchive.security.checkpoints import Checkpoint

GENESIS = "0" * 64
ALGORITHMS = frozenset({"sm3", "sha256"})


def gettext_noop(text: str) -> str:
    """Marks a message for the catalog (makemessages extracts it); translated where it is shown."""
    return text


def _identity(text: str) -> str:
    return text


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
    key_id: str = ""  # "" = an unkeyed entry written before the switch-over


@dataclass(frozen=True)
class Head:
    """The chain's tip as stored in the database."""

    seq: int
    mac: str
    keyed_from: int


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(entry: ChainEntry, *, keyed_from: int | None = None) -> bytes:
    body: dict[str, Any] = {
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
    if entry.key_id:
        if keyed_from is None:
            raise ValueError("a keyed entry's canonical form includes the switch-over sequence")
        body["key_id"] = entry.key_id
        body["keyed_from"] = keyed_from
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown audit hash algorithm {algorithm!r}")


def digest(algorithm: str, prev_hash: str, body: bytes) -> str:
    """The unkeyed rule of entries written before the switch-over: H(prev ‖ canonical)."""
    _check_algorithm(algorithm)
    h = hashlib.new(algorithm)
    h.update(prev_hash.encode("ascii"))
    h.update(body)
    return h.hexdigest()


def mac(algorithm: str, key: bytes, prev_hash: str, body: bytes) -> str:
    """The keyed rule: HMAC-H(key, prev ‖ canonical)."""
    _check_algorithm(algorithm)
    return hmac.new(key, prev_hash.encode("ascii") + body, algorithm).hexdigest()


def seal(entry: ChainEntry, key: bytes | None = None, *, keyed_from: int | None = None) -> str:
    """The entry's seal: a MAC under `key` when the entry names a key id, else the plain hash."""
    if entry.key_id:
        if key is None:
            raise ValueError(f"entry #{entry.seq} names audit key {entry.key_id!r}: sealing it needs that key")
        return mac(entry.algorithm, key, entry.prev_hash, canonical(entry, keyed_from=keyed_from))
    if key is not None:
        raise ValueError("an entry sealed with a key must name the key id")
    return digest(entry.algorithm, entry.prev_hash, canonical(entry))


# --- findings -------------------------------------------------------------------------------------

MESSAGES: dict[str, str] = {
    "entry_missing": gettext_noop("Audit entry #%(seq)s is missing (the next one found is #%(found)s)."),
    "entry_out_of_order": gettext_noop("Audit entry #%(seq)s is out of order (found #%(found)s in its place)."),
    "link_broken": gettext_noop("Audit entry #%(seq)s does not link to entry #%(previous)s."),
    "entry_altered": gettext_noop("Audit entry #%(seq)s was altered after it was written."),
    "entry_unkeyed": gettext_noop(
        "Audit entry #%(seq)s is not sealed with the audit key, although the trail is keyed from #%(keyed_from)s: "
        "it was rewritten."
    ),
    "unknown_key": gettext_noop(
        "Audit entry #%(seq)s is sealed with audit key %(key_id)s, which is not in the audit key ring."
    ),
    "entries_removed": gettext_noop(
        "The audit trail ends at #%(last)s but the chain head says #%(head)s: entries were removed."
    ),
    "head_mismatch": gettext_noop("The chain head does not match audit entry #%(seq)s: the head was rewritten."),
    "head_missing": gettext_noop(
        "The chain head is missing from the database: it was deleted. The trail ends at #%(last)s and nothing "
        "after it can be vouched for."
    ),
    "entries_beyond_head": gettext_noop(
        "Audit entries after #%(head)s lie beyond the chain head (up to #%(last)s): the head was moved back."
    ),
    "switch_over_invalid": gettext_noop(
        "The chain head says the trail is keyed from #%(keyed_from)s, which is after its last entry #%(head)s."
    ),
    "checkpoint_beyond_tail": gettext_noop(
        "The checkpoint of %(at)s vouches for audit entry #%(checkpoint)s but the trail ends at #%(last)s: "
        "entries were removed."
    ),
    "checkpoint_mismatch": gettext_noop(
        "Audit entry #%(seq)s differs from the checkpoint of %(at)s: entries from #%(first)s to #%(seq)s were "
        "rewritten or replaced."
    ),
    "checkpoint_switch_over": gettext_noop(
        "The checkpoint of %(at)s records the trail as keyed from #%(checkpoint)s, the database says "
        "#%(database)s: the trail was rewritten."
    ),
    "checkpoint_altered": gettext_noop("Checkpoint line %(line)s was altered or was not written with the audit key."),
    "checkpoint_unreadable": gettext_noop("Checkpoint line %(line)s is not a checkpoint: the file was altered."),
    "checkpoint_link": gettext_noop(
        "Checkpoint line %(line)s does not follow line %(previous)s: checkpoints were removed or reordered."
    ),
    "checkpoint_unknown_key": gettext_noop(
        "Checkpoint line %(line)s is authenticated with audit key %(key_id)s, which is not in the audit key ring."
    ),
    "checkpoint_bad_signature": gettext_noop("The signature of checkpoint line %(line)s (%(signer)s) does not verify."),
}


@dataclass(frozen=True)
class Finding:
    """One problem: a stable code, the first sequence it makes untrustworthy (if any), the facts."""

    code: str
    seq: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def template(self) -> str:
        return MESSAGES[self.code]

    def message(self, translate: Callable[[str], str] = _identity) -> str:
        return translate(self.template) % dict(self.params)


def earliest(findings: Iterable[Finding | None]) -> Finding | None:
    """The finding with the lowest sequence (one without a sequence comes last)."""
    present = [f for f in findings if f is not None]
    return min(present, key=lambda f: f.seq if f.seq is not None else float("inf"), default=None)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    finding: Finding | None = None
    checkpoints_checked: int = 0
    last_seq: int = 0  # the last entry walked
    last_mac: str = GENESIS
    keyed_from: int | None = None

    @property
    def first_bad_seq(self) -> int | None:
        return self.finding.seq if self.finding else None

    @property
    def code(self) -> str | None:
        return self.finding.code if self.finding else None

    @property
    def problem(self) -> str | None:
        return self.finding.message() if self.finding else None

    def with_finding(self, finding: Finding | None) -> ChainReport:
        """This report with another problem taken into account (the earliest one wins)."""
        first = earliest([self.finding, finding])
        return ChainReport(
            ok=first is None,
            checked=self.checked,
            finding=first,
            checkpoints_checked=self.checkpoints_checked,
            last_seq=self.last_seq,
            last_mac=self.last_mac,
            keyed_from=self.keyed_from,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "code": self.code,
            "problem": self.problem,
            "checkpoints_checked": self.checkpoints_checked,
        }


# --- verification ---------------------------------------------------------------------------------


def _switch_over(head: Head | None, checkpoints: Sequence[Checkpoint]) -> tuple[int | None, Finding | None]:
    """Where keyed sealing starts, and a finding when the database and the checkpoints disagree."""
    keyed_from = head.keyed_from if head else (checkpoints[-1].keyed_from if checkpoints else None)
    if head and (head.keyed_from < 1 or head.keyed_from > head.seq + 1):
        return keyed_from, Finding(
            "switch_over_invalid", head.seq + 1, {"keyed_from": head.keyed_from, "head": head.seq}
        )
    for cp in checkpoints:
        if keyed_from is not None and cp.keyed_from != keyed_from:
            return keyed_from, Finding(
                "checkpoint_switch_over",
                min(cp.keyed_from, keyed_from),
                {"at": cp.at_text, "checkpoint": cp.keyed_from, "database": keyed_from},
            )
    return keyed_from, None


def _check_seal(entry: ChainEntry, keys: Mapping[str, bytes], keyed_from: int | None) -> Finding | None:
    if keyed_from is not None and entry.seq >= keyed_from:
        if not entry.key_id:
            return Finding("entry_unkeyed", entry.seq, {"seq": entry.seq, "keyed_from": keyed_from})
        key = keys.get(entry.key_id)
        if key is None:
            return Finding("unknown_key", entry.seq, {"seq": entry.seq, "key_id": entry.key_id})
        expected = seal(entry, key, keyed_from=keyed_from)
    elif entry.key_id:  # a keyed entry before the switch-over: someone moved `keyed_from`
        return Finding("entry_altered", entry.seq, {"seq": entry.seq})
    else:
        expected = seal(entry)
    if not hmac.compare_digest(expected, entry.entry_hash):
        return Finding("entry_altered", entry.seq, {"seq": entry.seq})
    return None


def _check_link(entry: ChainEntry, expected_seq: int, prev: str) -> Finding | None:
    if entry.seq != expected_seq:
        code = "entry_missing" if entry.seq > expected_seq else "entry_out_of_order"
        return Finding(code, expected_seq, {"seq": expected_seq, "found": entry.seq})
    if entry.prev_hash != prev:
        return Finding("link_broken", entry.seq, {"seq": entry.seq, "previous": entry.seq - 1})
    return None


def _tail(last: int, prev: str, head: Head | None, checkpoints: Sequence[Checkpoint]) -> list[Finding]:
    """What the end of a walk that found nothing wrong must agree with: checkpoints and head."""
    found = []
    beyond = [cp for cp in checkpoints if cp.seq > last]
    if beyond:
        cp = max(beyond, key=lambda c: c.seq)
        found.append(
            Finding("checkpoint_beyond_tail", last + 1, {"at": cp.at_text, "checkpoint": cp.seq, "last": last})
        )
    if head is None:
        found.append(Finding("head_missing", last + 1, {"last": last}))
    elif last != head.seq:
        found.append(Finding("entries_removed", last + 1, {"last": last, "head": head.seq}))
    elif not hmac.compare_digest(prev, head.mac):
        found.append(Finding("head_mismatch", head.seq, {"seq": head.seq}))
    return found


def verify(
    entries: Iterable[ChainEntry],
    *,
    keys: Mapping[str, bytes],
    head: Head | None,
    checkpoints: Sequence[Checkpoint] = (),
    start: int = 1,
    start_prev: str | None = GENESIS,
) -> ChainReport:
    """Walk entries in seq order from `start`; report the first one that breaks the chain.

    `head=None` means the head row is missing (itself tampering). `start_prev=None` takes the
    first entry's link as given (an incremental check from a checkpoint at that entry).
    Checkpoints are compared with the entry they name; one beyond the walked tail is a cut.
    """
    keyed_from, early = _switch_over(head, checkpoints)
    by_seq: dict[int, list[Checkpoint]] = {}
    for cp in checkpoints:
        by_seq.setdefault(cp.seq, []).append(cp)
    expected_seq, prev = start, start_prev
    checked = cp_checked = 0
    good = start - 1  # the last sequence a checkpoint confirmed
    finding: Finding | None = None
    for cp in by_seq.get(0, []) if start == 1 else []:
        cp_checked += 1
        if cp.mac != GENESIS:
            finding = Finding("checkpoint_mismatch", 1, {"seq": 1, "at": cp.at_text, "first": 1, "good": 0})
    for entry in [] if finding else entries:
        checked += 1
        finding = _check_link(entry, expected_seq, entry.prev_hash if prev is None else prev)
        if finding:
            break
        if keyed_from is None and entry.key_id:  # head and checkpoints gone: infer the switch-over
            keyed_from = entry.seq
        finding = _check_seal(entry, keys, keyed_from)
        for cp in [] if finding else by_seq.get(entry.seq, []):
            cp_checked += 1
            if not hmac.compare_digest(cp.mac, entry.entry_hash):
                finding = Finding(
                    "checkpoint_mismatch",
                    entry.seq,
                    {"seq": entry.seq, "at": cp.at_text, "first": good + 1, "good": good},
                )
                break
            good = entry.seq
        if finding:
            break
        prev, expected_seq = entry.entry_hash, expected_seq + 1
    last = expected_seq - 1
    tail = [] if finding else _tail(last, prev or GENESIS, head, checkpoints)
    first = earliest([early, finding, *tail])
    return ChainReport(
        ok=first is None,
        checked=checked,
        finding=first,
        checkpoints_checked=cp_checked,
        last_seq=last,
        last_mac=prev or GENESIS,
        keyed_from=keyed_from,
    )
