"""The blob store facade over local storage: sealing, addressing, limits, fixity, rotation."""

from __future__ import annotations

import hashlib
import hmac
import io
import os
from pathlib import Path

import pytest
from django.utils import translation

from medarchive.core.errors import EmptyFile, IntegrityFailure, NotFound, PayloadTooLarge
from medarchive.preservation.blobstore import BlobStore, StagedBlob
from medarchive.preservation.crypto import HEADER_SIZE, CipherSuite, read_header, sealed_size
from medarchive.preservation.keys import KeyRing
from medarchive.preservation.storage.local import LocalStorage

CHUNK = 4096
PATTERN = b"PATIENT:ZHANG-SAN;MRN=0042-7731;DIAGNOSIS=" * 200


def files_under(root: Path) -> list[Path]:
    """Staged and stored blobs (not the store's LAYOUT file)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "LAYOUT")


def make_store(root: Path, suite: CipherSuite = CipherSuite.AES_256_GCM, ring: KeyRing | None = None) -> BlobStore:
    return BlobStore(LocalStorage(root), ring or KeyRing.generate(), suite=suite, chunk_size=CHUNK)


def read_all(store: BlobStore, staged: StagedBlob) -> bytes:
    return b"".join(store.open(staged.address, key_id=staged.key_id, wrapped_key=staged.wrapped_key))


def verify(store: BlobStore, staged: StagedBlob, **overrides: object) -> tuple[bool, list[str]]:
    expected: dict[str, object] = {
        "expected_sha256": staged.sha256,
        "expected_sm3": staged.sm3,
        "expected_size": staged.size,
    }
    expected.update(overrides)
    result = store.verify(
        staged.address,
        key_id=staged.key_id,
        wrapped_key=staged.wrapped_key,
        **expected,  # type: ignore[arg-type]
    )
    return result.ok, result.problems


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


@pytest.mark.parametrize("suite", list(CipherSuite))
@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3])
def test_stage_commit_open_round_trip(tmp_path: Path, suite: CipherSuite, size: int) -> None:
    store = make_store(tmp_path, suite)
    data = os.urandom(size)

    staged = store.stage(io.BytesIO(data))
    assert not store.exists(staged.address)  # invisible until committed
    assert staged.commit() is True

    assert read_all(store, staged) == data
    assert staged.size == size
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert staged.sm3 == hashlib.new("sm3", data).hexdigest()
    assert staged.suite is suite
    assert staged.key_id == "k1"
    assert staged.stored_size == store.storage.stored_size(staged.address) == sealed_size(size, CHUNK)
    assert verify(store, staged) == (True, [])


def test_address_is_keyed_hmac_of_the_sha256(tmp_path: Path) -> None:
    ring = KeyRing.generate()
    store = make_store(tmp_path, ring=ring)

    staged = store.stage(io.BytesIO(b"content"))

    digest = hashlib.sha256(b"content").digest()
    assert staged.address == hmac.new(ring.address_key, digest, hashlib.sha256).hexdigest()
    assert staged.address != staged.sha256
    other = make_store(tmp_path / "other").stage(io.BytesIO(b"content"))
    assert other.address != staged.address  # another installation, another address key


def test_plaintext_never_reaches_the_disk(tmp_path: Path) -> None:
    store = make_store(tmp_path)

    staged = store.stage(io.BytesIO(PATTERN))
    written_while_staged = b"".join(p.read_bytes() for p in files_under(tmp_path))
    staged.commit()
    written = [p.read_bytes() for p in files_under(tmp_path)]

    assert len(written) == 1
    assert len(written[0]) == sealed_size(len(PATTERN), CHUNK)
    assert written_while_staged  # staging held ciphertext already
    for blob in (written_while_staged, written[0]):
        assert b"ZHANG-SAN" not in blob
        assert PATTERN[:16] not in blob
    assert staged.sha256 not in str(files_under(tmp_path)[0])
    assert read_all(store, staged) == PATTERN


def test_empty_source_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = make_store(tmp_path)

    with pytest.raises(EmptyFile) as caught:
        store.stage(io.BytesIO(b""))
    assert caught.value.code == "empty_file" and caught.value.message == "文件为空。"

    assert files_under(tmp_path) == []


def test_over_the_limit_stops_reading_and_leaves_nothing(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    source = CountingReader(os.urandom(20 * CHUNK))

    with pytest.raises(PayloadTooLarge) as caught:
        store.stage(source, max_bytes=10_000)

    assert caught.value.details == {"max_bytes": 10_000} and caught.value.code == "payload_too_large"
    with translation.override("en"):
        assert caught.value.message == "The file is larger than the limit of 10000 bytes."
    assert source.bytes_read == 10_001
    assert files_under(tmp_path) == []


def test_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    store = make_store(tmp_path)

    staged = store.stage(io.BytesIO(b"x" * 10_000), max_bytes=10_000)

    assert staged.size == 10_000


def test_failing_source_leaves_nothing(tmp_path: Path) -> None:
    class Broken(io.RawIOBase):
        calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise OSError("connection reset")
            return b"y" * CHUNK

    store = make_store(tmp_path)
    with pytest.raises(OSError, match="connection reset"):
        store.stage(Broken())  # type: ignore[arg-type]

    assert files_under(tmp_path) == []


def test_discard_and_uncommitted_context_exit_leave_nothing(tmp_path: Path) -> None:
    store = make_store(tmp_path)

    store.stage(io.BytesIO(b"one")).discard()
    with store.stage(io.BytesIO(b"two")) as staged:
        assert len(files_under(tmp_path)) == 1
    assert staged.created is None

    assert files_under(tmp_path) == []


def test_flipped_byte_fails_fixity_and_reading(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    staged = store.stage(io.BytesIO(os.urandom(3 * CHUNK)))
    staged.commit()
    [path] = files_under(tmp_path)
    damaged = bytearray(path.read_bytes())
    damaged[HEADER_SIZE + CHUNK + 16 + 7] ^= 0x01  # inside chunk 1
    path.write_bytes(bytes(damaged))

    ok, problems = verify(store, staged)

    assert not ok
    assert problems == [  # stored as PREMIS evidence: in English whatever the UI language
        f"Blob {staged.address}: Chunk 1 failed authentication "
        "(corrupted, truncated, reordered, trailing data or wrong key)."
    ]
    with pytest.raises(IntegrityFailure) as caught:
        read_all(store, staged)
    assert caught.value.details == {"address": staged.address, "chunk": 1}
    assert caught.value.code == "chunk_unauthenticated"
    assert caught.value.message.startswith(f"存储对象 {staged.address}：第 1 块认证失败")


def test_truncated_blob_fails_fixity(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    staged = store.stage(io.BytesIO(os.urandom(2 * CHUNK + 1)))
    staged.commit()
    [path] = files_under(tmp_path)
    path.write_bytes(path.read_bytes()[: HEADER_SIZE + CHUNK + 16])

    ok, problems = verify(store, staged)

    assert not ok
    assert "Chunk 0 failed authentication" in problems[0]


def test_missing_blob_fails_fixity_without_raising(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    staged = store.stage(io.BytesIO(b"gone soon"))
    staged.commit()
    store.storage.delete(staged.address)

    assert verify(store, staged) == (False, [f"blob {staged.address} is missing from storage"])
    with pytest.raises(NotFound, match=staged.address):
        store.open(staged.address, key_id=staged.key_id, wrapped_key=staged.wrapped_key)


def test_recorded_values_that_do_not_match_fail_fixity(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    staged = store.stage(io.BytesIO(b"abc"))
    staged.commit()

    ok, problems = verify(store, staged, expected_sha256="0" * 64, expected_size=4)

    assert not ok
    assert problems == [
        "size mismatch: expected 4 bytes, found 3",
        f"sha256 mismatch: expected {'0' * 64}, found {staged.sha256}",
    ]
    assert verify(store, staged, expected_sha256=staged.sha256.upper()) == (True, [])


def test_unknown_master_key_fails_fixity_without_raising(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    staged = store.stage(io.BytesIO(b"abc"))
    staged.commit()

    result = store.verify(
        staged.address,
        key_id="k7",
        wrapped_key=staged.wrapped_key,
        expected_sha256=staged.sha256,
        expected_sm3=staged.sm3,
        expected_size=3,
    )

    assert not result.ok
    assert "The master key k7 is not in the key ring" in result.problems[0]
    assert (result.sha256, result.sm3, result.size) == (None, None, None)


def test_same_content_dedups_to_one_object(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    first = store.stage(io.BytesIO(PATTERN))
    second = store.stage(io.BytesIO(PATTERN))

    assert first.address == second.address
    assert first.wrapped_key != second.wrapped_key
    assert first.commit() is True
    assert second.commit() is False
    assert second.created is False

    assert len(files_under(tmp_path)) == 1
    assert read_all(store, first) == PATTERN
    with pytest.raises(IntegrityFailure):  # the discarded copy's key does not fit
        read_all(store, second)


def test_rewrap_after_rotation_still_opens(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    ring = KeyRing.load_or_create(key_file)
    store = make_store(tmp_path / "blobs", ring=ring)
    staged = store.stage(io.BytesIO(PATTERN))
    staged.commit()
    stored_before = files_under(tmp_path / "blobs")[0].read_bytes()

    new_id = ring.rotate(key_file)
    key_id, wrapped = store.rewrap(staged.key_id, staged.wrapped_key)

    assert (key_id, new_id) == ("k2", "k2")
    assert b"".join(store.open(staged.address, key_id=key_id, wrapped_key=wrapped)) == PATTERN
    restarted = make_store(tmp_path / "blobs", ring=KeyRing.load(key_file))
    assert b"".join(restarted.open(staged.address, key_id=key_id, wrapped_key=wrapped)) == PATTERN
    assert files_under(tmp_path / "blobs")[0].read_bytes() == stored_before  # content not re-encrypted


def test_sm4_blob_opens_under_a_store_configured_for_aes(tmp_path: Path) -> None:
    ring = KeyRing.generate(wrap_suite=CipherSuite.SM4_GCM)
    sm4_store = make_store(tmp_path, CipherSuite.SM4_GCM, ring)
    staged = sm4_store.stage(io.BytesIO(PATTERN))
    staged.commit()
    [path] = files_under(tmp_path)

    aes_store = make_store(tmp_path, CipherSuite.AES_256_GCM, ring)

    assert read_header(path.read_bytes())[0] is CipherSuite.SM4_GCM
    assert staged.wrapped_key[0] == CipherSuite.SM4_GCM.wire_id
    assert b"".join(aes_store.open(staged.address, key_id=staged.key_id, wrapped_key=staged.wrapped_key)) == (PATTERN)
    assert verify(aes_store, staged) == (True, [])


def test_repr_of_staged_blob_omits_the_wrapped_key(tmp_path: Path) -> None:
    staged = make_store(tmp_path).stage(io.BytesIO(b"abc"))

    assert "wrapped_key" not in repr(staged)
    assert staged.address in repr(staged)
