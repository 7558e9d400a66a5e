"""Ciphertext blob storage: the port and its adapters.

`S3Storage` is imported lazily so that local-only deployments and tests do
not pay for importing boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medarchive.preservation.storage.base import (
    ADDRESS_PATTERN,
    BlobStorage,
    StagedWrite,
    check_address,
)
from medarchive.preservation.storage.local import LocalStorage

if TYPE_CHECKING:
    from medarchive.preservation.storage.s3 import S3Storage

__all__ = ["ADDRESS_PATTERN", "BlobStorage", "LocalStorage", "S3Storage", "StagedWrite", "check_address"]


def __getattr__(name: str) -> Any:
    if name == "S3Storage":
        from medarchive.preservation.storage.s3 import S3Storage  # noqa: PLC0415 - lazy on purpose

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
