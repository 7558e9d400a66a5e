"""S3 adapter (boto3): objects at ``<prefix><address>`` in one bucket.

Policy: staged ciphertext is spooled in memory, rolling over to an anonymous
temporary file (unlinked at creation, so a crash leaves nothing on disk) past
`spool_max_bytes`. Commit uploads with `upload_fileobj` (multipart for large
objects). With `conditional_writes` (default), every PutObject and
CompleteMultipartUpload for this bucket and prefix carries
``If-None-Match: *`` (injected through a botocore event hook on the client,
also when the client was passed in), so an existing object is never
overwritten even by a concurrent writer; without it (for S3-compatible
servers lacking conditional writes) commit is check-then-put and racy.
Crashed multipart uploads are what `cleanup_staging` aborts. Not done:
server-side encryption settings, retries beyond botocore's own.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from medarchive.core.errors import NotFound
from medarchive.preservation import intents
from medarchive.preservation.storage.base import (
    ADDRESS_PATTERN,
    DEFAULT_STAGING_MAX_AGE,
    BaseStagedWrite,
    StorageBase,
    blob_not_found,
    check_address,
)

DEFAULT_SPOOL_MAX_BYTES = 8 << 20
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION_CODES = {"412", "PreconditionFailed"}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3Storage(StorageBase):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any | None = None,
        endpoint_url: str | None = None,
        *,
        region_name: str | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        transfer_config: TransferConfig | None = None,
        conditional_writes: bool = True,
        list_page_size: int | None = None,
        intent_dir: Path | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.client: Any = client or boto3.client("s3", endpoint_url=endpoint_url, region_name=region_name)
        self.spool_max_bytes = spool_max_bytes
        self.transfer_config = transfer_config or TransferConfig()
        self.conditional_writes = conditional_writes
        self.list_page_size = list_page_size
        # Intents are local files (per host): S3 has no cheap local trace of an upload in flight.
        self.intent_dir = intent_dir or Path(tempfile.gettempdir()) / "medarchive-s3-intents"
        if conditional_writes:
            for operation in ("PutObject", "CompleteMultipartUpload"):
                self.client.meta.events.register(
                    f"before-parameter-build.s3.{operation}",
                    self._add_if_none_match,
                    unique_id=f"medarchive-if-none-match-{operation}-{bucket}-{prefix}",
                )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def key_for(self, address: str) -> str:
        return self.prefix + check_address(address)

    def stage(self) -> _S3StagedWrite:
        return _S3StagedWrite(self)

    def open(self, address: str) -> BinaryIO:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key_for(address))
        except ClientError as error:
            self._raise_not_found(error, address)
            raise
        return cast(BinaryIO, response["Body"])

    def exists(self, address: str) -> bool:
        try:
            self._head(address)
        except NotFound:
            return False
        return True

    def delete(self, address: str) -> None:
        # S3 deletes of missing keys succeed silently; the port promises NotFound.
        self._head(address)
        self.client.delete_object(Bucket=self.bucket, Key=self.key_for(address))

    def stored_size(self, address: str) -> int:
        return int(self._head(address)["ContentLength"])

    def addresses(self) -> Iterator[str]:
        config = {"PageSize": self.list_page_size} if self.list_page_size else {}
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, PaginationConfig=config
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if ADDRESS_PATTERN.fullmatch(name):
                    yield name

    def cleanup_staging(self, *, older_than: float = DEFAULT_STAGING_MAX_AGE) -> int:
        """Abort incomplete multipart uploads of ours older than `older_than` seconds."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix)
        removed = 0
        for page in pages:
            for upload in page.get("Uploads", []):
                name = upload["Key"][len(self.prefix) :]
                if ADDRESS_PATTERN.fullmatch(name) and upload["Initiated"] <= cutoff:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        return removed

    def _head(self, address: str) -> dict[str, Any]:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self.key_for(address))
        except ClientError as error:
            self._raise_not_found(error, address)
            raise
        return cast(dict[str, Any], response)

    def _raise_not_found(self, error: ClientError, address: str) -> None:
        if _error_code(error) in _NOT_FOUND_CODES:
            raise blob_not_found(address) from None

    def _add_if_none_match(self, params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key", "")
        if (
            params.get("Bucket") == self.bucket
            and isinstance(key, str)
            and key.startswith(self.prefix)
            and ADDRESS_PATTERN.fullmatch(key[len(self.prefix) :])
        ):
            params.setdefault("IfNoneMatch", "*")


class _S3StagedWrite(BaseStagedWrite):
    def __init__(self, storage: S3Storage) -> None:
        super().__init__()
        self._storage = storage
        # Lives until commit/abort, so no `with` here.
        self._spool = tempfile.SpooledTemporaryFile(max_size=storage.spool_max_bytes)  # noqa: SIM115
        # A staged write dropped without commit/abort must not leak its temp file.
        weakref.finalize(self, self._spool.close)

    def _write(self, data: bytes) -> None:
        self._spool.write(data)

    def _commit(self, address: str) -> bool:
        storage = self._storage
        try:
            # Saves the upload for duplicates; the conditional put closes the race.
            if storage.exists(address):
                return False
            self._spool.seek(0)
            try:
                storage.client.upload_fileobj(
                    self._spool, storage.bucket, storage.key_for(address), Config=storage.transfer_config
                )
            except ClientError as error:
                if _error_code(error) in _PRECONDITION_CODES:
                    return False
                raise
            return True
        finally:
            self._spool.close()

    def _abort(self) -> None:
        self._spool.close()

    def _declare_intent(self, name: str) -> Path:
        return intents.create(self._storage.intent_dir, name)

    def _reopen(self) -> BinaryIO:
        self._spool.seek(0)  # commit seeks to the start again before it uploads
        return cast(BinaryIO, _Borrowed(self._spool))


class _Borrowed:
    """The spool, read by someone else: closing it leaves the spool open for the upload."""

    def __init__(self, spool: Any) -> None:
        self._spool = spool

    def read(self, size: int = -1) -> bytes:
        return cast(bytes, self._spool.read(size))

    def close(self) -> None:
        pass

    def __enter__(self) -> _Borrowed:
        return self

    def __exit__(self, *_: object) -> None:
        pass
