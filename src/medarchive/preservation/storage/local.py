"""Local filesystem adapter: objects at ``root/ab/<address>`` (``root/ab/cd/<address>`` in stores made
before issue #9, which keep that layout; the ``LAYOUT`` file says which).

One level of 256 directories, git's and restic's fan-out: a new directory is made 256 times in a store's
life, where two levels made (and synced) one for most of a young store's first ~50,000 objects — on the
measured ext4 a mkdir costs ~0.55 ms and the parent's fsync more, twice the SQLite commit. At 20 million
objects a directory holds ~80,000 entries, which ext4's and XFS's hashed directories look up directly.

Durability policy: staged data goes to ``root/.staging/`` (mode 0600 files);
`sync` (or else commit) flushes and fsyncs the file; commit hard-links it into place (atomic
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

from django.utils.translation import gettext_lazy as _

from medarchive.core import private
from medarchive.core.errors import ConfigurationError
from medarchive.preservation import intents
from medarchive.preservation.storage.base import (
    ADDRESS_PATTERN,
    DEFAULT_STAGING_MAX_AGE,
    BaseStagedWrite,
    StorageBase,
    blob_not_found,
    check_address,
)

STAGING_DIR = ".staging"
LAYOUT_FILE = "LAYOUT"
_LAYOUT_TEXT = "medarchive blob store\nlevels: {levels}\n"
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
        self.intent_dir = self.staging  # a staged file renamed to its intent's name is the intent
        self.levels = self._layout()

    def _layout(self) -> int:
        """Directory levels below the root: read from LAYOUT, or chosen once for a store without it
        (2 if it already holds objects the old way, else 1) and recorded."""
        marker = self.root / LAYOUT_FILE
        try:
            text = marker.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            old = any(self._subdirs(first) for first in self._subdirs(self.root))
            levels = 2 if old else 1
            fd, name = tempfile.mkstemp(dir=self.staging, prefix="layout-", suffix=".part")
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(_LAYOUT_TEXT.format(levels=levels))
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(name, marker)  # create-if-absent: a concurrent first start wins or agrees
            except FileExistsError:
                pass
            finally:
                os.unlink(name)
            _fsync_dir(self.root)
            text = marker.read_text(encoding="ascii")
        for line in text.splitlines():
            if line.startswith("levels:") and line.split(":", 1)[1].strip() in {"1", "2"}:
                return int(line.split(":", 1)[1])
        raise ConfigurationError(
            _(
                "The blob store's layout file %(path)s is damaged: restore it from a backup "
                "(it records how the stored objects are laid out)."
            ),
            code="bad_store_layout",
            path=str(marker),
        )

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self.root)!r})"

    def path_for(self, address: str) -> Path:
        check_address(address)
        if self.levels == 1:
            return self.root / address[:2] / address
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
            for leaf in self._subdirs(first) if self.levels == 2 else [first]:
                names = sorted(entry.name for entry in os.scandir(leaf) if entry.is_file())
                for name in names:
                    if ADDRESS_PATTERN.fullmatch(name) and self.path_for(name).parent == leaf:
                        yield name

    def cleanup_staging(self, *, older_than: float = DEFAULT_STAGING_MAX_AGE) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for entry in os.scandir(self.staging):
            if intents.is_intent(entry.name):
                continue  # `recover()` decides about intents: their owner may still commit
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
        chain = (target.parent,) if self.levels == 1 else (target.parent.parent, target.parent)
        for directory in chain:
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
        self._synced = self._keep = False
        # A staged write dropped without commit/abort must not leak its fd or file.
        self._finalizer = weakref.finalize(self, _discard_file, self._file, self._path)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._synced = False

    def sync(self) -> None:
        super().sync()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._synced = True

    def _reopen(self) -> BinaryIO:
        self._file.flush()
        return self._path.open("rb")

    def _declare_intent(self, name: str) -> Path:
        intent = self._storage.staging / name
        os.rename(self._path, intent)
        self._path, self._keep = intent, True
        return intent

    def _commit(self, address: str) -> bool:
        self._finalizer.detach()
        if not self._synced:
            self.sync()
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
        if not self._keep:  # an intent stays until its owner removes it
            self._path.unlink(missing_ok=True)
        return created

    def _abort(self) -> None:
        self._finalizer.detach()
        _discard_file(self._file, self._path)


def _discard_file(handle: BinaryIO, path: Path) -> None:
    handle.close()
    path.unlink(missing_ok=True)
