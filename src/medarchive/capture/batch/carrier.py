"""Carriers: the folder or .zip an offline batch arrives on, and the files its manifest names.

Security policy: a manifest is untrusted input. A path it names is resolved strictly inside the
carrier: absolute paths, drive letters, `..` and control characters are refused before the file
system is touched; a folder path that resolves (through a symbolic link) outside the carrier is
refused; only regular files are opened, without following a final symbolic link. A .zip is never
extracted: members are read as streams, so no member name ever becomes a path on disk. A zip
with an unsafe member (`../`, absolute, a symbolic link, a duplicate name) is refused as a whole,
as is one that claims to expand past `MAX_CARRIER_BYTES` or a member that expands more than
`BOMB_RATIO` times; zipfile itself stops every member at its declared size and checks its CRC.
Every file is hashed before capture and checked again while it is stored (`VerifiedReader`), so
a carrier that changes during the import fails the row instead of storing other bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import stat
import unicodedata
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, cast

from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _

from medarchive.capture.batch.manifest import MAX_MANIFEST_BYTES, ManifestError, too_large
from medarchive.core.errors import MedarchiveError, ValidationError
from medarchive.core.labels import with_labels

MANIFEST_SUFFIXES = (".csv", ".tsv", ".xlsx")
# Preferred manifest names when a carrier holds several tables (the others are data files).
MANIFEST_STEMS = ("manifest", "清单", "目录", "移交清单", "导入清单", "归档文件目录", "登记表", "移交接收登记表")
MAX_CARRIER_BYTES = 64 * 1024**3
MAX_MEMBERS = 200_000
BOMB_RATIO = 200
BOMB_MIN_BYTES = 16 * 1024 * 1024
CHUNK = 1024 * 1024


class UnsafePath(ValidationError):
    code = "unsafe_path"


class MissingFile(ValidationError):
    code = "missing_file"


class UnreadableFile(ValidationError):
    code = "unreadable_file"


class UnsafeCarrier(ValidationError):
    code = "unsafe_carrier"


@dataclass(frozen=True)
class Located:
    """A file the manifest names, found in the carrier and not yet read."""

    path: str  # inside the carrier, '/'-separated
    name: str
    size: int
    created: dt.datetime | None
    opener: Callable[[], IO[bytes]]


def message_of(error: MedarchiveError) -> Promise:
    """An error's message, rendered in the language active when it is read: for a message that
    quotes another error's ("the sidecar cannot be used: …")."""
    return cast(Promise, lazy(lambda: error.message, str)())


def visible(text: str) -> str:
    """A name as it can be shown and stored: control characters (NUL, escape …) become �."""
    return "".join("\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in text)


def relative_parts(raw: str) -> list[str]:
    """The parts of a carrier-relative path, or `UnsafePath` naming why it may not be used."""
    text = unicodedata.normalize("NFC", raw.strip())
    if not text:
        raise MissingFile(
            _("The file column is empty; give the path of the file, relative to the manifest."),
            code="missing_file",
            field="files",
        )
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise UnsafePath(
            _("The path %(path)s contains control characters (shown as �); write the file's path as plain text."),
            code="unsafe_path",
            field="files",
            path=visible(text),
        )
    slashed = text.replace("\\", "/")
    if slashed.startswith("/") or (len(slashed) > 1 and slashed[1] == ":"):
        raise UnsafePath(
            _("The path %(path)s is absolute; give it relative to the manifest."),
            code="unsafe_path",
            field="files",
            path=text,
        )
    parts = [p for p in slashed.split("/") if p not in {"", "."}]
    if ".." in parts:
        raise UnsafePath(
            _("The path %(path)s leaves the carrier (..); give it relative to the manifest, inside the carrier."),
            code="unsafe_path",
            field="files",
            path=text,
        )
    if not parts:
        raise UnsafePath(
            _("The path %(path)s names no file; give the path of the file, relative to the manifest."),
            code="unsafe_path",
            field="files",
            path=text,
        )
    return parts


def choose_manifest(candidates: list[str], where: str) -> str:
    """The manifest among the tables at the top of a carrier: the only one, or the only one
    with a manifest name (清单, 目录, manifest …)."""
    tables = sorted(c for c in candidates if c.casefold().endswith(MANIFEST_SUFFIXES))
    if len(tables) == 1:
        return tables[0]
    named = [t for t in tables if PurePosixPath(t).stem.casefold() in MANIFEST_STEMS]
    if len(named) == 1:
        return named[0]
    if not tables:
        raise ManifestError(
            _("There is no manifest in %(carrier)s: put the manifest (a .csv or .xlsx table) next to the files."),
            code="manifest_missing",
            field="manifest",
            carrier=where,
        )
    raise ManifestError(
        _(
            "Several tables in %(carrier)s could be the manifest (%(tables)s); give the path of the one to import, "
            "or call only one of them 清单 or manifest."
        ),
        code="manifest_ambiguous",
        field="manifest",
        carrier=where,
        tables=named or tables,
    )


def digest(located: Located) -> str:
    """SHA-256 of a located file (reads it once)."""
    sha = hashlib.sha256()
    with VerifiedReader.open(located, None) as stream:
        while chunk := stream.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


class VerifiedReader(io.RawIOBase):
    """Opens the file on first read, closes it at the end, and fails the read at the end when the
    bytes are not those hashed before (the carrier changed). Read errors become `UnreadableFile`."""

    def __init__(self, located: Located, expected_sha256: str | None) -> None:
        self._located = located
        self._expected = expected_sha256
        self._handle: IO[bytes] | None = None
        self._sha = hashlib.sha256()
        self._done = False

    @classmethod
    def open(cls, located: Located, expected_sha256: str | None) -> io.BufferedReader:
        return io.BufferedReader(cls(located, expected_sha256), buffer_size=CHUNK)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._done:
            return 0
        try:
            if self._handle is None:
                self._handle = self._located.opener()
            data = self._handle.read(len(buffer))
        except ValidationError:
            raise
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as exc:
            self._finish()
            raise UnreadableFile(
                _("%(path)s cannot be read (%(reason)s); the carrier may be damaged: copy it again."),
                code="unreadable_file",
                field="files",
                path=self._located.path,
                reason=str(exc),
            ) from None
        if data:
            buffer[: len(data)] = data
            self._sha.update(data)
            return len(data)
        self._finish()
        if self._expected is not None and self._sha.hexdigest() != self._expected:
            raise UnreadableFile(
                _("%(path)s changed while it was imported; import the carrier again."),
                code="unreadable_file",
                field="files",
                path=self._located.path,
            )
        return 0

    def _finish(self) -> None:
        self._done = True
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def close(self) -> None:
        self._finish()
        super().close()


class Carrier(ABC):
    """A folder or a zip with a manifest. Paths in the manifest are relative to the manifest."""

    kind: str
    name: str  # what the operator called it: the folder's or zip's name
    manifest_name: str

    @abstractmethod
    def manifest_bytes(self) -> bytes: ...

    @abstractmethod
    def locate(self, raw: str) -> Located: ...

    def close(self) -> None:  # noqa: B027 - folders hold nothing open
        pass

    def __enter__(self) -> Carrier:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def open_carrier(path: Path) -> Carrier:
    """A folder (manifest found inside), a manifest file (its folder is the carrier) or a .zip."""
    if not path.exists():
        raise MissingFile(
            _("%(path)s does not exist; give a folder, a .zip carrier or a .csv/.xlsx manifest."),
            code="carrier_not_found",
            field="MANIFEST",
            path=str(path),
        )
    if path.is_dir():
        return FolderCarrier(path, None)
    if path.suffix.casefold() == ".zip":
        return ZipCarrier(path)
    if path.suffix.casefold() in MANIFEST_SUFFIXES:
        return FolderCarrier(path.parent, path)
    raise ManifestError(
        _("%(name)s is not a carrier; give a folder, a .zip carrier or a .csv/.xlsx manifest."),
        code="carrier_unsupported",
        field="MANIFEST",
        name=path.name,
    )


def _read_limited(stream: IO[bytes], name: str) -> bytes:
    data = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise too_large(name)
    return data


class FolderCarrier(Carrier):
    kind = "folder"

    def __init__(self, folder: Path, manifest: Path | None) -> None:
        self.root = folder.resolve(strict=True)
        self.name = self.root.name
        if manifest is None:
            try:
                names = [e.name for e in os.scandir(self.root) if e.is_file() and not e.name.startswith((".", "~$"))]
            except OSError as exc:
                raise ManifestError(
                    _("The folder %(carrier)s cannot be listed (%(reason)s); check that the import may read it."),
                    code="carrier_unreadable",
                    field="MANIFEST",
                    carrier=self.name,
                    reason=_reason(exc),
                ) from None
            manifest = self.root / choose_manifest(names, self.name)
        self._manifest = manifest
        self.manifest_name = manifest.name

    def manifest_bytes(self) -> bytes:
        try:
            with self._manifest.open("rb") as stream:
                return _read_limited(stream, self.manifest_name)
        except OSError as exc:
            raise ManifestError(
                _("The manifest %(manifest)s cannot be read (%(reason)s); check that the import may read it."),
                code="manifest_unreadable",
                field="manifest",
                manifest=self.manifest_name,
                reason=_reason(exc),
            ) from None

    def locate(self, raw: str) -> Located:
        parts = relative_parts(raw)
        shown = "/".join(parts)
        try:
            return self._locate(parts, shown)
        except OSError as exc:  # no permission, a vanished file …
            raise _cannot_read(shown, exc) from None

    def _locate(self, parts: list[str], shown: str) -> Located:
        candidate = self._existing(parts)
        if candidate is None:
            raise MissingFile(
                _("%(path)s is not in the carrier; check its path in the manifest's file column."),
                code="missing_file",
                field="files",
                path=shown,
            )
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):  # a dangling or looping symbolic link
            raise MissingFile(
                _("%(path)s is a broken link in the carrier; put the file itself there."),
                code="missing_file",
                field="files",
                path=shown,
            ) from None
        if not resolved.is_relative_to(self.root):
            raise UnsafePath(
                _("%(path)s leads outside the carrier (a symbolic link); put the file itself in the carrier."),
                code="unsafe_path",
                field="files",
                path=shown,
            )
        info = resolved.stat()
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(shown)
        return Located(
            path=shown,
            name=parts[-1],
            size=info.st_size,
            created=dt.datetime.fromtimestamp(info.st_mtime, tz=dt.UTC),
            opener=lambda: _open_regular(resolved),
        )

    def _existing(self, parts: list[str]) -> Path | None:
        # The manifest is NFC; file systems may hold the other normal form (macOS writes NFD).
        for form in (None, "NFC", "NFD"):
            candidate = self.root.joinpath(*(unicodedata.normalize(form, p) if form else p for p in parts))
            if os.path.lexists(candidate):
                return candidate
        return None


def local_file(path: Path) -> Located:
    """A single regular file on disk (a watched folder's drop), opened without following links."""
    try:
        info = path.lstat()
    except OSError as exc:
        raise _cannot_read(path.name, exc) from None
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(path.name)
    return Located(
        path=path.name,
        name=path.name,
        size=info.st_size,
        created=dt.datetime.fromtimestamp(info.st_mtime, tz=dt.UTC),
        opener=lambda: _open_regular(path),
    )


def _open_regular(path: Path) -> IO[bytes]:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a device or pipe since it was located
        os.close(fd)
        raise _not_regular(path.name)
    return os.fdopen(fd, "rb")


def _reason(exc: BaseException) -> str:
    """What the system says went wrong, without the Python dressing (`[Errno 13] …: '/path'`)."""
    return str(getattr(exc, "strerror", None) or exc)


def _cannot_read(path: str, exc: OSError) -> UnreadableFile:
    return UnreadableFile(
        _("%(path)s cannot be read (%(reason)s); check that the import may read it."),
        code="unreadable_file",
        field="files",
        path=path,
        reason=_reason(exc),
    )


def _not_regular(path: str) -> UnreadableFile:
    return UnreadableFile(
        _("%(path)s is not a regular file (a folder, device or pipe); put the file itself there."),
        code="unreadable_file",
        field="files",
        path=path,
    )


def _member_name(info: zipfile.ZipInfo) -> str:
    """Zips from Chinese Windows store GBK names without the UTF-8 flag; Python reads them as cp437."""
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return name


class ZipCarrier(Carrier):
    kind = "zip"

    def __init__(self, path: Path) -> None:
        self.name = path.name
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise UnsafeCarrier(
                _("%(carrier)s is not a readable zip file (%(reason)s); make the .zip again."),
                code="zip_unreadable",
                field="MANIFEST",
                carrier=path.name,
                reason=_reason(exc),
            ) from None
        try:
            self._members = self._check(self._zip.infolist())
            top = min((n.count("/") for n in self._members if n.casefold().endswith(MANIFEST_SUFFIXES)), default=0)
            candidates = [n for n in self._members if n.count("/") == top]
            self.manifest_name = choose_manifest(candidates, self.name)
        except BaseException:
            self._zip.close()
            raise
        self._base = PurePosixPath(self.manifest_name).parent

    def _check(self, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
        if len(infos) > MAX_MEMBERS:
            raise UnsafeCarrier(
                _("%(carrier)s has more than %(max_members)s members; split it into several carriers."),
                code="zip_too_many_members",
                field="MANIFEST",
                carrier=self.name,
                max_members=MAX_MEMBERS,
            )
        total = sum(info.file_size for info in infos)
        if total > MAX_CARRIER_BYTES:
            raise UnsafeCarrier(
                _(
                    "%(carrier)s expands to %(expanded_bytes)s bytes, more than the %(max_bytes)s allowed; split it "
                    "into several carriers."
                ),
                code="zip_too_large",
                field="MANIFEST",
                carrier=self.name,
                expanded_bytes=total,
                max_bytes=MAX_CARRIER_BYTES,
            )
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = _member_name(info)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeCarrier(
                    _("%(carrier)s holds a symbolic link, %(member)s; a carrier must hold the files themselves."),
                    code="zip_member_link",
                    field="MANIFEST",
                    carrier=self.name,
                    member=visible(name),
                )
            try:
                parts = relative_parts(name)
            except ValidationError as exc:
                raise _unsafe_member(self.name, name, exc) from None
            if info.is_dir():
                continue
            if info.file_size > BOMB_MIN_BYTES and info.file_size > BOMB_RATIO * max(info.compress_size, 1):
                raise UnsafeCarrier(
                    _(
                        "%(carrier)s is refused: its member %(member)s expands %(ratio)s times (a zip bomb?); make "
                        "the .zip again from the files themselves."
                    ),
                    code="zip_bomb",
                    field="MANIFEST",
                    carrier=self.name,
                    member=visible(name),
                    ratio=info.file_size // max(info.compress_size, 1),
                )
            key = "/".join(parts)
            if key in members:
                raise UnsafeCarrier(
                    _("%(carrier)s holds %(member)s twice; a carrier may hold each file once."),
                    code="zip_member_twice",
                    field="MANIFEST",
                    carrier=self.name,
                    member=key,
                )
            members[key] = info
        return members

    def manifest_bytes(self) -> bytes:
        try:
            with self._zip.open(self._members[self.manifest_name]) as stream:
                return _read_limited(stream, self.manifest_name)
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
            raise ManifestError(
                _("The manifest %(manifest)s cannot be read from %(carrier)s (%(reason)s); make the .zip again."),
                code="manifest_unreadable",
                field="manifest",
                manifest=self.manifest_name,
                carrier=self.name,
                reason=str(exc),
            ) from None

    def locate(self, raw: str) -> Located:
        parts = relative_parts(raw)
        key = str(self._base.joinpath(*parts)) if str(self._base) != "." else "/".join(parts)
        info = self._members.get(key) or self._members.get(unicodedata.normalize("NFC", key))
        if info is None:
            raise MissingFile(
                _("%(path)s is not in %(carrier)s; check its path in the manifest's file column."),
                code="missing_file",
                field="files",
                path="/".join(parts),
                carrier=self.name,
            )
        if info.flag_bits & 0x1:
            raise UnreadableFile(
                _("%(path)s is encrypted in %(carrier)s; make the .zip again without a password."),
                code="unreadable_file",
                field="files",
                path="/".join(parts),
                carrier=self.name,
            )
        return Located(path=key, name=parts[-1], size=info.file_size, created=None, opener=lambda: self._zip.open(info))

    def close(self) -> None:
        self._zip.close()


def _unsafe_member(carrier: str, member: str, problem: MedarchiveError) -> UnsafeCarrier:
    return UnsafeCarrier(
        with_labels(
            _("%(carrier)s is refused, one of its members is unsafe: %(problem)s"), problem=message_of(problem)
        ),
        code="zip_member_unsafe",
        field="MANIFEST",
        carrier=carrier,
        member=visible(member),
    )
