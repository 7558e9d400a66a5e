"""Storage conformance (every adapter: local and S3) plus S3 specifics, over real HTTP.

S3 runs against moto's server on 127.0.0.1 (a free port), started once per
session, with dummy credentials; nothing leaves the machine.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from medarchive.core.errors import NotFound, ValidationError
from medarchive.preservation.blobstore import BlobStore, FixityResult
from medarchive.preservation.crypto import HEADER_SIZE
from medarchive.preservation.keys import KeyRing
from medarchive.preservation.storage.base import BlobStorage
from medarchive.preservation.storage.local import LocalStorage
from medarchive.preservation.storage.s3 import S3Storage

PREFIX = "blobs/"
MiB = 1 << 20


def address(n: int) -> str:
    return f"{n:064x}"


A1, A2, A3 = address(0xA1), address(0xB2), address(0xC3)


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


@dataclass
class Adapter:
    storage: BlobStorage
    stored: Callable[[], list[str]]  # every object the backend holds, staging aside
    leftovers: Callable[[], list[str]]  # staged data visible outside this process
    crash_mid_write: Callable[[], Any]  # leave staged data like a killed writer


def local_adapter(root: Path) -> Adapter:
    storage = LocalStorage(root)
    abandoned: list[Any] = []

    def crash_mid_write() -> Any:
        staged = storage.stage()
        staged.write(b"half written")
        # A killed process runs no finalizers; only the kernel closes its files.
        staged._finalizer.detach()
        staged._file.close()
        abandoned.append(staged)
        return staged

    return Adapter(
        storage=storage,
        stored=lambda: sorted(str(p) for p in root.rglob("*") if p.is_file() and len(p.name) == 64),
        leftovers=lambda: sorted(p.name for p in storage.staging.iterdir()),
        crash_mid_write=crash_mid_write,
    )


def s3_adapter(endpoint: str, bucket: str) -> Adapter:
    client = s3_client(endpoint)
    storage = S3Storage(bucket, prefix=PREFIX, client=client)

    def crash_mid_write() -> Any:
        # A multipart upload whose writer died before completing it.
        upload = client.create_multipart_upload(Bucket=bucket, Key=PREFIX + A3)
        client.upload_part(Bucket=bucket, Key=PREFIX + A3, UploadId=upload["UploadId"], PartNumber=1, Body=b"x")
        return upload

    return Adapter(
        storage=storage,
        stored=lambda: sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])),
        leftovers=lambda: [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])],
        crash_mid_write=crash_mid_write,
    )


@pytest.fixture(params=["local", "s3"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Adapter:
    if request.param == "local":
        return local_adapter(tmp_path / "blobs")
    endpoint = request.getfixturevalue("s3_endpoint")
    return s3_adapter(endpoint, request.getfixturevalue("bucket"))


def put(storage: BlobStorage, name: str, data: bytes) -> bool:
    with storage.stage() as staged:
        staged.write(data)
        return staged.commit(name)


def read(storage: BlobStorage, name: str) -> bytes:
    with storage.open(name) as stream:
        return stream.read()


# -- conformance: every adapter --------------------------------------------------------------


def test_lifecycle(adapter: Adapter) -> None:
    storage = adapter.storage
    data = os.urandom(100_000)

    with storage.stage() as staged:
        staged.write(data[:10])
        staged.write(data[10:])
        assert staged.bytes_written == len(data)
        assert not storage.exists(A1)  # invisible until committed
        assert list(storage.addresses()) == []
        assert staged.commit(A1) is True

    assert storage.exists(A1)
    assert read(storage, A1) == data
    assert storage.stored_size(A1) == len(data)
    assert list(storage.addresses()) == [A1]
    storage.delete(A1)
    assert not storage.exists(A1)
    assert list(storage.addresses()) == []
    assert adapter.stored() == []


def test_open_streams_in_pieces(adapter: Adapter) -> None:
    data = os.urandom(3 * 65536 + 5)
    put(adapter.storage, A1, data)

    with adapter.storage.open(A1) as stream:
        pieces = iter(lambda: stream.read(65536), b"")
        assert b"".join(pieces) == data


def test_addresses_lists_every_object_in_order(adapter: Adapter) -> None:
    for name in (A3, A1, A2):
        put(adapter.storage, name, name.encode())

    assert list(adapter.storage.addresses()) == [A1, A2, A3]


def test_abort_leaves_nothing(adapter: Adapter) -> None:
    staged = adapter.storage.stage()
    staged.write(b"cipher" * 1000)
    staged.abort()
    staged.abort()  # idempotent

    assert adapter.stored() == []
    assert adapter.leftovers() == []
    with pytest.raises(RuntimeError, match="already aborted"):
        staged.commit(A1)


def test_exception_inside_with_leaves_nothing(adapter: Adapter) -> None:
    with pytest.raises(ZeroDivisionError), adapter.storage.stage() as staged:
        staged.write(b"cipher")
        _ = 1 / 0

    assert adapter.stored() == []
    assert adapter.leftovers() == []
    assert not adapter.storage.exists(A1)


def test_leaving_with_without_commit_aborts(adapter: Adapter) -> None:
    with adapter.storage.stage() as staged:
        staged.write(b"cipher")

    assert adapter.stored() == []
    assert adapter.leftovers() == []


def test_commit_of_an_existing_address_keeps_the_first_object(adapter: Adapter) -> None:
    assert put(adapter.storage, A1, b"first") is True

    assert put(adapter.storage, A1, b"second, other data key") is False

    assert read(adapter.storage, A1) == b"first"
    assert len(adapter.stored()) == 1
    assert adapter.leftovers() == []


def test_staged_write_is_single_use(adapter: Adapter) -> None:
    with adapter.storage.stage() as staged:
        staged.commit(A1)
        with pytest.raises(RuntimeError, match="already committed"):
            staged.write(b"late")
        with pytest.raises(RuntimeError, match="already committed"):
            staged.commit(A2)
        staged.abort()  # a no-op after commit

    assert adapter.storage.exists(A1)


def test_cleanup_staging_removes_leftovers(adapter: Adapter) -> None:
    adapter.crash_mid_write()
    assert adapter.leftovers() != []

    assert adapter.storage.cleanup_staging(older_than=0) == 1

    assert adapter.leftovers() == []
    assert adapter.storage.cleanup_staging(older_than=0) == 0
    assert adapter.stored() == []


def test_missing_objects_raise_not_found_naming_the_address(adapter: Adapter) -> None:
    storage = adapter.storage

    assert not storage.exists(A2)
    assert storage.delete_if_exists(A2) is False
    for operation in (storage.open, storage.delete, storage.stored_size):
        with pytest.raises(NotFound) as caught:
            operation(A2)
        assert caught.value.details == {"address": A2} and caught.value.code == "blob_not_found"
        assert A2 in caught.value.message


def test_delete_if_exists_removes(adapter: Adapter) -> None:
    put(adapter.storage, A1, b"x")

    assert adapter.storage.delete_if_exists(A1) is True
    assert adapter.stored() == []


@pytest.mark.parametrize("bad", ["../" + "0" * 61, "F" * 64, "0" * 10, ""])
def test_malformed_addresses_are_refused(adapter: Adapter, bad: str) -> None:
    for operation in (adapter.storage.open, adapter.storage.exists, adapter.storage.delete):
        with pytest.raises(ValidationError) as caught:
            operation(bad)
        assert (caught.value.code, caught.value.field) == ("bad_address", "address")


# -- S3 specifics -----------------------------------------------------------------------------


def test_large_objects_go_multipart_and_stay_immutable(s3_endpoint: str, bucket: str) -> None:
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    storage = S3Storage(bucket, prefix=PREFIX, endpoint_url=s3_endpoint, transfer_config=config, spool_max_bytes=MiB)
    data = os.urandom(11 * MiB)

    assert put(storage, A1, data) is True
    assert storage.stored_size(A1) == len(data)
    assert read(storage, A1) == data

    # A writer that checked just before the first one committed: the conditional write stops it.
    racing = S3Storage(bucket, prefix=PREFIX, endpoint_url=s3_endpoint, transfer_config=config)
    racing.exists = lambda address: False  # type: ignore[method-assign]
    assert put(racing, A1, os.urandom(11 * MiB)) is False
    assert read(storage, A1) == data
    assert racing.cleanup_staging(older_than=0) == 0  # the failed multipart upload was aborted


def test_conditional_write_stops_a_racing_small_put(s3_endpoint: str, bucket: str) -> None:
    storage = S3Storage(bucket, prefix=PREFIX, endpoint_url=s3_endpoint)
    put(storage, A1, b"first")
    storage.exists = lambda address: False  # type: ignore[method-assign]

    assert put(storage, A1, b"second") is False
    assert read(storage, A1) == b"first"


def test_without_conditional_writes_the_existence_check_still_dedups(s3_endpoint: str, bucket: str) -> None:
    storage = S3Storage(bucket, prefix=PREFIX, endpoint_url=s3_endpoint, conditional_writes=False)
    put(storage, A1, b"first")

    assert put(storage, A1, b"second") is False
    assert read(storage, A1) == b"first"


def test_conditional_hook_leaves_other_keys_alone(s3_endpoint: str, bucket: str) -> None:
    client = s3_client(s3_endpoint)
    S3Storage(bucket, prefix=PREFIX, client=client)

    for body in (b"v1", b"v2"):
        client.put_object(Bucket=bucket, Key="reports/summary.txt", Body=body)
        client.put_object(Bucket=bucket, Key="other/" + A1, Body=body)

    assert client.get_object(Bucket=bucket, Key="reports/summary.txt")["Body"].read() == b"v2"


def test_addresses_paginate_and_stay_inside_the_prefix(s3_endpoint: str, bucket: str) -> None:
    client = s3_client(s3_endpoint)
    storage = S3Storage(bucket, prefix=PREFIX, client=client, list_page_size=2)
    names = [address(n) for n in range(5)]
    for name in names:
        put(storage, name, b"x")
    client.put_object(Bucket=bucket, Key=A1, Body=b"outside the prefix")
    client.put_object(Bucket=bucket, Key=PREFIX + "manifest.json", Body=b"not a blob")

    assert list(storage.addresses()) == names
    assert S3Storage(bucket, prefix="", client=client).exists(A1)
    assert not storage.exists(A1)


def test_blob_store_end_to_end_over_s3(s3_endpoint: str, bucket: str) -> None:
    storage = S3Storage(bucket, prefix=PREFIX, endpoint_url=s3_endpoint)
    store = BlobStore(storage, KeyRing.generate(), chunk_size=64 * 1024)
    data = b"discharge summary " * 20_000

    staged = store.stage(io.BytesIO(data))
    assert staged.commit() is True

    def verify() -> FixityResult:
        return store.verify(
            staged.address,
            key_id=staged.key_id,
            wrapped_key=staged.wrapped_key,
            expected_sha256=staged.sha256,
            expected_sm3=staged.sm3,
            expected_size=staged.size,
        )

    assert b"".join(store.open(staged.address, key_id=staged.key_id, wrapped_key=staged.wrapped_key)) == data
    assert verify().ok
    raw = s3_client(s3_endpoint)  # no conditional hook: may overwrite, as an attacker could
    stored = raw.get_object(Bucket=bucket, Key=PREFIX + staged.address)["Body"].read()
    assert b"discharge summary" not in stored
    damaged = bytearray(stored)
    damaged[HEADER_SIZE + 5] ^= 0x80
    raw.put_object(Bucket=bucket, Key=PREFIX + staged.address, Body=bytes(damaged))

    result = verify()

    assert not result.ok
    assert "Chunk 0 failed authentication" in result.problems[0]
