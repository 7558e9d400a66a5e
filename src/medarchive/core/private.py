"""Files only the service can read: owner-only modes for everything in the data directory. Pure, no Django.

Everything medarchive writes is patient data or a secret: the database (and SQLite's -wal/-shm),
staged and stored blobs, the key file, the secret key, resumable upload pieces, the DICOM spool,
mail. So each medarchive process sets its umask to 0077 before it creates anything (`restrict`,
called by the settings): whatever umask it was started with, a new folder is 0700 and a new file
0600 — including the files SQLite and Django create themselves. `repair` brings an archive made
before (or touched by hand) back to that; `medarchive init` runs it and says what it changed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def restrict() -> int:
    """Make every file and folder this process creates owner-only; returns the umask it had."""
    return os.umask(UMASK)


def make_dir(path: Path) -> Path:
    """`path` and any missing parents up to it, each created 0700."""
    missing = []
    for parent in (path, *path.parents):
        if parent.exists():
            break
        missing.append(parent)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask, never widened
    return path


@dataclass(frozen=True)
class Repair:
    path: Path
    before: int
    after: int

    def as_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "before": f"{self.before:04o}", "after": f"{self.after:04o}"}


def _entries(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """`root` and everything under it, links not followed (a link's target is not ours to change)."""
    try:
        yield root, root.lstat()
    except FileNotFoundError:
        return
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):
            path = Path(folder) / name
            try:
                yield path, path.lstat()
            except FileNotFoundError:
                continue  # removed meanwhile (a finished staged write)


def repair(roots: Iterable[Path]) -> list[Repair]:
    """Every folder and file under `roots` that group or others may use becomes 0700 (folders) or
    0600 (files); one that is already owner-only is left as it is. Returns what was changed
    (nothing, on an archive that is already right)."""
    repaired: list[Repair] = []
    seen: set[Path] = set()
    for root in roots:
        for path, info in _entries(Path(root)):
            if path in seen or stat.S_ISLNK(info.st_mode):
                continue
            seen.add(path)
            before = stat.S_IMODE(info.st_mode)
            if not before & 0o077 or not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                continue
            after = DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
            os.chmod(path, after)
            repaired.append(Repair(path, before, after))
    return repaired
