"""Encrypted, content-addressed blob store: the facade over storage and keys.

Security policy:

* Every staged blob gets a fresh random data key (32 bytes for AES-256-GCM,
  16 for SM4-GCM), sealed with the chunked STREAM format of `crypto` and
  wrapped by the key ring's active master key. The caller records `key_id`,
  `wrapped_key` and the digests; this store keeps no metadata of its own.
* Plaintext exists only in memory, one chunk at a time; only ciphertext is
  handed to storage (so it is all that can reach disk or S3).
* Address = hex HMAC-SHA256(address key, SHA-256 of the plaintext): equal
  content gets an equal address (dedup), but object names do not reveal
  content hashes to whoever can list the storage.
* Dedup: two stagings of the same content produce different ciphertexts
  under different data keys. `StagedBlob.commit()` returns False when the
  address already existed; the staged copy is then discarded and *its*
  `key_id`/`wrapped_key` do not open the stored object: use the ones recorded
  for the existing blob (or, for an unrecorded orphan, delete it and stage
  again).
* Key rotation re-wraps data keys (`rewrap`); content is never re-encrypted.
* Not done: compression (it would leak through ciphertext length), hiding
  blob sizes, wiping keys from memory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Self

from django.utils import translation
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import (
    ConfigurationError,
    EmptyFile,
    IntegrityFailure,
    NotFound,
    PayloadTooLarge,
)
from medarchive.core.labels import with_labels
from medarchive.preservation.crypto import DEFAULT_CHUNK_SIZE, CipherSuite, Sealer, new_sm3, open_sealed
from medarchive.preservation.keys import KeyRing
from medarchive.preservation.storage.base import BlobStorage, StagedWrite

if TYPE_CHECKING:
    from medarchive.preservation.intents import Intent


@dataclass(frozen=True)
class FixityResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    # None when the blob could not be read to the end.
    sha256: str | None = None
    sm3: str | None = None
    size: int | None = None


@dataclass(eq=False)
class StagedBlob:
    """A sealed blob written to staging, not yet visible under its address."""

    address: str
    size: int
    sha256: str
    sm3: str
    suite: CipherSuite
    key_id: str
    wrapped_key: bytes = field(repr=False)
    stored_size: int
    _write: StagedWrite = field(repr=False)
    created: bool | None = None  # set by commit()
    intent: Intent | None = field(default=None, repr=False)  # set by preservation.publish()

    def commit(self) -> bool:
        """Publish the blob; False if the address already held a blob (see module doc)."""
        self.created = self._write.commit(self.address)
        return self.created

    def discard(self) -> None:
        """Drop the staged ciphertext. Idempotent; a no-op after commit."""
        self._write.abort()

    def reopen(self) -> BinaryIO:
        """The staged ciphertext, read back before commit (see `BlobStore.open_staged`)."""
        return self._write.reopen()

    def declare_intent(self, name: str) -> Path:
        return self._write.declare_intent(name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()


class BlobStore:
    def __init__(
        self,
        storage: BlobStorage,
        keyring: KeyRing,
        suite: CipherSuite = CipherSuite.AES_256_GCM,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.storage = storage
        self.keyring = keyring
        self.suite = CipherSuite(suite)
        self.chunk_size = chunk_size

    def address_for(self, sha256_digest: bytes) -> str:
        return hmac.new(self.keyring.address_key, sha256_digest, hashlib.sha256).hexdigest()

    def exists(self, address: str) -> bool:
        return self.storage.exists(address)

    def writer(self, *, max_bytes: int | None = None) -> BlobWriter:
        """A push-style writer: feed plaintext as it arrives (an upload), then `finish()`."""
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        return BlobWriter(self, max_bytes)

    def stage(self, source: BinaryIO, *, max_bytes: int | None = None) -> StagedBlob:
        """Read, hash and seal `source` into staging in one pass.

        `EmptyFile` for no bytes; `PayloadTooLarge` as soon as more than
        `max_bytes` arrive (reading stops there). Either way, and on any other
        error, the staged data is removed.
        """
        writer = self.writer(max_bytes=max_bytes)
        try:
            while True:
                wanted = self.chunk_size
                if max_bytes is not None:
                    # One byte past the limit is enough to know it is exceeded.
                    wanted = min(wanted, max_bytes - writer.size + 1)
                piece = source.read(wanted)
                if not piece:
                    break
                writer.write(piece)
            return writer.finish()
        except BaseException:
            writer.abort()
            raise

    def open(self, address: str, *, key_id: str, wrapped_key: bytes) -> Iterator[bytes]:
        """Verified plaintext chunks. Key and existence errors raise here, at
        the call; a damaged blob raises `IntegrityFailure` while iterating,
        after the chunks before the damage were yielded."""
        data_key = self.keyring.unwrap(key_id, wrapped_key)
        stream = self.storage.open(address)
        return self._decrypt(address, stream, data_key)

    def open_staged(self, staged: StagedBlob) -> Iterator[bytes]:
        """Verified plaintext of a blob staged and not yet published: the door reads a file's text
        before the record's transaction, without waiting for the object to be in place."""
        data_key = self.keyring.unwrap(staged.key_id, staged.wrapped_key)
        return self._decrypt(staged.address, staged.reopen(), data_key)

    @staticmethod
    def _decrypt(address: str, stream: BinaryIO, data_key: bytes) -> Iterator[bytes]:
        with stream:
            try:
                yield from open_sealed(stream, data_key)
            except IntegrityFailure as error:
                failed = error  # `error` is unbound after the except block; the message is read later
                raise IntegrityFailure(
                    with_labels(_("Blob %(address)s: %(problem)s"), problem=lazy(lambda: failed.message, str)()),
                    code=error.code,
                    address=address,
                    **error.details,
                ) from None

    def verify(
        self,
        address: str,
        *,
        key_id: str,
        wrapped_key: bytes,
        expected_sha256: str,
        expected_sm3: str,
        expected_size: int,
    ) -> FixityResult:
        """Decrypt and re-hash the whole blob against the recorded fixity values.

        Missing, damaged or undecryptable blobs give ok=False with the problem;
        storage outages (anything but a missing object) still raise, since
        they say nothing about the blob.
        """
        sha256 = hashlib.sha256()
        sm3 = new_sm3()
        size = 0
        try:
            for chunk in self.open(address, key_id=key_id, wrapped_key=wrapped_key):
                sha256.update(chunk)
                sm3.update(chunk)
                size += len(chunk)
        except NotFound:
            return FixityResult(ok=False, problems=[f"blob {address} is missing from storage"])
        except (IntegrityFailure, ConfigurationError) as error:
            # Fixity problems become PREMIS event details, kept for good: one language, like the rest.
            with translation.override("en"):
                return FixityResult(ok=False, problems=[error.message])
        found_sha256, found_sm3 = sha256.hexdigest(), sm3.hexdigest()
        problems = []
        if size != expected_size:
            problems.append(f"size mismatch: expected {expected_size} bytes, found {size}")
        if found_sha256 != expected_sha256.lower():
            problems.append(f"sha256 mismatch: expected {expected_sha256}, found {found_sha256}")
        if found_sm3 != expected_sm3.lower():
            problems.append(f"sm3 mismatch: expected {expected_sm3}, found {found_sm3}")
        return FixityResult(ok=not problems, problems=problems, sha256=found_sha256, sm3=found_sm3, size=size)

    def rewrap(self, key_id: str, wrapped_key: bytes) -> tuple[str, bytes]:
        """Re-wrap a data key under the active master key (content untouched)."""
        return self.keyring.wrap(self.keyring.unwrap(key_id, wrapped_key))


class BlobWriter:
    """Seals plaintext pushed into it; hashing happens in the same pass (hash once)."""

    def __init__(self, store: BlobStore, max_bytes: int | None) -> None:
        data_key = os.urandom(store.suite.key_size)
        self._store = store
        self._max_bytes = max_bytes
        self._key_id, self._wrapped_key = store.keyring.wrap(data_key)
        self._sealer = Sealer(data_key, store.suite, chunk_size=store.chunk_size)
        del data_key
        self._write = store.storage.stage()

    @property
    def size(self) -> int:
        return self._sealer.size

    def write(self, piece: bytes) -> None:
        """Seal `piece`; `PayloadTooLarge` (and the staged data removed) once the limit is passed."""
        if self._max_bytes is not None and self._sealer.size + len(piece) > self._max_bytes:
            self.abort()
            raise PayloadTooLarge(
                _("The file is larger than the limit of %(max_bytes)s bytes."),
                code="payload_too_large",
                field="file",
                max_bytes=self._max_bytes,
            )
        sealed = self._sealer.update(piece)
        if sealed:
            self._write.write(sealed)

    def finish(self) -> StagedBlob:
        try:
            if self._sealer.size == 0:
                raise EmptyFile(_("The file is empty."), code="empty_file", field="file")
            self._write.write(self._sealer.finalize())
            self._write.sync()  # durable before the record's transaction takes the write lock
        except BaseException:
            self.abort()
            raise
        return StagedBlob(
            address=self._store.address_for(self._sealer.sha256_digest),
            size=self._sealer.size,
            sha256=self._sealer.sha256_hex,
            sm3=self._sealer.sm3_hex,
            suite=self._store.suite,
            key_id=self._key_id,
            wrapped_key=self._wrapped_key,
            stored_size=self._write.bytes_written,
            _write=self._write,
        )

    def abort(self) -> None:
        self._write.abort()
