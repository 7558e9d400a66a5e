"""The storage port: where sealed (ciphertext) blobs live, by content address.

Policy: adapters only ever see ciphertext and addresses, never plaintext or
keys. Objects are immutable: `StagedWrite.commit` is create-if-absent and
never overwrites an object that exists (its ciphertext is under a different
data key, recorded elsewhere), and there is no update operation.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import NotFound, ValidationError

ADDRESS_PATTERN = re.compile(r"[0-9a-f]{64}")
# Staged data younger than this may belong to a write still in progress.
DEFAULT_STAGING_MAX_AGE = 3600.0


def check_address(address: str) -> str:
    """Reject anything but 64 lowercase hex characters (also blocks path tricks)."""
    if not isinstance(address, str) or not ADDRESS_PATTERN.fullmatch(address):
        shown = repr(address)[:80]
        raise ValidationError(
            _("The blob address %(address)s is not valid: an address is 64 lowercase hex characters."),
            code="bad_address",
            field="address",
            address=shown,
        )
    return address


def blob_not_found(address: str) -> NotFound:
    return NotFound(_("The blob %(address)s is not in the store."), code="blob_not_found", address=address)


class StagedWrite(Protocol):
    """Ciphertext being written; invisible to readers until `commit`."""

    @property
    def bytes_written(self) -> int: ...

    def write(self, data: bytes) -> int: ...

    def commit(self, address: str) -> bool:
        """Publish under `address`; False if an object already existed there
        (the staged data is then discarded and the existing object kept)."""
        ...

    def abort(self) -> None: ...

    def sync(self) -> None:
        """Make the staged data durable now (before `commit`, outside any lock the caller holds)."""
        ...

    def reopen(self) -> BinaryIO:
        """Read back what was staged, before `commit` (the caller closes it)."""
        ...

    def declare_intent(self, name: str) -> Path:
        """Leave evidence named `name` in the storage's `intent_dir` until the caller removes the
        returned path, so that a crash after `commit` and before the caller's transaction commits
        can be found (intents.py)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BlobStorage(Protocol):
    intent_dir: Path  # where `declare_intent` leaves its evidence, on this host

    def stage(self) -> StagedWrite: ...

    def open(self, address: str) -> BinaryIO:
        """Stream the stored bytes; `NotFound` if absent. Caller closes."""
        ...

    def exists(self, address: str) -> bool: ...

    def delete(self, address: str) -> None:
        """Remove the object; `NotFound` if absent."""
        ...

    def delete_if_exists(self, address: str) -> bool:
        """Remove the object if present; True if something was removed."""
        ...

    def addresses(self) -> Iterator[str]: ...

    def stored_size(self, address: str) -> int:
        """Size in bytes of the stored object; `NotFound` if absent."""
        ...

    def cleanup_staging(self, *, older_than: float = DEFAULT_STAGING_MAX_AGE) -> int:
        """Remove staged data left by crashed writers, older than `older_than`
        seconds; return how many leftovers were removed."""
        ...


class StorageBase:
    """What every adapter derives from its own `delete`."""

    def delete(self, address: str) -> None:
        raise NotImplementedError

    def delete_if_exists(self, address: str) -> bool:
        """Remove the object if present; True if something was removed."""
        try:
            self.delete(address)
        except NotFound:
            return False
        return True


class BaseStagedWrite(ABC):
    """Open -> committed | aborted state machine shared by the adapters.

    Leaving the `with` block without a commit (exception or not) aborts. A
    failed commit aborts too: the staged data is gone and must be re-staged.
    """

    def __init__(self) -> None:
        self._state = "open"
        self._written = 0

    @property
    def bytes_written(self) -> int:
        return self._written

    def write(self, data: bytes) -> int:
        self._require_open("write to")
        self._write(data)
        self._written += len(data)
        return len(data)

    def commit(self, address: str) -> bool:
        check_address(address)
        self._require_open("commit")
        try:
            created = self._commit(address)
        except BaseException:
            self._state = "aborted"
            self._abort()
            raise
        self._state = "committed"
        return created

    def abort(self) -> None:
        """Discard staged data. Idempotent; a no-op after a commit."""
        if self._state == "open":
            self._state = "aborted"
            self._abort()

    def sync(self) -> None:
        """Make the staged data durable now; adapters whose commit is itself durable need nothing."""
        self._require_open("sync")

    def reopen(self) -> BinaryIO:
        self._require_open("read back")
        return self._reopen()

    def declare_intent(self, name: str) -> Path:
        self._require_open("declare an intent for")
        return self._declare_intent(name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _require_open(self, action: str) -> None:
        if self._state != "open":
            raise RuntimeError(f"cannot {action} a staged write that is already {self._state}")

    @abstractmethod
    def _write(self, data: bytes) -> None: ...

    @abstractmethod
    def _commit(self, address: str) -> bool: ...

    @abstractmethod
    def _abort(self) -> None: ...

    @abstractmethod
    def _reopen(self) -> BinaryIO: ...

    @abstractmethod
    def _declare_intent(self, name: str) -> Path: ...
