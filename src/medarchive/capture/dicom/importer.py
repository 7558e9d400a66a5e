"""DICOM file import: files and folders of Part 10 files → one record per study.

Every file is checked on its own (a text file, an empty file, a bare dataset without the Part 10
header or one without a StudyInstanceUID is refused by name and the rest go on). The good ones
are grouped per study and each study is captured in its own submission, read straight from
disk into the encrypted store (the bytes of each file are kept as they are).

Links: a path named on the command line is taken as the operator named it (a link to a file or
folder is followed once). Inside the folders, symbolic links are never followed — not to files,
not to folders — but listed as skipped; files are opened with O_NOFOLLOW, so one swapped for a
link after it was listed is refused rather than read through.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings

from medarchive.capture.dicom.capture import REJECTED, StudyOutcome, capture
from medarchive.capture.dicom.extract import DicomProblem, read_instance
from medarchive.capture.dicom.group import Gatherer, Member, Study, department_codes
from medarchive.capture.services import IncomingFile
from medarchive.core import aliases
from medarchive.core.aliases import UnmappedDepartment
from medarchive.core.errors import ValidationError
from medarchive.security.models import User


@dataclass
class FileProblem:
    path: Path
    message: str
    code: str = "dicom_invalid"

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "code": self.code, "problem": self.message}


@dataclass
class Scan:
    """What reading the headers found: studies to capture, files refused, files skipped."""

    gatherer: Gatherer[Path] = field(default_factory=Gatherer)
    problems: list[FileProblem] = field(default_factory=list)
    skipped: list[FileProblem] = field(default_factory=list)  # DICOMDIR indexes: nothing to keep


class LazyFile:
    """A file opened on the first read and closed at its end: a study of 2,000 instances does
    not hold 2,000 descriptors while the submission stages them one after another."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None
        self._done = False

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        if self._handle is None:
            self._handle = open_regular(self.path)
        data = self._handle.read(size)
        if not data:
            self.close()
        return data

    def close(self) -> None:
        self._done = True
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def find_files(paths: list[Path]) -> list[Path]:
    """The files named and those under the folders named (hidden ones left out), in order.

    Symbolic links (and other entries that are neither file nor folder) under a folder are listed
    as they are, not followed: `scan` reports them as skipped."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise ValidationError(f"{path} does not exist", field="PATH")
        named = path.resolve()  # what the operator named, links included
        found.extend(sorted(_walk(named)) if named.is_dir() else [named])
    unique = list(dict.fromkeys(found))
    if not unique:
        raise ValidationError("no files to import", field="PATH")
    return unique


def _walk(folder: Path) -> Iterator[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        yield folder  # scan names why it cannot be read
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path))
        else:
            yield Path(entry.path)


def open_regular(path: Path) -> IO[bytes]:
    """`path` opened for reading if it is a regular file; a link there is not followed (O_NOFOLLOW)
    and a FIFO does not block (O_NONBLOCK)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return os.fdopen(fd, "rb")


def scan(files: list[Path], *, on_file: Callable[[Path], None] | None = None) -> Scan:
    """Read every file's header (not its pixel data) and gather the good ones per study."""
    result = Scan()
    limit = settings.CONFIG.max_upload_bytes
    for path in files:
        try:
            _scan_one(path, result, limit)
        finally:
            if on_file is not None:
                on_file(path)
    return result


def _scan_one(path: Path, result: Scan, limit: int) -> None:
    try:
        skip = _not_a_file(path)
        if skip is not None:
            (result.problems if skip.code == "unreadable" else result.skipped).append(skip)
            return
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                result.problems.append(
                    FileProblem(path, f"{size} bytes is larger than the limit of {limit} bytes", "payload_too_large")
                )
                return
            instance = read_instance(handle)
    except DicomProblem as exc:
        result.problems.append(FileProblem(path, exc.message, exc.code))
        return
    except OSError as exc:
        result.problems.append(FileProblem(path, f"cannot be read: {exc.strerror or exc}", "unreadable"))
        return
    if instance.is_dicomdir:
        result.skipped.append(FileProblem(path, "DICOMDIR index: not an instance, nothing to keep", "dicomdir"))
        return
    reason, _ = result.gatherer.add(Member(instance, path))
    if reason is not None:
        result.problems.append(FileProblem(path, reason, "dicom_conflict"))


def _not_a_file(path: Path) -> FileProblem | None:
    """Why a listed entry is not read: a link (skipped, never followed), a FIFO or device (skipped),
    a folder that could not be listed (refused)."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return FileProblem(path, "symbolic link inside a folder: not followed", "symlink")
    if stat.S_ISDIR(mode):
        return FileProblem(path, "the folder cannot be listed", "unreadable")
    if not stat.S_ISREG(mode):
        return FileProblem(path, "not a regular file (a FIFO, socket or device)", "not_a_file")
    return None


def capture_studies(
    found: Scan,
    *,
    actor: User,
    department_code: str,
    source: str = "import-dicom",
    on_study: Callable[[Study[Path], StudyOutcome], None] | None = None,
) -> list[StudyOutcome]:
    """Capture each study in its own submission (keyed like the study, so a re-run is a replay)."""
    outcomes: list[StudyOutcome] = []
    for study in found.gatherer.studies:
        try:
            outcome = _capture_one(study, actor=actor, department_code=department_code, source=source)
        except OSError as exc:  # a file removed or unreadable since it was scanned
            outcome = StudyOutcome(study.uid, study.key, len(study.members), REJECTED, problem=f"cannot be read: {exc}")
        outcomes.append(outcome)
        if on_study is not None:
            on_study(study, outcome)
    return outcomes


def department_of(study: Study[Any], fallback: str) -> str:
    """As the listener files it: the study's Institution(al Department) Name through the archivist's
    department code table, else the department the operator named (`--department`)."""
    seen = department_codes(study.first("institution_name"), study.first("department_name"))
    try:
        return aliases.resolve(seen).department
    except UnmappedDepartment:
        return fallback


def _capture_one(study: Study[Path], *, actor: User, department_code: str, source: str) -> StudyOutcome:
    files = Study(
        study.uid,
        [
            Member(
                m.instance,
                IncomingFile(
                    name=m.filename,
                    stream=cast(IO[bytes], LazyFile(m.payload)),
                    created=dt.datetime.fromtimestamp(m.payload.lstat().st_mtime, tz=dt.UTC),
                ),
            )
            for m in study.members
        ],
    )
    try:
        (outcome,) = capture(
            [files],
            actor=actor,
            department_code=department_of(study, department_code),
            source=source,
            submission_key=study.key,
        )
    finally:
        for member in files.members:
            cast(LazyFile, member.payload.stream).close()
    return outcome


def failed(found: Scan, outcomes: list[StudyOutcome]) -> bool:
    return bool(found.problems) or any(o.status == REJECTED for o in outcomes)
