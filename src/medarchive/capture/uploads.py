"""How uploaded files reach the capture services.

Django's multipart parser silently turns "../../x.pdf" into "x.pdf". medarchive never uses
a client's file name as a path (blobs are content-addressed), so it keeps the name as
sent and lets `clean_filename` refuse it with a clear error: a hospital system that
sends a bad name should learn so, not have its file silently renamed (multipart.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from medarchive.capture.formats import ContentSample
from medarchive.core.errors import MedarchiveError
from medarchive.preservation.blobstore import StagedBlob
from medarchive.preservation.services import blob_store


class StagedUpload(UploadedFile):
    """An uploaded file that is already encrypted in staging; `staged` is None when it failed.

    Django calls `close()` on every uploaded file when the request ends, so a staged
    upload that no record took is discarded then, not left in staging.
    """

    def __init__(
        self,
        *,
        client_name: str,
        content_type: str | None,
        size: int,
        sample: ContentSample,
        staged: StagedBlob | None,
        error: MedarchiveError | None,
    ) -> None:
        super().__init__(file=None, name=client_name, content_type=content_type, size=size)
        self.client_name = client_name  # UploadedFile.name drops any path part; keep what was sent
        self.sample = sample
        self.staged = staged
        self.error = error

    def open(self, *args: Any, **kwargs: Any) -> StagedUpload:
        raise ValueError("a staged upload is read back only through the blob store")

    def close(self) -> None:
        if self.staged is not None and self.staged.created is None:
            self.staged.discard()


class EncryptingUploadHandler(FileUploadHandler):
    """Encrypts and hashes each uploaded file as its chunks arrive (hash once, never plaintext on disk)."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._sample = ContentSample()
        self._error: MedarchiveError | None = None
        self._writer = blob_store().writer(max_bytes=settings.CONFIG.max_upload_bytes)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self._error is None:
            self._sample.feed(raw_data)
            try:
                self._writer.write(raw_data)
            except MedarchiveError as exc:  # over the size limit: keep reading the request, store nothing
                self._writer.abort()
                self._error = exc
        return None

    def file_complete(self, file_size: int) -> StagedUpload:
        staged = None
        if self._error is None:
            try:
                staged = self._writer.finish()
            except MedarchiveError as exc:
                self._error = exc
        return StagedUpload(
            client_name=self.file_name or "",
            content_type=self.content_type,
            size=file_size,
            sample=self._sample,
            staged=staged,
            error=self._error,
        )

    def upload_interrupted(self) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.abort()
