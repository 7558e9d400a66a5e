"""The chunked AEAD format: round trips, tamper detection, one-pass digests."""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from medarchive.core.errors import IntegrityFailure
from medarchive.preservation import crypto
from medarchive.preservation.crypto import (
    HEADER_SIZE,
    MAGIC,
    TAG_SIZE,
    CipherSuite,
    Sealer,
    open_sealed,
    sealed_size,
)

SUITES = list(CipherSuite)
SMALL_CHUNK = 64
SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
# No example database: it would be written into the work tree.
fast = settings(max_examples=60, deadline=None, database=None)


@contextmanager
def refused(code: str | None = None, **details: object) -> Iterator[None]:
    """Expect an IntegrityFailure with this code (when given) and these details."""
    with pytest.raises(IntegrityFailure) as caught:
        yield
    assert code is None or caught.value.code == code, caught.value.code
    assert details.items() <= caught.value.details.items(), caught.value.details


def key_for(suite: CipherSuite) -> bytes:
    return os.urandom(suite.key_size)


def sealed_bytes(data: bytes, key: bytes, suite: CipherSuite, chunk_size: int = SMALL_CHUNK) -> bytes:
    sealer = Sealer(key, suite, chunk_size=chunk_size)
    return sealer.update(data) + sealer.finalize()


def unseal(blob: bytes | io.BytesIO, key: bytes) -> bytes:
    return b"".join(open_sealed(blob, key))


def split_chunks(blob: bytes, chunk_size: int) -> tuple[bytes, list[bytes]]:
    body = blob[HEADER_SIZE:]
    step = chunk_size + TAG_SIZE
    return blob[:HEADER_SIZE], [body[i : i + step] for i in range(0, len(body), step)]


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize(
    "size",
    [0, 1, SMALL_CHUNK - 1, SMALL_CHUNK, SMALL_CHUNK + 1, 3 * SMALL_CHUNK, 3 * SMALL_CHUNK + 5],
)
def test_round_trip_around_chunk_boundaries(suite: CipherSuite, size: int) -> None:
    data = os.urandom(size)
    key = key_for(suite)
    blob = sealed_bytes(data, key, suite)

    assert len(blob) == sealed_size(size, SMALL_CHUNK)
    assert unseal(blob, key) == data
    assert unseal(io.BytesIO(blob), key) == data


@pytest.mark.parametrize("suite", SUITES)
def test_round_trip_with_default_chunk_size(suite: CipherSuite) -> None:
    data = os.urandom(crypto.DEFAULT_CHUNK_SIZE + 1)
    key = key_for(suite)
    blob = sealed_bytes(data, key, suite, crypto.DEFAULT_CHUNK_SIZE)

    chunks = list(open_sealed(io.BytesIO(blob), key))

    assert [len(c) for c in chunks] == [crypto.DEFAULT_CHUNK_SIZE, 1]
    assert b"".join(chunks) == data


@fast
@given(
    suite=st.sampled_from(SUITES),
    data=st.binary(max_size=700),
    chunk_size=st.integers(min_value=1, max_value=200),
    write_sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=8),
    read_size=st.integers(min_value=1, max_value=300),
)
def test_round_trip_any_sizes_and_splits(
    suite: CipherSuite, data: bytes, chunk_size: int, write_sizes: list[int], read_size: int
) -> None:
    key = key_for(suite)
    sealer = Sealer(key, suite, chunk_size=chunk_size)
    out, pos, i = [], 0, 0
    while pos < len(data):
        step = write_sizes[i % len(write_sizes)]
        out.append(sealer.update(data[pos : pos + step]))
        pos, i = pos + step, i + 1
    out.append(sealer.finalize())
    blob = b"".join(out)
    pieces = [blob[j : j + read_size] for j in range(0, len(blob), read_size)]

    assert b"".join(open_sealed(pieces, key)) == data
    assert len(blob) == sealed_size(len(data), chunk_size)
    assert sealer.size == len(data)
    assert sealer.sha256_hex == hashlib.sha256(data).hexdigest()
    assert sealer.sm3_hex == hashlib.new("sm3", data).hexdigest()


@fast
@given(
    suite=st.sampled_from(SUITES),
    data=st.binary(min_size=0, max_size=300),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_flipped_bit_is_detected(suite: CipherSuite, data: bytes, where: float, bit: int) -> None:
    key = key_for(suite)
    blob = bytearray(sealed_bytes(data, key, suite))
    blob[int(where * len(blob))] ^= 1 << bit

    with pytest.raises(IntegrityFailure):
        unseal(bytes(blob), key)


@pytest.mark.parametrize("suite", SUITES)
def test_truncated_last_chunk_names_the_chunk(suite: CipherSuite) -> None:
    key = key_for(suite)
    blob = sealed_bytes(os.urandom(3 * SMALL_CHUNK + 10), key, suite)

    with refused(chunk=3):
        unseal(blob[:-1], key)
    with refused("chunk_truncated", chunk=3):
        unseal(blob[: -(10 + TAG_SIZE - 3)], key)


@pytest.mark.parametrize("suite", SUITES)
def test_dropped_final_chunk_is_detected(suite: CipherSuite) -> None:
    # Cutting at a chunk boundary leaves a well-formed prefix; the last-flag catches it.
    key = key_for(suite)
    blob = sealed_bytes(os.urandom(3 * SMALL_CHUNK + 10), key, suite)
    header, chunks = split_chunks(blob, SMALL_CHUNK)

    received: list[bytes] = []
    with refused("chunk_unauthenticated", chunk=2):
        received.extend(open_sealed(header + b"".join(chunks[:3]), key))
    assert len(received) == 2  # chunks 0 and 1 verified before the failure


@pytest.mark.parametrize("suite", SUITES)
def test_dropped_middle_chunk_is_detected(suite: CipherSuite) -> None:
    key = key_for(suite)
    header, chunks = split_chunks(sealed_bytes(os.urandom(4 * SMALL_CHUNK), key, suite), SMALL_CHUNK)
    del chunks[1]

    with refused("chunk_unauthenticated", chunk=1):
        unseal(header + b"".join(chunks), key)


@pytest.mark.parametrize("suite", SUITES)
def test_swapped_chunks_are_detected(suite: CipherSuite) -> None:
    key = key_for(suite)
    header, chunks = split_chunks(sealed_bytes(os.urandom(4 * SMALL_CHUNK), key, suite), SMALL_CHUNK)
    chunks[0], chunks[1] = chunks[1], chunks[0]

    with refused("chunk_unauthenticated", chunk=0):
        unseal(header + b"".join(chunks), key)


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("size", [0, 10, SMALL_CHUNK, 2 * SMALL_CHUNK])
@pytest.mark.parametrize("garbage", [b"\x00", os.urandom(SMALL_CHUNK + TAG_SIZE)])
def test_trailing_data_is_detected(suite: CipherSuite, size: int, garbage: bytes) -> None:
    key = key_for(suite)
    blob = sealed_bytes(os.urandom(size), key, suite)

    with pytest.raises(IntegrityFailure) as caught:
        unseal(blob + garbage, key)
    assert "chunk" in caught.value.details


def test_chunk_moved_between_blobs_is_detected() -> None:
    # Same key, different nonce prefix and header: a chunk cannot be transplanted.
    key = key_for(CipherSuite.AES_256_GCM)
    first = sealed_bytes(os.urandom(10), key, CipherSuite.AES_256_GCM)
    second = sealed_bytes(os.urandom(10), key, CipherSuite.AES_256_GCM)

    with refused(chunk=0):
        unseal(first[:HEADER_SIZE] + second[HEADER_SIZE:], key)


@pytest.mark.parametrize("suite", SUITES)
def test_wrong_key_is_detected(suite: CipherSuite) -> None:
    blob = sealed_bytes(b"hello", key_for(suite), suite)

    with refused("chunk_unauthenticated", chunk=0):
        unseal(blob, key_for(suite))


def test_key_length_must_match_the_suite_in_the_header() -> None:
    blob = sealed_bytes(b"hello", key_for(CipherSuite.SM4_GCM), CipherSuite.SM4_GCM)

    with refused("wrong_key_size", suite="sm4-gcm", needed=16, size=32):
        unseal(blob, os.urandom(32))


@pytest.mark.parametrize(
    ("blob", "code", "details"),
    [
        (b"", "blob_header_truncated", {"size": 0, "needed": HEADER_SIZE}),
        (MAGIC + b"\x01", "blob_header_truncated", {"size": 5}),
        (b"NOPE" + bytes(HEADER_SIZE), "bad_blob_magic", {}),
        (struct.pack(">4sBBI7s", MAGIC, 9, 1, 64, bytes(7)), "unsupported_blob_version", {"version": 9}),
        (struct.pack(">4sBBI7s", MAGIC, 1, 77, 64, bytes(7)), "unknown_cipher_suite", {"suite_id": 77}),
        (struct.pack(">4sBBI7s", MAGIC, 1, 1, 0, bytes(7)), "bad_chunk_size", {"chunk_size": 0}),
        (struct.pack(">4sBBI7s", MAGIC, 1, 1, 2**32 - 1, bytes(7)), "bad_chunk_size", {"chunk_size": 2**32 - 1}),
        (struct.pack(">4sBBI7s", MAGIC, 1, 1, 64, bytes(7)), "chunk_truncated", {"chunk": 0}),
    ],
)
def test_bad_headers_are_rejected(blob: bytes, code: str, details: dict[str, object]) -> None:
    with refused(code, **details):
        unseal(blob, os.urandom(32))


def test_integrity_messages_read_in_the_active_language() -> None:
    with pytest.raises(IntegrityFailure) as caught:
        unseal(struct.pack(">4sBBI7s", MAGIC, 1, 1, 64, bytes(7)), os.urandom(32))
    with translation.override("en"):
        assert caught.value.message == "Chunk 0 is truncated: 0 bytes, shorter than its 16-byte tag."
    with translation.override("zh-hans"):
        assert caught.value.message == "第 0 块不完整：只有 0 字节，短于 16 字节的认证标签。"


def test_header_records_suite_and_chunk_size() -> None:
    blob = sealed_bytes(b"x", key_for(CipherSuite.SM4_GCM), CipherSuite.SM4_GCM, chunk_size=4096)

    suite, chunk_size, prefix = crypto.read_header(blob)

    assert (suite, chunk_size, len(prefix)) == (CipherSuite.SM4_GCM, 4096, 7)


def test_two_sealings_of_the_same_data_differ() -> None:
    key = key_for(CipherSuite.AES_256_GCM)

    assert sealed_bytes(b"same", key, CipherSuite.AES_256_GCM) != sealed_bytes(b"same", key, CipherSuite.AES_256_GCM)


def test_sealer_streams_instead_of_buffering_everything() -> None:
    sealer = Sealer(key_for(CipherSuite.AES_256_GCM), chunk_size=SMALL_CHUNK)

    first = sealer.update(os.urandom(SMALL_CHUNK))  # may still be the final chunk
    later = sealer.update(os.urandom(5 * SMALL_CHUNK))

    assert first == b""
    assert len(later) == HEADER_SIZE + 5 * (SMALL_CHUNK + TAG_SIZE)


def test_open_sealed_reads_at_most_two_chunks_ahead() -> None:
    key = key_for(CipherSuite.AES_256_GCM)
    blob = sealed_bytes(os.urandom(50 * SMALL_CHUNK), key, CipherSuite.AES_256_GCM)
    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for i in range(0, len(blob), 16):
            consumed += 16
            yield blob[i : i + 16]

    plaintext = open_sealed(source(), key)
    next(plaintext)

    assert consumed <= HEADER_SIZE + 2 * (SMALL_CHUNK + TAG_SIZE) + 16


@pytest.mark.parametrize("suite", SUITES)
def test_digests_known_answers(suite: CipherSuite) -> None:
    sealer = Sealer(key_for(suite), suite)
    sealer.update(b"a")
    sealer.update(b"bc")
    sealer.finalize()

    assert sealer.size == 3
    assert sealer.sm3_hex == SM3_ABC
    assert sealer.sha256_hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sealer.sha256_digest == hashlib.sha256(b"abc").digest()


def test_sm3_falls_back_to_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    real_new = hashlib.new

    def no_sm3(name: str, *args: object, **kwargs: object) -> object:
        if name == "sm3":
            raise ValueError("unsupported hash type sm3")
        return real_new(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hashlib, "new", no_sm3)
    hasher = crypto.new_sm3()
    hasher.update(b"ab")
    hasher.update(b"c")

    assert isinstance(hasher, crypto._CryptographySM3)
    assert hasher.hexdigest() == SM3_ABC
    assert hasher.hexdigest() == SM3_ABC  # repeatable, like hashlib


def test_sealer_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 32"):
        Sealer(os.urandom(16), CipherSuite.AES_256_GCM)
    with pytest.raises(ValueError, match="chunk_size"):
        Sealer(os.urandom(32), chunk_size=0)
    sealer = Sealer(os.urandom(32))
    with pytest.raises(RuntimeError, match=r"after Sealer\.finalize"):
        _ = sealer.sha256_hex
    sealer.finalize()
    with pytest.raises(RuntimeError, match="after finalize"):
        sealer.update(b"late")
    with pytest.raises(RuntimeError, match="twice"):
        sealer.finalize()


def test_sealer_copies_mutable_input_it_holds_back() -> None:
    key = key_for(CipherSuite.AES_256_GCM)
    sealer = Sealer(key, chunk_size=SMALL_CHUNK)
    buffer = bytearray(b"a" * 10)

    blob = sealer.update(buffer)
    buffer[:] = b"b" * 10  # the caller reuses its buffer
    blob += sealer.finalize()

    assert unseal(blob, key) == b"a" * 10
