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
from typing import IO

from medarchive.capture.batch.manifest import MAX_MANIFEST_BYTES, ManifestError
from medarchive.core.errors import ValidationError

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


def relative_parts(raw: str) -> list[str]:
    """The parts of a carrier-relative path, or `UnsafePath` naming why it may not be used."""
    text = unicodedata.normalize("NFC", raw.strip())
    if not text:
        raise MissingFile("the file column is empty", field="files")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise UnsafePath(f"path {raw!r} contains control characters", field="files")
    slashed = text.replace("\\", "/")
    if slashed.startswith("/") or (len(slashed) > 1 and slashed[1] == ":"):
        raise UnsafePath(f"path {raw!r} is absolute; give it relative to the manifest", field="files")
    parts = [p for p in slashed.split("/") if p not in {"", "."}]
    if ".." in parts:
        raise UnsafePath(f"path {raw!r} leaves the carrier ('..')", field="files")
    if not parts:
        raise UnsafePath(f"path {raw!r} names no file", field="files")
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
        raise ManifestError(f"{where}: no manifest (.csv or .xlsx) found", field="manifest")
    raise ManifestError(
        f"{where}: several tables could be the manifest ({', '.join(named or tables)}); name the one to import",
        field="manifest",
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
            raise UnreadableFile(f"cannot read {self._located.path}: {exc}", field="files") from None
        if data:
            buffer[: len(data)] = data
            self._sha.update(data)
            return len(data)
        self._finish()
        if self._expected is not None and self._sha.hexdigest() != self._expected:
            raise UnreadableFile(
                f"{self._located.path} changed while it was imported; import the carrier again", field="files"
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
        raise MissingFile(f"{path} does not exist", field="MANIFEST")
    if path.is_dir():
        return FolderCarrier(path, None)
    if path.suffix.casefold() == ".zip":
        return ZipCarrier(path)
    if path.suffix.casefold() in MANIFEST_SUFFIXES:
        return FolderCarrier(path.parent, path)
    raise ManifestError(f"{path.name}: give a folder, a .zip carrier or a .csv/.xlsx manifest", field="MANIFEST")


def _read_limited(stream: IO[bytes], name: str) -> bytes:
    data = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{name}: the manifest is larger than {MAX_MANIFEST_BYTES} bytes", field="manifest")
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
                raise ManifestError(f"{self.name}: cannot list the folder ({exc.strerror})", field="MANIFEST") from None
            manifest = self.root / choose_manifest(names, self.name)
        self._manifest = manifest
        self.manifest_name = manifest.name

    def manifest_bytes(self) -> bytes:
        try:
            with self._manifest.open("rb") as stream:
                return _read_limited(stream, self.manifest_name)
        except OSError as exc:
            raise ManifestError(f"{self.manifest_name}: cannot be read ({exc.strerror})", field="manifest") from None

    def locate(self, raw: str) -> Located:
        parts = relative_parts(raw)
        shown = "/".join(parts)
        try:
            return self._locate(parts, shown)
        except OSError as exc:  # no permission, a vanished file …
            raise UnreadableFile(f"{shown} cannot be read ({exc.strerror})", field="files") from None

    def _locate(self, parts: list[str], shown: str) -> Located:
        candidate = self._existing(parts)
        if candidate is None:
            raise MissingFile(f"{shown} is not in the carrier", field="files")
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):  # a dangling or looping symbolic link
            raise MissingFile(f"{shown} is a broken link in the carrier", field="files") from None
        if not resolved.is_relative_to(self.root):
            raise UnsafePath(f"{shown} leads outside the carrier (symbolic link)", field="files")
        info = resolved.stat()
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"{shown} is not a regular file", field="files")
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
        raise UnreadableFile(f"{path.name} cannot be read ({exc.strerror})", field="files") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile(f"{path.name} is not a regular file", field="files")
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
        raise UnreadableFile(f"{path.name} is not a regular file", field="files")
    return os.fdopen(fd, "rb")


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
            raise UnsafeCarrier(f"{path.name} is not a readable zip file ({exc})", field="MANIFEST") from None
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
            raise UnsafeCarrier(f"{self.name} has more than {MAX_MEMBERS} members", field="MANIFEST")
        total = sum(info.file_size for info in infos)
        if total > MAX_CARRIER_BYTES:
            raise UnsafeCarrier(
                f"{self.name} expands to {total} bytes, more than the {MAX_CARRIER_BYTES} allowed", field="MANIFEST"
            )
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = _member_name(info)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeCarrier(f"{self.name}: member {name!r} is a symbolic link", field="MANIFEST")
            try:
                parts = relative_parts(name)
            except ValidationError as exc:
                raise UnsafeCarrier(f"{self.name}: unsafe member: {exc.message}", field="MANIFEST") from None
            if info.is_dir():
                continue
            if info.file_size > BOMB_MIN_BYTES and info.file_size > BOMB_RATIO * max(info.compress_size, 1):
                raise UnsafeCarrier(
                    f"{self.name}: member {name!r} expands {info.file_size // max(info.compress_size, 1)} times"
                    " (zip bomb?)",
                    field="MANIFEST",
                )
            key = "/".join(parts)
            if key in members:
                raise UnsafeCarrier(f"{self.name}: member {key!r} appears twice", field="MANIFEST")
            members[key] = info
        return members

    def manifest_bytes(self) -> bytes:
        try:
            with self._zip.open(self._members[self.manifest_name]) as stream:
                return _read_limited(stream, self.manifest_name)
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
            raise ManifestError(
                f"{self.manifest_name}: cannot read it from {self.name} ({exc})", field="manifest"
            ) from None

    def locate(self, raw: str) -> Located:
        parts = relative_parts(raw)
        key = str(self._base.joinpath(*parts)) if str(self._base) != "." else "/".join(parts)
        info = self._members.get(key) or self._members.get(unicodedata.normalize("NFC", key))
        if info is None:
            raise MissingFile(f"{'/'.join(parts)} is not in {self.name}", field="files")
        if info.flag_bits & 0x1:
            raise UnreadableFile(f"{'/'.join(parts)} is encrypted in {self.name}", field="files")
        return Located(path=key, name=parts[-1], size=info.file_size, created=None, opener=lambda: self._zip.open(info))

    def close(self) -> None:
        self._zip.close()
