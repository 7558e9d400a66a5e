"""Checkpoints of the audit chain, kept outside the database. Pure logic and file I/O, no Django.

A checkpoint says "at time T the chain's head was entry #seq with seal MAC, keyed from
#keyed_from". `audit verify` compares every checkpoint with the entry it names, so a
database attacker who cuts the tail or rebuilds the chain is found even if the rows and the
head agree with each other.

The file is append-only JSON lines (one checkpoint a line) in its own directory (0700, the
file 0600), written under an exclusive lock and fsynced. Each line is

* linked to the previous one (`prev` = H(previous line's payload)): a line removed from the
  middle, or lines reordered, break the link;
* authenticated with the audit key (`line_mac` = HMAC-H(key, label ‖ payload)): a line
  edited or forged without the key fails.

Until signed checkpoints arrive (the protection issue), whoever holds the audit key can
forge lines, and a file attacker can still delete the last lines or the whole file
unnoticed (a missing file is reported as a warning). The `Signer` protocol is where a
signature and a trusted timestamp plug in; today's `UNSIGNED` signer adds nothing, and
every line says so (`"signer": "unsigned"`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from medarchive.security.chain import ALGORITHMS, GENESIS, Finding

FILE_NAME = "audit-checkpoints.jsonl"
VERSION = 1
_LINE_LABEL = b"medarchive audit checkpoint v1\n"  # domain separation from entry MACs (those start with hex)
UNSIGNED_NAME = "unsigned"


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("checkpoint times must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    mac: str  # the seal of entry #seq (GENESIS for an empty trail)
    at: dt.datetime
    keyed_from: int
    key_id: str  # the audit key that authenticates this line
    algorithm: str  # H of the line MAC and of the link
    prev: str = GENESIS  # H(payload of the previous line); GENESIS for the first line
    line_mac: str = ""
    signer: str = UNSIGNED_NAME
    signature: str | None = None  # filled by a real signer (protection issue)
    timestamp_token: str | None = None  # e.g. an RFC 3161 token over the payload
    line: int = field(default=0, compare=False)  # position in the file, 1-based; not stored

    @property
    def at_text(self) -> str:
        return _timestamp(self.at)

    def payload(self) -> bytes:
        """What the line MAC, the link and a future signature cover."""
        body = {
            "v": VERSION,
            "seq": self.seq,
            "mac": self.mac,
            "at": self.at_text,
            "keyed_from": self.keyed_from,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "prev": self.prev,
            "signer": self.signer,  # covered, so a signed line cannot pass itself off as unsigned
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")

    def link(self) -> str:
        """The `prev` of the line after this one."""
        return hashlib.new(self.algorithm, self.payload()).hexdigest()

    def expected_line_mac(self, key: bytes) -> str:
        return hmac.new(key, _LINE_LABEL + self.payload(), self.algorithm).hexdigest()

    def to_line(self) -> str:
        doc = json.loads(self.payload())
        doc |= {
            "line_mac": self.line_mac,
            "signature": self.signature,
            "timestamp_token": self.timestamp_token,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


class Signer(Protocol):
    """Signs a checkpoint's payload and may add a trusted timestamp; verifies its own lines."""

    name: str

    def sign(self, payload: bytes) -> tuple[str | None, str | None]:
        """(signature, timestamp token) for the payload."""
        ...

    def verify(self, payload: bytes, signature: str | None, timestamp_token: str | None) -> bool: ...


class Unsigned:
    """Today's signer: no signature, no timestamp. Lines say `"signer": "unsigned"`."""

    name = UNSIGNED_NAME

    def sign(self, payload: bytes) -> tuple[str | None, str | None]:
        return None, None

    def verify(self, payload: bytes, signature: str | None, timestamp_token: str | None) -> bool:
        return signature is None and timestamp_token is None


UNSIGNED = Unsigned()


@dataclass(frozen=True)
class ReadResult:
    checkpoints: list[Checkpoint]
    problems: list[Finding]
    exists: bool  # the file exists
    torn: bool = False  # the last line was cut short by an interrupted write and was ignored
    signers: frozenset[str] = frozenset()

    @property
    def last(self) -> Checkpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None


def _parse(text: str, number: int) -> Checkpoint:
    doc: Any = json.loads(text)
    if not isinstance(doc, dict) or doc.get("v") != VERSION:
        raise ValueError("not a checkpoint")
    seq, keyed_from = doc["seq"], doc["keyed_from"]
    if not (isinstance(seq, int) and isinstance(keyed_from, int)) or isinstance(seq, bool) or seq < 0:
        raise ValueError("bad sequence")
    if doc["algorithm"] not in ALGORITHMS:
        raise ValueError("bad algorithm")
    for name in ("mac", "key_id", "prev", "line_mac", "signer"):
        if not isinstance(doc[name], str):
            raise ValueError(f"bad {name}")
    at = dt.datetime.strptime(doc["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return Checkpoint(
        seq=seq,
        mac=doc["mac"],
        at=at,
        keyed_from=keyed_from,
        key_id=doc["key_id"],
        algorithm=doc["algorithm"],
        prev=doc["prev"],
        line_mac=doc["line_mac"],
        signer=doc["signer"],
        signature=doc.get("signature"),
        timestamp_token=doc.get("timestamp_token"),
        line=number,
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointFile:
    """The append-only checkpoint file in `directory`."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILE_NAME

    # -- reading -----------------------------------------------------------------------------------

    def read(self, keys: Mapping[str, bytes], signers: Mapping[str, Signer] | None = None) -> ReadResult:
        """Every checkpoint that is intact, and a finding for each line that is not."""
        signers = {UNSIGNED_NAME: UNSIGNED, **(signers or {})}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return ReadResult([], [], exists=False)
        lines = data.split(b"\n")
        torn = bool(lines[-1])  # no newline at the end: the last write was interrupted
        lines = lines[:-1]
        good: list[Checkpoint] = []
        problems: list[Finding] = []
        seen: set[str] = set()
        prev_link, prev_number = GENESIS, 0
        for number, raw in enumerate(lines, start=1):
            try:
                cp = _parse(raw.decode("ascii"), number)
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                problems.append(Finding("checkpoint_unreadable", None, {"line": number}))
                prev_link, prev_number = "", number
                continue
            key = keys.get(cp.key_id)
            if key is None:
                problems.append(Finding("checkpoint_unknown_key", None, {"line": number, "key_id": cp.key_id}))
            elif not hmac.compare_digest(cp.expected_line_mac(key), cp.line_mac):
                problems.append(Finding("checkpoint_altered", None, {"line": number}))
            elif cp.prev != prev_link:
                problems.append(Finding("checkpoint_link", None, {"line": number, "previous": prev_number}))
                good.append(cp)  # intact in itself: still compared with the chain
            elif (signer := signers.get(cp.signer)) is not None and not signer.verify(
                cp.payload(), cp.signature, cp.timestamp_token
            ):
                problems.append(Finding("checkpoint_bad_signature", None, {"line": number, "signer": cp.signer}))
            else:
                good.append(cp)
            seen.add(cp.signer)
            prev_link, prev_number = cp.link(), number
        return ReadResult(good, problems, exists=True, torn=torn, signers=frozenset(seen))

    # -- writing -----------------------------------------------------------------------------------

    def append(
        self,
        *,
        seq: int,
        mac: str,
        at: dt.datetime,
        keyed_from: int,
        key_id: str,
        key: bytes,
        algorithm: str,
        signer: Signer = UNSIGNED,
    ) -> Checkpoint:
        """Append one checkpoint, linked to the last line, authenticated, fsynced."""
        self._make_directory()
        with self._locked() as fd:
            previous = self._repair_and_last(fd)
            cp = Checkpoint(
                seq=seq,
                mac=mac,
                at=at,
                keyed_from=keyed_from,
                key_id=key_id,
                algorithm=algorithm,
                prev=previous.link() if previous else GENESIS,
                signer=signer.name,
            )
            signature, token = signer.sign(cp.payload())
            cp = replace(cp, line_mac=cp.expected_line_mac(key), signature=signature, timestamp_token=token)
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, cp.to_line().encode("ascii"))
            os.fsync(fd)
        return cp

    def _make_directory(self) -> None:
        created = not self.directory.exists()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if created:
            os.chmod(self.directory, 0o700)  # whatever the umask
            _fsync_dir(self.directory.parent)

    @contextmanager
    def _locked(self) -> Iterator[int]:
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            if created:
                _fsync_dir(self.directory)
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def _repair_and_last(self, fd: int) -> Checkpoint | None:
        """The last complete line; a torn last line (a crash mid-write) is cut off first."""
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        tail = b""
        position = size
        while position > 0 and tail.count(b"\n") < 2:  # the last line and the newline before it
            step = min(4096, position)
            position -= step
            tail = os.pread(fd, step, position) + tail
        if not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n")
            keep = position + cut + 1 if cut >= 0 else 0
            os.ftruncate(fd, keep)
            os.fsync(fd)
            tail = tail[: cut + 1] if cut >= 0 else b""
        lines = tail.split(b"\n")
        last = lines[-2] if len(lines) >= 2 else b""
        if not last:
            return None
        try:
            return _parse(last.decode("ascii"), 0)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None  # an unreadable last line: verify reports it; the next line links to nothing
