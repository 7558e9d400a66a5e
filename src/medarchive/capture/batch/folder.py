"""The watched folder (CAP-08): files dropped into `<watch>/inbox/` are captured once, then moved.

Layout: `inbox/` (drop here), `done/` (captured, or already in), `failed/` (不合格, each with a
`<name>.error.txt` giving the reason), and optionally `defaults.json` next to them with the
description every drop gets unless its sidecar says otherwise (same names as manifest columns:
`{"门类": "WS", "部门": "BGS"}`). A sidecar `<name>.json` (an object) or `<name>.csv` (a header
and one row) next to `<name>` in the inbox describes that one file.

When a file is taken:
- names starting with `.` or `~$` and ending `.part`, `.tmp`, `.crdownload` … are being written
  and are left alone; write under such a name and rename when done, or
- a file (and its sidecar) is taken once neither changed for `settle_seconds` (by mtime and
  ctime: a copy that keeps the source's mtime still changes the ctime); the long-running watcher
  also wants the same size and times on two scans in a row, which holds against clock skew on
  network shares. A sidecar goes in first, or together with its file.
- a sidecar whose file has not arrived waits; one left behind by a crash follows its file to
  done/ or failed/; one alone for `ORPHAN_SECONDS` goes to failed/.

Crash safety: each file's idempotency key is `folder:<sha256>`, so a file captured just before a
crash (and still in the inbox) is answered "already imported" on restart and moved to done/. The
file is moved before its sidecar, so a crash never leaves a file whose metadata went missing.
A lock file (`.lock`, POSIX only) keeps two watchers on one folder from scanning at once; the
keys make even that harmless.

Links: whoever may drop files may also plant symbolic links. Nothing here follows one: drops and
sidecars are opened with O_NOFOLLOW and read from that descriptor, error files are created with
O_EXCL (a link already in failed/ is never written through), moves are plain renames (which
replace a link rather than follow it), and a watch folder whose inbox/, done/, failed/,
defaults.json or lock file is a link is refused as a whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from medarchive.capture.batch.carrier import UnreadableFile, VerifiedReader, local_file, message_of
from medarchive.capture.batch.importer import (
    Defaults,
    Vocabulary,
    check_files,
    close_streams,
    describe,
    refused_item,
    row_problem,
)
from medarchive.capture.batch.manifest import ManifestError, Row, read_manifest, row_from_mapping
from medarchive.capture.intake import Item, ItemOutcome, receive
from medarchive.capture.models import Channel
from medarchive.capture.services import IncomingFile
from medarchive.core import clock
from medarchive.core.errors import MedarchiveError, ValidationError
from medarchive.core.labels import with_labels
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action

log = logging.getLogger(__name__)

INBOX, DONE, FAILED = "inbox", "done", "failed"
DEFAULTS_FILE = "defaults.json"
LOCK_FILE = ".lock"
SIDECAR_SUFFIXES = (".json", ".csv")
TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".filepart", ".!ut")
MODIFIED = "@modified"  # as a date in defaults.json or a sidecar: the file's modification date
DEFAULT_SETTLE_SECONDS = 10.0
ORPHAN_SECONDS = 24 * 3600
MAX_PER_SUBMISSION = 100
MAX_SIDECAR_BYTES = 1024 * 1024
ERROR_SUFFIX = ".error.txt"

Signature = tuple[int, int, int]  # size, mtime_ns, ctime_ns


@dataclass
class FileOutcome:
    name: str
    status: str  # received | replayed | rejected
    moved_to: str  # done | failed | "" (could not be moved; retried next scan)
    record: str = ""  # electronic_no
    review: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "moved_to": self.moved_to,
            "electronic_no": self.record,
            "review": self.review,
            "reason": self.reason,
        }


@dataclass
class ScanSummary:
    folder: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    waiting: int = 0
    busy: bool = False  # another watcher held the folder's lock

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "received": self.count("received"),
            "replayed": self.count("replayed"),
            "rejected": self.count("rejected"),
            "waiting": self.waiting,
            "busy": self.busy,
            "files": [o.as_dict() for o in self.outcomes],
        }

    def __str__(self) -> str:
        if self.busy:
            return "skipped: another watcher is scanning this folder"
        return (
            f"{self.count('received')} received, {self.count('replayed')} already in, "
            f"{self.count('rejected')} 不合格, {self.waiting} waiting"
        )


@dataclass
class _Drop:
    path: Path
    sidecar: Path | None


class Watcher:
    """Scans one folder; kept across scans by the long-running `watch` so a file must also look
    the same on two scans in a row before it is taken."""

    def __init__(self, folder: Path, actor: User, *, settle_seconds: float = DEFAULT_SETTLE_SECONDS) -> None:
        self.folder = folder
        self.actor = actor
        self.settle_seconds = settle_seconds
        self._seen: dict[str, Signature] = {}  # nothing is taken on the first scan: it must look the same twice

    def scan(self, *, now: float | None = None) -> ScanSummary:
        summary, self._seen = _scan(self.folder, self.actor, self.settle_seconds, now, self._seen)
        return summary


def scan(
    folder: Path, actor: User, *, settle_seconds: float = DEFAULT_SETTLE_SECONDS, now: float | None = None
) -> ScanSummary:
    """One pass over the folder: capture every settled drop and move it. For a periodic job."""
    return _scan(folder, actor, settle_seconds, now, None)[0]


def scan_as(folder: Path | None, username: str) -> str:
    """The periodic job's body: a one-line outcome, or why nothing was scanned."""
    if folder is None or not username:
        return "skipped: no watch folder or watch user configured"
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        return f"skipped: no active user {username!r}"
    return str(scan(folder, user))


def layout(folder: Path) -> tuple[Path, Path, Path]:
    """The inbox, done and failed folders, made when missing. Each must be a real folder: a link
    would send drops, moves and error files wherever it points."""
    if not folder.is_dir():
        raise ValidationError(
            _("The watch folder %(folder)s does not exist; create it, or name the folder to watch."),
            code="watch_folder_missing",
            field="FOLDER",
            folder=str(folder),
        )
    paths = (folder / INBOX, folder / DONE, folder / FAILED)
    for path in paths:
        _refuse_link(path)
        with contextlib.suppress(FileExistsError):
            path.mkdir()
        if not stat.S_ISDIR(path.lstat().st_mode):
            raise ValidationError(
                _("%(path)s is not a folder; the watch folder needs a folder %(name)s/ there: move the file away."),
                code="watch_folder_not_a_folder",
                field="FOLDER",
                path=str(path),
                name=path.name,
            )
    return paths


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise ValidationError(
            _(
                "%(path)s is a symbolic link; the watch folder's inbox/, done/, failed/, defaults.json and .lock "
                "must be real files and folders (links are never followed here)."
            ),
            code="watch_folder_link",
            field="FOLDER",
            path=str(path),
        )


def _scan(
    folder: Path, actor: User, settle: float, now: float | None, previous: dict[str, Signature] | None
) -> tuple[ScanSummary, dict[str, Signature]]:
    require(actor, Action.RECORD_CREATE)
    layout(folder)
    scan_pass = _Pass(folder, actor, settle, now if now is not None else time.time(), previous)
    with _locked(folder) as acquired:
        if not acquired:
            scan_pass.summary.busy = True
            return scan_pass.summary, previous or {}
        scan_pass.run()
    if scan_pass.summary.outcomes:
        log.info("watch %s: %s", folder.name, scan_pass.summary)
    return scan_pass.summary, scan_pass.seen


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[bool]:
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # Windows: no lock; idempotency keys still stop double capture
        yield True
        return
    path = folder / LOCK_FILE
    _refuse_link(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a link since we looked
            _refuse_link(path)
        raise ValidationError(
            _("The lock file %(path)s cannot be opened (%(reason)s); check that the watcher may write there."),
            code="watch_lock_unavailable",
            field="FOLDER",
            path=str(path),
            reason=str(exc.strerror or exc),
        ) from None
    with os.fdopen(fd, "r+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _defaults(folder: Path) -> Row:
    path = folder / DEFAULTS_FILE
    _refuse_link(path)
    if not path.exists():
        return Row(number=0)
    try:
        return _row_from_json(path, _read_small(path))
    except MedarchiveError as exc:
        raise _unusable_defaults(path, exc) from None
    except OSError as exc:
        raise ValidationError(
            _("The defaults file %(path)s cannot be read (%(reason)s); check that the watcher may read it."),
            code="watch_defaults_unreadable",
            field="defaults",
            path=str(path),
            reason=str(exc.strerror or exc),
        ) from None


def _unusable_defaults(path: Path, problem: MedarchiveError) -> ValidationError:
    return ValidationError(
        with_labels(
            _("The defaults file %(path)s cannot be used, so nothing is taken: %(problem)s"),
            problem=message_of(problem),
        ),
        code="watch_defaults_invalid",
        field="defaults",
        path=str(path),
        problem_code=problem.code,
    )


def _unusable_sidecar(sidecar: Path, problem: MedarchiveError) -> ValidationError:
    return ValidationError(
        with_labels(_("The sidecar %(sidecar)s cannot be used: %(problem)s"), problem=message_of(problem)),
        code="sidecar_invalid",
        field="sidecar",
        sidecar=sidecar.name,
        problem_code=problem.code,
    )


def _temporary(name: str) -> bool:
    return name.startswith((".", "~$")) or name.casefold().endswith(TEMPORARY_SUFFIXES)


def _sidecar_of(name: str) -> str | None:
    """`x.pdf.json` describes `x.pdf`: a sidecar is a full file name plus .json or .csv."""
    for suffix in SIDECAR_SUFFIXES:
        if name.casefold().endswith(suffix):
            base = name[: -len(suffix)]
            if "." in base.lstrip("."):
                return base
    return None


def _signature(info: os.stat_result) -> Signature:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _identity(path: Path) -> str:
    try:
        return str(_signature(path.lstat()))
    except OSError:
        return "gone"


@dataclass
class _Pass:
    """One scan of the folder."""

    folder: Path
    actor: User
    settle: float
    now: float
    previous: dict[str, Signature] | None  # the last scan's signatures (long-running watcher)
    seen: dict[str, Signature] = field(default_factory=dict)
    summary: ScanSummary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = ScanSummary(folder=str(self.folder))
        self.inbox, self.done, self.failed = (self.folder / INBOX, self.folder / DONE, self.folder / FAILED)

    def run(self) -> None:
        defaults = _defaults(self.folder)
        drops = self.ready()
        if not drops:
            return
        vocabulary = Vocabulary.load()
        for start in range(0, len(drops), MAX_PER_SUBMISSION):
            self.capture(drops[start : start + MAX_PER_SUBMISSION], defaults, vocabulary)

    def ready(self) -> list[_Drop]:
        entries: dict[str, os.stat_result] = {}
        for entry in os.scandir(self.inbox):
            if _temporary(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # taken away while we looked
                continue
            if stat.S_ISLNK(info.st_mode):
                self.reject_in_place(
                    self.inbox / entry.name,
                    str(_("This is a symbolic link, and symbolic links are not taken; drop the file itself.")),
                )
            elif stat.S_ISREG(info.st_mode):
                entries[entry.name] = info
                self.seen[entry.name] = _signature(info)
        drops: list[_Drop] = []
        for name in sorted(entries):
            base = _sidecar_of(name)
            if base is not None:
                if base not in entries:
                    self.orphan(self.inbox / name, base)
                continue  # a sidecar goes with its file
            sidecar = next((f"{name}{s}" for s in SIDECAR_SUFFIXES if f"{name}{s}" in entries), None)
            if self.settled(name, entries[name]) and (sidecar is None or self.settled(sidecar, entries[sidecar])):
                drops.append(_Drop(self.inbox / name, self.inbox / sidecar if sidecar else None))
            else:
                self.summary.waiting += 1
        return drops

    def settled(self, name: str, info: os.stat_result) -> bool:
        age = self.now - max(info.st_mtime, info.st_ctime)
        stable = self.previous is None or self.previous.get(name) == self.seen[name]
        return age >= self.settle and stable

    def orphan(self, sidecar: Path, base: str) -> None:
        """A sidecar without its file: left by a crash (follows the file), early (waits), or stray."""
        for target in (self.done, self.failed):
            if (target / base).exists():
                _move(sidecar, target, _free_name(target, sidecar.name))
                return
        if self.now - sidecar.lstat().st_mtime < ORPHAN_SECONDS:
            self.summary.waiting += 1
            return
        self.reject_in_place(
            sidecar,
            _("No file %(file)s arrived for this sidecar within %(hours)s hours; drop the file and its sidecar again.")
            % {"file": base, "hours": ORPHAN_SECONDS // 3600},
        )

    def reject_in_place(self, path: Path, reason: str) -> None:
        moved_to = FAILED
        try:
            target = _free_name(self.failed, path.name)
            _write_error(self.failed, target, reason, code="not_taken", field_name="files")
            _move(path, self.failed, target)
        except (OSError, MedarchiveError) as exc:  # stays where it is; the next scan tries again
            log.warning("watch %s: could not move a file to %s/: %s", self.folder.name, FAILED, _why(exc))
            moved_to = ""
        self.summary.outcomes.append(FileOutcome(path.name, "rejected", moved_to, reason=reason))

    def capture(self, drops: list[_Drop], defaults: Row, vocabulary: Vocabulary) -> None:
        items = [_item(drop, defaults, vocabulary) for drop in drops]
        identity = sorted(
            item.key or f"{item.label}:{_identity(drop.path)}" for item, drop in zip(items, drops, strict=True)
        )
        key = "folder:" + hashlib.sha256("\n".join(identity).encode()).hexdigest()
        source = f"watch {self.folder.name}"[:200]
        try:
            result = receive(items, actor=self.actor, channel=Channel.FOLDER, source=source, key=key)
        finally:
            for item in items:
                close_streams(item)
        for drop, outcome in zip(drops, result.outcomes, strict=True):
            self.summary.outcomes.append(_settle(drop, outcome, self.folder, str(result.submission.pk)))


def _item(drop: _Drop, defaults: Row, vocabulary: Vocabulary) -> Item:
    name = drop.path.name
    described = Row(number=1)
    if drop.sidecar is not None:
        try:
            described = _sidecar(drop.sidecar)
        except MedarchiveError as exc:  # the defaults still describe it, so the sidecar's problem is the reason
            described = Row(number=1, problem=_unusable_sidecar(drop.sidecar, exc))
        except OSError as exc:
            unreadable = UnreadableFile(
                _("The sidecar %(sidecar)s cannot be read (%(reason)s); check that the watcher may read it."),
                code="unreadable_file",
                field="sidecar",
                sidecar=drop.sidecar.name,
                reason=str(exc.strerror or exc),
            )
            described = Row(number=1, problem=unreadable)
    row = _merge(defaults, described, drop.path)
    description = describe(row, vocabulary, Defaults())
    problem = row_problem(row, vocabulary)
    if problem is not None:
        return refused_item(row, description, name, problem, name=name)
    try:
        located = local_file(drop.path)
        (sha,) = check_files(row, [located])
    except MedarchiveError as exc:
        return refused_item(row, description, name, exc, name=name)
    incoming = IncomingFile(name=located.name, stream=VerifiedReader.open(located, sha), created=located.created)
    return Item(description=description, files=[incoming], key=f"folder:{sha}" if sha else None, label=name[:200])


def _merge(defaults: Row, sidecar: Row, path: Path) -> Row:
    row = Row(
        number=1,
        fields={**defaults.fields, **sidecar.fields},
        metadata={**defaults.metadata, **sidecar.metadata},
        files=[path.name],
        size=sidecar.size,
        sha256=sidecar.sha256,
        problem=sidecar.problem or defaults.problem,
    )
    row.fields.setdefault("title", path.stem)
    if row.fields.get("date") == MODIFIED:
        modified = dt.datetime.fromtimestamp(path.lstat().st_mtime, tz=dt.UTC)
        row.fields["date"] = timezone.localdate(modified).isoformat()
    return row


def _open_regular(path: Path) -> int:
    """A descriptor of `path` if it is a regular file, not following a link put there since it was
    listed (O_NOFOLLOW) and not hanging on a FIFO (O_NONBLOCK); what is read comes from this descriptor."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnreadableFile(
            _("%(path)s is not a regular file (a folder, device or pipe); put the file itself there."),
            code="unreadable_file",
            field="sidecar",
            path=path.name,
        )
    return fd


def _read_small(path: Path) -> bytes:
    with os.fdopen(_open_regular(path), "rb") as handle:
        data = handle.read(MAX_SIDECAR_BYTES + 1)
    if len(data) > MAX_SIDECAR_BYTES:
        raise ValidationError(
            _("%(file)s is larger than %(max_bytes)s bytes; a sidecar or defaults file holds only a description."),
            code="sidecar_too_large",
            field="sidecar",
            file=path.name,
            max_bytes=MAX_SIDECAR_BYTES,
        )
    return data


def _sidecar(path: Path) -> Row:
    data = _read_small(path)
    if path.name.casefold().endswith(".csv"):
        manifest = read_manifest(data, name=path.name, require_files=False)
        if len(manifest.rows) != 1:
            raise ManifestError(
                _("%(file)s must hold one row under its header, the description of its file; it holds %(rows)s."),
                code="sidecar_not_one_row",
                field="sidecar",
                file=path.name,
                rows=len(manifest.rows),
            )
        return manifest.rows[0]
    return _row_from_json(path, data)


def _row_from_json(path: Path, data: bytes) -> Row:
    try:
        value = json.loads(data)
    except UnicodeDecodeError:
        raise ValidationError(
            _("%(file)s is not UTF-8 text; save it as UTF-8."),
            code="sidecar_not_utf8",
            field="sidecar",
            file=path.name,
        ) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(
            _("%(file)s is not valid JSON (line %(line)s, column %(column)s); check its quotes, commas and braces."),
            code="sidecar_not_json",
            field="sidecar",
            file=path.name,
            line=exc.lineno,
            column=exc.colno,
        ) from None
    if not isinstance(value, dict):
        raise ValidationError(
            _('%(file)s must be a JSON object of names and values, such as {"题名": "…", "日期": "2025-03-01"}.'),
            code="sidecar_not_object",
            field="sidecar",
            file=path.name,
        )
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if key in {"metadata", "meta"} and isinstance(item, dict):
            flat |= {f"meta.{k}": v for k, v in item.items()}
        elif isinstance(item, list):
            flat[key] = ",".join(str(v) for v in item)
        elif isinstance(item, dict):
            raise ValidationError(
                _("In %(file)s, %(name)s must be a value, not an object (only metadata holds names and values)."),
                code="sidecar_nested_object",
                field="sidecar",
                file=path.name,
                name=key,
            )
        else:
            flat[key] = item
    row, _ignored = row_from_mapping(flat, name=path.name)
    return row


def _settle(drop: _Drop, outcome: ItemOutcome, folder: Path, submission: str) -> FileOutcome:
    """Move the file, then its sidecar: done/ when captured or already in, else failed/ with the reason."""
    name = drop.path.name
    result = FileOutcome(name, outcome.status, DONE if outcome.ok else FAILED)
    if outcome.record is not None:
        result.record = outcome.record.electronic_no
    if outcome.intake is not None:
        result.review = str(outcome.intake.state)
    target_dir = folder / result.moved_to
    try:
        companions = (drop.sidecar.name[len(name) :],) if drop.sidecar is not None else ()
        target = _free_name(target_dir, name, *companions)
        if outcome.error is not None:
            result.reason = outcome.error.message
            _write_error(
                target_dir,
                target,
                outcome.error.message,
                code=outcome.error.code,
                field_name=outcome.error.field or "",
                submission=submission,
            )
        _move(drop.path, target_dir, target)
        if drop.sidecar is not None:
            _move(drop.sidecar, target_dir, target + drop.sidecar.name[len(name) :])
    except (OSError, MedarchiveError) as exc:  # stays in the inbox; the next scan replays it (same key) and moves it
        log.warning("watch %s: could not move a file: %s", folder.name, _why(exc))
        result.moved_to = ""
    return result


def _why(exc: OSError | MedarchiveError) -> str:
    return exc.message if isinstance(exc, MedarchiveError) else str(exc.strerror or exc)


def _free_name(directory: Path, name: str, *companions: str) -> str:
    """A name not taken in `directory` by anything (a dangling link included), nor its error file
    and companions (the sidecar's suffix): none of them may land on something already there."""
    path = Path(name)
    for n in range(1, 10_000):
        candidate = name if n == 1 else f"{path.stem}~{n}{path.suffix}"
        taken = (candidate, f"{candidate}{ERROR_SUFFIX}", *(candidate + c for c in companions))
        if not any(os.path.lexists(directory / t) for t in taken):
            return candidate
    raise UnreadableFile(
        _("There are too many files named %(name)s in %(folder)s/; clear old ones out of it."),
        code="no_free_name",
        field="files",
        name=name,
        folder=directory.name,
    )


def _move(source: Path, directory: Path, name: str) -> None:
    """A rename: it moves a link itself and never writes through a link at the target."""
    target = directory / name
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_across_devices(source, target)


def _copy_across_devices(source: Path, target: Path) -> None:
    """done/ or failed/ on another file system: copy into a new file (never through a link), then remove."""
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    else:
        with os.fdopen(_open_regular(source), "rb") as reader, os.fdopen(_create_new(target), "wb") as writer:
            shutil.copyfileobj(reader, writer)
    os.unlink(source)


def _create_new(path: Path) -> int:
    """Create `path`, failing if anything (a planted link included) is there already."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.open(path, flags | getattr(os, "O_BINARY", 0), 0o600)


def _write_error(directory: Path, name: str, reason: str, *, code: str, field_name: str, submission: str = "") -> None:
    lines = [
        f"file: {name}",
        "status: 不合格 (rejected)",
        f"reason: {reason}",
        f"code: {code}",
        f"field: {field_name}",
        f"at: {clock.now().isoformat()}",
    ]
    if submission:
        lines.append(f"submission: {submission}")
    # O_EXCL: a link planted under this name fails the write (the drop stays for the next scan,
    # which picks a free name) instead of being written through.
    with os.fdopen(_create_new(directory / f"{name}{ERROR_SUFFIX}"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def watch(
    folder: Path,
    actor: User,
    *,
    interval: float,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    on_scan: Callable[[ScanSummary], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Scan every `interval` seconds until `stop()` says so."""
    from django.db import close_old_connections  # noqa: PLC0415 - only the long-running loop needs it

    watcher = Watcher(folder, actor, settle_seconds=settle_seconds)
    while not stop():
        close_old_connections()
        summary = watcher.scan()
        if on_scan is not None:
            on_scan(summary)
        time.sleep(interval)
