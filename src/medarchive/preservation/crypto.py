"""Chunked streaming AEAD ("STREAM" construction) for archived blobs.

Security policy:

* One fresh random data key per blob (the caller's job: see `BlobStore`); this
  module never stores, logs or derives keys.
* Format: header = magic ``MDAB`` | version (1 byte) | suite (1 byte) |
  chunk size (u32 BE) | nonce prefix (7 random bytes). Chunk *i* is encrypted
  with nonce = prefix | i (u32 BE) | last-flag (1 byte, 1 only on the final
  chunk) and AAD = the header, and is stored as ciphertext | 16-byte tag.
  There is always exactly one final chunk (empty only for empty plaintext), so
  truncation, dropped, reordered or appended chunks and header edits all fail
  authentication.
* Decryption releases a chunk's plaintext only after that chunk's tag
  verifies. A consumer can still see a verified prefix before a later chunk
  fails: whoever needs all-or-nothing must buffer or verify first.
* Not done: key commitment (GCM is not key-committing; we rely on one key per
  blob), padding to hide the plaintext length, wiping keys from memory.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import BinaryIO, Protocol, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import IntegrityFailure

MAGIC = b"MDAB"
FORMAT_VERSION = 1
TAG_SIZE = 16
NONCE_PREFIX_SIZE = 7
DEFAULT_CHUNK_SIZE = 1 << 20
# Bounds what a (not yet authenticated) header can make a reader allocate.
MAX_CHUNK_SIZE = 64 << 20
MAX_CHUNKS = 1 << 32

_HEADER = struct.Struct(">4sBBI7s")
HEADER_SIZE = _HEADER.size
_CHUNK_SUFFIX = struct.Struct(">IB")


class CipherSuite(StrEnum):
    """Data-encryption suites. The value is what callers persist."""

    AES_256_GCM = "aes-256-gcm"
    SM4_GCM = "sm4-gcm"

    @property
    def key_size(self) -> int:
        return 32 if self is CipherSuite.AES_256_GCM else 16

    @property
    def wire_id(self) -> int:
        """Byte identifying the suite in blob headers and wrapped keys."""
        return _SUITE_IDS[self]

    @classmethod
    def from_wire_id(cls, value: int) -> CipherSuite:
        for suite, wire_id in _SUITE_IDS.items():
            if wire_id == value:
                return suite
        raise IntegrityFailure(_("Unknown cipher suite id %(suite_id)s."), code="unknown_cipher_suite", suite_id=value)


_SUITE_IDS = {CipherSuite.AES_256_GCM: 1, CipherSuite.SM4_GCM: 2}


def aead_encrypt(suite: CipherSuite, key: bytes, nonce: bytes, data: bytes | bytearray, aad: bytes) -> bytes:
    """Return ciphertext | tag. AESGCM one-shot is ~10x faster than `Cipher` for AES."""
    if suite is CipherSuite.AES_256_GCM:
        return AESGCM(key).encrypt(nonce, data, aad)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    body = encryptor.update(data) + encryptor.finalize()
    return body + encryptor.tag


def aead_decrypt(suite: CipherSuite, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of `aead_encrypt`; raises `cryptography.exceptions.InvalidTag`."""
    if suite is CipherSuite.AES_256_GCM:
        return AESGCM(key).decrypt(nonce, sealed, aad)
    if len(sealed) < TAG_SIZE:
        raise InvalidTag()
    body, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    # update() output is unauthenticated until finalize() passes.
    return decryptor.update(body) + decryptor.finalize()


def sealed_size(plaintext_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Exact ciphertext size for a plaintext of `plaintext_size` bytes."""
    chunks = max(1, -(-plaintext_size // chunk_size))
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


class _Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


class _CryptographySM3:
    """hashlib-like adapter for OpenSSL builds whose hashlib lacks SM3."""

    def __init__(self) -> None:
        self._hash = hashes.Hash(hashes.SM3())
        self._digest: bytes | None = None

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        if self._digest is None:
            self._digest = self._hash.finalize()
        return self._digest.hex()


def new_sm3() -> _Hasher:
    try:
        return hashlib.new("sm3")
    except ValueError:
        return _CryptographySM3()


def _check_key(suite: CipherSuite, key: bytes) -> None:
    if len(key) != suite.key_size:
        raise IntegrityFailure(
            _("The data key is %(size)s bytes but %(suite)s needs %(needed)s."),
            code="wrong_key_size",
            suite=str(suite),
            size=len(key),
            needed=suite.key_size,
        )


class Sealer:
    """Encrypts a stream and hashes (SHA-256, SM3) and counts its plaintext in one pass.

    `update` returns ciphertext ready to write (possibly empty: up to one
    chunk of plaintext is held back, because a chunk can only be sealed once
    it is known whether more follows). `finalize` returns the rest.
    """

    def __init__(
        self,
        data_key: bytes,
        suite: CipherSuite = CipherSuite.AES_256_GCM,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        suite = CipherSuite(suite)
        if len(data_key) != suite.key_size:
            raise ValueError(f"data key is {len(data_key)} bytes but {suite} needs {suite.key_size}")
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}, got {chunk_size}")
        self.suite = suite
        self.chunk_size = chunk_size
        self._key = data_key
        self._nonce_prefix = os.urandom(NONCE_PREFIX_SIZE)
        self._header = _HEADER.pack(MAGIC, FORMAT_VERSION, suite.wire_id, chunk_size, self._nonce_prefix)
        self._header_pending = True
        self._pending: bytes | bytearray = b""  # plaintext not sealed yet, at most one chunk
        self._counter = 0
        self._size = 0
        self._sha256 = hashlib.sha256()
        self._sm3 = new_sm3()
        self._finalized = False

    def update(self, plaintext: bytes | bytearray | memoryview) -> bytes:
        if self._finalized:
            raise RuntimeError("Sealer.update() called after finalize()")
        self._sha256.update(plaintext)
        self._sm3.update(plaintext)
        self._size += len(plaintext)
        out: list[bytes] = []
        view = memoryview(plaintext)
        while view:
            # A full pending chunk is sealed only once more data shows it is not the last.
            if len(self._pending) == self.chunk_size:
                out.append(self._seal(self._pending, last=False))
                self._pending = b""
            take = self.chunk_size - len(self._pending)
            if not self._pending and len(view) == len(plaintext) <= take and isinstance(plaintext, bytes):
                self._pending = plaintext  # all of it, and immutable: hold it without copying
            else:
                if not isinstance(self._pending, bytearray):
                    self._pending = bytearray(self._pending)  # appends stay amortized O(1)
                self._pending += view[:take]
            view = view[take:]
        return self._emit(out)

    def finalize(self) -> bytes:
        if self._finalized:
            raise RuntimeError("Sealer.finalize() called twice")
        self._finalized = True
        last = self._seal(self._pending, last=True)
        self._pending = b""
        return self._emit([last])

    @property
    def size(self) -> int:
        """Plaintext bytes consumed so far."""
        return self._size

    @property
    def sha256_digest(self) -> bytes:
        self._require_finalized()
        return self._sha256.digest()

    @property
    def sha256_hex(self) -> str:
        self._require_finalized()
        return self._sha256.hexdigest()

    @property
    def sm3_hex(self) -> str:
        self._require_finalized()
        return self._sm3.hexdigest()

    def _require_finalized(self) -> None:
        if not self._finalized:
            raise RuntimeError("digests are only available after Sealer.finalize()")

    def _seal(self, chunk: bytes | bytearray, *, last: bool) -> bytes:
        if self._counter >= MAX_CHUNKS:
            raise ValueError("plaintext too long for this chunk size (chunk counter exhausted)")
        nonce = self._nonce_prefix + _CHUNK_SUFFIX.pack(self._counter, int(last))
        self._counter += 1
        return aead_encrypt(self.suite, self._key, nonce, chunk, self._header)

    def _emit(self, parts: list[bytes]) -> bytes:
        if self._header_pending and parts:
            self._header_pending = False
            parts.insert(0, self._header)
        return b"".join(parts)


class _ChunkReader:
    """Reads exact-size pieces from a file object or an iterable of byte strings."""

    def __init__(self, source: Iterable[bytes] | BinaryIO | bytes) -> None:
        self._file: BinaryIO | None = None
        self._pieces: Iterator[bytes] | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            # Iterating bytes would yield ints: treat it as one piece.
            self._pieces = iter([bytes(source)])
        elif hasattr(source, "read"):
            self._file = cast(BinaryIO, source)
        else:
            self._pieces = iter(source)
        self._buffer = bytearray()

    def read(self, n: int) -> bytes:
        """Return `n` bytes, or fewer only at end of input."""
        while len(self._buffer) < n:
            piece = self._next_piece(n - len(self._buffer))
            if not piece:
                break
            self._buffer += piece
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _next_piece(self, wanted: int) -> bytes:
        if self._file is not None:
            return self._file.read(wanted)
        assert self._pieces is not None
        for piece in self._pieces:
            if piece:
                return piece
        return b""


def read_header(data: bytes) -> tuple[CipherSuite, int, bytes]:
    """Parse a blob header: (suite, chunk size, nonce prefix). Not authenticated yet."""
    if len(data) < HEADER_SIZE:
        raise IntegrityFailure(
            _("The blob header is truncated: %(size)s of %(needed)s bytes."),
            code="blob_header_truncated",
            size=len(data),
            needed=HEADER_SIZE,
        )
    magic, version, suite_id, chunk_size, prefix = _HEADER.unpack(data[:HEADER_SIZE])
    if magic != MAGIC:
        raise IntegrityFailure(_("This is not a medarchive sealed blob (bad magic)."), code="bad_blob_magic")
    if version != FORMAT_VERSION:
        raise IntegrityFailure(
            _("Unsupported sealed blob format version %(version)s."),
            code="unsupported_blob_version",
            version=version,
        )
    suite = CipherSuite.from_wire_id(suite_id)
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise IntegrityFailure(
            _("The blob header has an invalid chunk size %(chunk_size)s."),
            code="bad_chunk_size",
            chunk_size=chunk_size,
        )
    return suite, chunk_size, prefix


def open_sealed(chunks: Iterable[bytes] | BinaryIO | bytes, data_key: bytes) -> Iterator[bytes]:
    """Yield verified plaintext chunks; raise `IntegrityFailure` naming the bad chunk.

    Memory stays bounded by about two chunks whatever the blob size.
    """
    reader = _ChunkReader(chunks)
    header = reader.read(HEADER_SIZE)
    suite, chunk_size, prefix = read_header(header)
    _check_key(suite, data_key)
    sealed_chunk = chunk_size + TAG_SIZE
    index = 0
    current = reader.read(sealed_chunk)
    while True:
        if index >= MAX_CHUNKS:
            raise IntegrityFailure(_("Chunk %(chunk)s: too many chunks."), code="too_many_chunks", chunk=index)
        # A full chunk is the last one only if nothing follows it.
        following = reader.read(sealed_chunk) if len(current) == sealed_chunk else b""
        last = not following
        if len(current) < TAG_SIZE:
            raise IntegrityFailure(
                _("Chunk %(chunk)s is truncated: %(size)s bytes, shorter than its %(tag)s-byte tag."),
                code="chunk_truncated",
                chunk=index,
                size=len(current),
                tag=TAG_SIZE,
            )
        nonce = prefix + _CHUNK_SUFFIX.pack(index, int(last))
        try:
            plaintext = aead_decrypt(suite, data_key, nonce, current, header)
        except InvalidTag:
            raise IntegrityFailure(
                _(
                    "Chunk %(chunk)s failed authentication (corrupted, truncated, reordered, trailing data "
                    "or wrong key)."
                ),
                code="chunk_unauthenticated",
                chunk=index,
            ) from None
        yield plaintext
        if last:
            return
        current = following
        index += 1
