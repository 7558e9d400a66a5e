"""Local filesystem adapter: objects at ``root/ab/cd/<address>``.

Durability policy: staged data goes to ``root/.staging/`` (mode 0600 files);
commit flushes and fsyncs the file, hard-links it into place (atomic
create-if-absent, so a concurrent writer of the same address can never be
overwritten) and fsyncs every directory it created or changed. On filesystems
without hard links it falls back to check-then-`os.replace`, which is not safe
against two concurrent writers of the same address. Empty ``ab/cd`` directories
are never removed (that would race with commits). A staged write dropped
without commit or abort removes its file when garbage-collected; what a killed
process leaves is for `cleanup_staging`.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from medarchive.core import private
from medarchive.preservation.storage.base import (
    ADDRESS_PATTERN,
    DEFAULT_STAGING_MAX_AGE,
    BaseStagedWrite,
    StorageBase,
    blob_not_found,
    check_address,
)

STAGING_DIR = ".staging"
_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}
_HEX2 = frozenset(f"{i:02x}" for i in range(256))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage(StorageBase):
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        private.make_dir(self.root)
        self.staging = self.root / STAGING_DIR
        self.staging.mkdir(exist_ok=True, mode=0o700)

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self.root)!r})"

    def path_for(self, address: str) -> Path:
        check_address(address)
        return self.root / address[:2] / address[2:4] / address

    def stage(self) -> _LocalStagedWrite:
        return _LocalStagedWrite(self)

    def open(self, address: str) -> BinaryIO:
        try:
            return self.path_for(address).open("rb")
        except FileNotFoundError:
            raise blob_not_found(address) from None

    def exists(self, address: str) -> bool:
        return self.path_for(address).is_file()

    def delete(self, address: str) -> None:
        path = self.path_for(address)
        try:
            path.unlink()
        except FileNotFoundError:
            raise blob_not_found(address) from None
        _fsync_dir(path.parent)

    def stored_size(self, address: str) -> int:
        try:
            return self.path_for(address).stat().st_size
        except FileNotFoundError:
            raise blob_not_found(address) from None

    def addresses(self) -> Iterator[str]:
        """All stored addresses, in sorted order."""
        for first in self._subdirs(self.root):
            for second in self._subdirs(first):
                names = sorted(entry.name for entry in os.scandir(second) if entry.is_file())
                for name in names:
                    in_place = name[:2] == first.name and name[2:4] == second.name
                    if in_place and ADDRESS_PATTERN.fullmatch(name):
                        yield name

    def cleanup_staging(self, *, older_than: float = DEFAULT_STAGING_MAX_AGE) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for entry in os.scandir(self.staging):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime <= cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue  # its writer finished or aborted meanwhile
        return removed

    def _subdirs(self, parent: Path) -> list[Path]:
        try:
            entries = list(os.scandir(parent))
        except FileNotFoundError:
            return []
        return sorted(Path(e.path) for e in entries if e.name in _HEX2 and e.is_dir(follow_symlinks=False))

    def _ensure_parents(self, target: Path) -> None:
        for directory in (target.parent.parent, target.parent):
            if not directory.is_dir():
                directory.mkdir(mode=0o700, exist_ok=True)
                _fsync_dir(directory.parent)


class _LocalStagedWrite(BaseStagedWrite):
    def __init__(self, storage: LocalStorage) -> None:
        super().__init__()
        self._storage = storage
        fd, name = tempfile.mkstemp(dir=storage.staging, prefix="stage-", suffix=".part")
        self._path = Path(name)
        self._file = os.fdopen(fd, "wb")
        # A staged write dropped without commit/abort must not leak its fd or file.
        self._finalizer = weakref.finalize(self, _discard_file, self._file, self._path)

    def _write(self, data: bytes) -> None:
        self._file.write(data)

    def _commit(self, address: str) -> bool:
        self._finalizer.detach()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        target = self._storage.path_for(address)
        self._storage._ensure_parents(target)
        try:
            os.link(self._path, target)
            created = True
        except FileExistsError:
            created = False
        except OSError as error:
            if error.errno not in _NO_HARDLINKS:
                raise
            created = not target.exists()
            if created:
                os.replace(self._path, target)
        if created:
            _fsync_dir(target.parent)
        self._path.unlink(missing_ok=True)
        return created

    def _abort(self) -> None:
        self._finalizer.detach()
        _discard_file(self._file, self._path)


def _discard_file(handle: BinaryIO, path: Path) -> None:
    handle.close()
    path.unlink(missing_ok=True)
