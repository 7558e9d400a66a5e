"""The DICOM listener's spool: what an association was answered "Success" for, kept (encrypted) until captured.

Layout under `<data dir>/dicom-spool/` (folders 0700, files 0600):

    .lock                     held briefly while an association folder is made or the leftovers are listed
    <uuid>/.lock              held (flock) for as long as its association lives or its capture is retried
    <uuid>/origin.json        calling AE title, peer address and department (no patient data)
    <uuid>/000001.sealed      one instance: a header with its wrapped data key, then the Part 10 file
                              sealed like a blob (crypto.Sealer: AES-256-GCM or SM4-GCM per chunk)

An instance is written to `NNNNNN.part`, synced and renamed before the sender is answered, so a
`.sealed` file is one the sender was told "Success" for and a `.part` file one it was not. A
folder whose lock nobody holds is a leftover: its association ended without being captured (the
capture failed, or the process died) and its instances are captured again from here. Nothing is
ever written in plaintext: the data key of each instance is wrapped by the archive's key ring.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import shutil
import stat
import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from medarchive.preservation.crypto import CipherSuite, Sealer, open_sealed
from medarchive.preservation.keys import KeyRing

log = logging.getLogger(__name__)

SPOOL_DIR = "dicom-spool"
LOCK = ".lock"
ORIGIN = "origin.json"
SEALED, PART, UNREADABLE = ".sealed", ".part", ".unreadable"
MAGIC = b"MDSPOOL1"
_LENGTH = struct.Struct(">I")
MAX_HEADER = 64 * 1024
_CHUNK = 1 << 20

try:
    import fcntl
except ImportError:  # Windows: folders are told apart within this process only
    fcntl = None  # type: ignore[assignment]


class SpoolError(Exception):
    """A spooled instance cannot be read back (damaged, or its key is gone)."""


def _no_follow(flags: int) -> int:
    return flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Lock:
    """An exclusive flock on a file: other processes (a second listener on the same data directory)
    keep off. Within one process the spool's own bookkeeping does the same, also where there is no fcntl."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def take(cls, path: Path, *, wait: bool) -> _Lock | None:
        fd = os.open(path, _no_follow(os.O_RDWR | os.O_CREAT), 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return None
        return cls(fd)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = -1


@dataclass
class Spooled:
    """One spooled instance: where it is and how to open it."""

    path: Path
    keyring: KeyRing

    def reader(self) -> SpoolReader:
        return SpoolReader(self)

    def read_all(self) -> bytes:
        with contextlib.closing(self.reader()) as stream:
            return stream.read()

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _open(self) -> Iterator[bytes]:
        handle = os.fdopen(os.open(self.path, _no_follow(os.O_RDONLY)), "rb")
        try:
            header = _read_header(handle, self.path.name)
            data_key = self.keyring.unwrap(header["key_id"], base64.b64decode(header["wrapped_key"]))
            yield from open_sealed(handle, data_key)
        except SpoolError:
            raise
        except Exception as exc:
            raise SpoolError(f"spooled instance {self.path.name} cannot be read: {exc}") from None
        finally:
            handle.close()


class SpoolReader(io.RawIOBase):
    """The plaintext of a spooled instance, decrypted a chunk at a time (opened on the first read,
    closed at its end: a study of 2,000 instances does not hold 2,000 descriptors)."""

    def __init__(self, entry: Spooled) -> None:
        super().__init__()
        self._entry = entry
        self._chunks: Iterator[bytes] | None = None
        self._buffer = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        while not self._buffer and not self._done:
            if self._chunks is None:
                self._chunks = self._entry._open()
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                self._finish()
        taken = min(len(view), len(self._buffer))
        view[:taken] = self._buffer[:taken]
        self._buffer = self._buffer[taken:]
        return taken

    def _finish(self) -> None:
        self._done = True
        if self._chunks is not None:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
            self._chunks = None

    def close(self) -> None:
        self._finish()
        super().close()


def _read_header(handle: IO[bytes], name: str) -> dict[str, Any]:
    start = handle.read(len(MAGIC) + _LENGTH.size)
    if len(start) != len(MAGIC) + _LENGTH.size or not start.startswith(MAGIC):
        raise SpoolError(f"spooled instance {name} has no spool header")
    (length,) = _LENGTH.unpack(start[len(MAGIC) :])
    if length > MAX_HEADER:
        raise SpoolError(f"spooled instance {name} has a header of {length} bytes")
    try:
        header: dict[str, Any] = json.loads(handle.read(length))
    except ValueError:
        raise SpoolError(f"spooled instance {name} has a damaged header") from None
    return header


class AssociationSpool:
    """The folder of one association (or of a leftover being captured again); its lock is held."""

    def __init__(
        self, folder: Path, lock: _Lock, keyring: KeyRing, origin: dict[str, str], on_release: Callable[[], None]
    ) -> None:
        self.folder = folder
        self.origin = origin
        self._lock = lock
        self._keyring = keyring
        self._on_release = on_release
        self._next = 1 + max((_number(p.name) for p in folder.iterdir()), default=0)

    @property
    def name(self) -> str:
        return self.folder.name

    def add(self, parts: Iterable[bytes | memoryview]) -> Spooled:
        """Seal `parts` (the Part 10 file, in pieces) into a new instance file, synced to disk."""
        number, self._next = self._next, self._next + 1
        suite = CipherSuite(settings.CONFIG.cipher)
        data_key = os.urandom(suite.key_size)
        key_id, wrapped = self._keyring.wrap(data_key)
        header = json.dumps({"key_id": key_id, "wrapped_key": base64.b64encode(wrapped).decode("ascii")}).encode()
        part = self.folder / f"{number:06d}{PART}"
        fd = os.open(part, _no_follow(os.O_WRONLY | os.O_CREAT | os.O_EXCL), 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(MAGIC + _LENGTH.pack(len(header)) + header)
                sealer = Sealer(data_key, suite)
                for piece in parts:
                    view = memoryview(piece)
                    for start in range(0, len(view), _CHUNK):
                        out.write(sealer.update(view[start : start + _CHUNK]))
                out.write(sealer.finalize())
                out.flush()
                os.fsync(out.fileno())
            final = part.with_suffix(SEALED)
            os.rename(part, final)
            _fsync_dir(self.folder)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return Spooled(final, self._keyring)

    def instances(self) -> list[Spooled]:
        """The instances the sender was answered Success for, in the order they came."""
        found = sorted(p for p in self.folder.iterdir() if p.name.endswith(SEALED))
        return [Spooled(p, self._keyring) for p in found]

    def clear_unconfirmed(self) -> None:
        """Half-written instances of a process that died: never answered Success, so not kept."""
        for path in self.folder.iterdir():
            if path.name.endswith(PART):
                path.unlink(missing_ok=True)

    def set_aside(self, entry: Spooled) -> Path:
        """Keep an instance that cannot be read back out of the way, for a person to look at."""
        target = entry.path.with_suffix(UNREADABLE)
        os.rename(entry.path, target)
        return target

    def remove(self) -> None:
        """Captured: the folder goes, then its lock."""
        unreadable = [p for p in self.folder.iterdir() if p.name.endswith(UNREADABLE)]
        if unreadable:  # kept for a person; the rest goes
            for path in self.folder.iterdir():
                if not path.name.endswith(UNREADABLE) and path.name not in {LOCK, ORIGIN}:
                    path.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.release()

    def release(self) -> None:
        """Leave the folder as it is (a leftover, captured again later) and let go of it."""
        if self._lock.fd >= 0:
            self._lock.release()
            self._on_release()


def _number(name: str) -> int:
    stem = name.split(".", 1)[0]
    return int(stem) if stem.isdigit() else 0


class Spool:
    def __init__(self, root: Path, keyring: KeyRing | None = None) -> None:
        self.root = root
        self._keyring = keyring
        self._held: set[str] = set()  # folders this process holds (live associations, captures running)
        self._guard = threading.Lock()

    @classmethod
    def default(cls) -> Spool:
        return cls(Path(settings.CONFIG.data_dir) / SPOOL_DIR)

    @property
    def keyring(self) -> KeyRing:
        if self._keyring is None:
            from medarchive.preservation.services import blob_store  # noqa: PLC0415 - needs a configured archive

            self._keyring = blob_store().keyring
        return self._keyring

    def _ensure(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not stat.S_ISDIR(self.root.lstat().st_mode):
            raise OSError(f"{self.root} is not a folder")

    @contextlib.contextmanager
    def _structure(self) -> Iterator[None]:
        self._ensure()
        lock = _Lock.take(self.root / LOCK, wait=True)
        assert lock is not None
        try:
            yield
        finally:
            lock.release()

    def begin(self, origin: dict[str, str]) -> AssociationSpool:
        """A new folder for an association, locked until it is captured or left over."""
        with self._structure():
            folder = self.root / uuid.uuid4().hex
            folder.mkdir(mode=0o700)
            with self._guard:
                self._held.add(folder.name)
            lock = _Lock.take(folder / LOCK, wait=False)
            assert lock is not None  # nobody else knows the folder yet
            try:
                text = json.dumps(origin).encode()
                fd = os.open(folder / ORIGIN, _no_follow(os.O_WRONLY | os.O_CREAT | os.O_EXCL), 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(text)
                    out.flush()
                    os.fsync(out.fileno())
                _fsync_dir(folder)
            except BaseException:
                lock.release()
                shutil.rmtree(folder, ignore_errors=True)
                self._let_go(folder.name)
                raise
        return AssociationSpool(folder, lock, self.keyring, origin, lambda: self._let_go(folder.name))

    def _let_go(self, name: str) -> None:
        with self._guard:
            self._held.discard(name)

    def leftovers(self) -> Iterator[AssociationSpool]:
        """Folders nobody holds: associations that ended (or died) without being captured. Each is
        yielded locked; the caller removes it once captured or releases it to try again later."""
        if not self.root.is_dir():
            return
        with self._structure():
            names = sorted(e.name for e in os.scandir(self.root) if e.is_dir(follow_symlinks=False))
        for name in names:
            taken = self._take(self.root / name)
            if taken is not None:
                yield taken

    def _take(self, folder: Path) -> AssociationSpool | None:
        with self._guard:
            if folder.name in self._held:
                return None  # a live association of ours, or a capture of it running now
            self._held.add(folder.name)
        try:
            lock = _Lock.take(folder / LOCK, wait=False)
        except OSError:  # removed meanwhile, or a link planted there
            lock = None
        if lock is None:  # or another listener's live association or capture
            self._let_go(folder.name)
            return None
        try:
            with os.fdopen(os.open(folder / ORIGIN, _no_follow(os.O_RDONLY)), "rb") as handle:
                origin = json.loads(handle.read(MAX_HEADER))
        except (OSError, ValueError):
            origin = None
        if not isinstance(origin, dict):  # made but never used: nothing was answered Success
            shutil.rmtree(folder, ignore_errors=True)
            lock.release()
            self._let_go(folder.name)
            return None
        clean = {str(k): str(v) for k, v in origin.items()}
        return AssociationSpool(folder, lock, self.keyring, clean, lambda: self._let_go(folder.name))
