"""The whole capture → read → fixity → rotate path with blobs in S3 (moto server over HTTP)."""

from __future__ import annotations

import dataclasses
import io
import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from medarchive.access.services import read_content
from medarchive.capture.services import Description, IncomingFile, create_record
from medarchive.preservation import services as preservation


@pytest.fixture
def s3_archive(settings: Any, s3_endpoint: str, bucket: str) -> Iterator[str]:
    settings.CONFIG = dataclasses.replace(
        settings.CONFIG, storage="s3", s3_bucket=bucket, s3_endpoint_url=s3_endpoint, s3_prefix="z001/"
    )
    preservation.reset_blob_store()
    yield bucket
    preservation.reset_blob_store()


def test_records_live_in_s3_encrypted_and_verifiable(users: dict[str, Any], s3_archive: str, s3_endpoint: str) -> None:
    marker = b"S3-PLAINTEXT-" + secrets.token_hex(8).encode()
    body = marker + secrets.token_bytes(3 * 1024 * 1024) + marker
    desc = Description(class_code="WS", department_code="BGS", title="对象存储测试", date="2025-08-08")
    record = create_record(desc, [IncomingFile(name="大文件.pdf", stream=io.BytesIO(body))], actor=users["archivist"])
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    objects = client.list_objects_v2(Bucket=s3_archive, Prefix="z001/")["Contents"]
    assert [o["Key"] for o in objects] == [f"z001/{record.components.get().blob_id}"]
    stored = client.get_object(Bucket=s3_archive, Key=objects[0]["Key"])["Body"].read()
    assert marker not in stored
    assert b"".join(read_content(users["archivist"], record.pk).chunks) == body
    assert preservation.verify_fixity(actor=None, record_id=record.pk).ok
    preservation.rotate_keys(actor=None)
    assert b"".join(read_content(users["archivist"], record.pk).chunks) == body
