"""Resumable uploads for large files: create, append pieces at an offset, resume after a break.

The protocol is deliberately small (the core of tus 1.0): `POST /uploads` declares name and
size; `PATCH /uploads/{id}` with `Upload-Offset` appends the request body; `GET` tells the
offset to resume from. Pieces are sealed frames (AES-256-GCM, or SM4-GCM per configuration) under a
per-upload data key, so nothing reaches the disk in plaintext; frames carry their offset as
associated data, so a reordered or replaced frame does not decrypt. The finished upload is
read back as a stream and captured by the usual service (one more encrypt+hash pass: the
price of keeping every capture on one code path).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy

from medarchive.capture.models import Upload
from medarchive.core import clock, private
from medarchive.core.errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from medarchive.core.filenames import clean_filename
from medarchive.core.ids import parse_uuid
from medarchive.preservation.crypto import CipherSuite, aead_decrypt, aead_encrypt
from medarchive.preservation.services import blob_store
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action

FRAME = 1024 * 1024
_HEADER = struct.Struct(">QI")  # offset, sealed length
STALE_AFTER = dt.timedelta(days=2)


def _dir(upload_id: Any) -> Path:
    return Path(settings.CONFIG.data_dir) / "uploads" / str(upload_id)


def _suite() -> CipherSuite:
    return CipherSuite(settings.CONFIG.cipher)


def start(*, actor: User, filename: str, size: int) -> Upload:
    require(actor, Action.RECORD_CREATE)
    name = clean_filename(filename, field="filename").name
    if size <= 0:
        raise ValidationError(
            gettext_lazy("An empty file cannot be uploaded: the size must be more than 0 bytes."),
            code="empty_upload",
            field="size",
        )
    if size > settings.CONFIG.max_upload_bytes:
        raise PayloadTooLarge(
            gettext_lazy("The file has %(size)s bytes, more than the limit of %(max_bytes)s bytes."),
            code="payload_too_large",
            field="size",
            size=size,
            max_bytes=settings.CONFIG.max_upload_bytes,
        )
    key_id, wrapped = blob_store().keyring.wrap(secrets.token_bytes(_suite().key_size))
    upload = Upload.objects.create(filename=name, size=size, key_id=key_id, wrapped_key=wrapped, created_by=actor)
    private.make_dir(_dir(upload.pk))
    return upload


def get(actor: User, upload_id: Any) -> Upload:
    """Only its creator sees an upload (nobody else could even guess its id, but we do not rely on that)."""
    found = Upload.objects.filter(pk=parse_uuid(upload_id), created_by=actor).first()
    if found is None:
        raise _no_upload(upload_id)
    return found


def _no_upload(upload_id: Any) -> NotFound:
    return NotFound(
        gettext_lazy("There is no upload %(upload)s of yours: start the upload again."),
        code="upload_not_found",
        upload=str(upload_id),
    )


def _used(upload: Upload) -> Conflict:
    return Conflict(
        gettext_lazy(
            "Upload %(upload)s was already used by a submission: to use the file for another record, upload it again."
        ),
        code="upload_used",
        field="upload",
        upload=str(upload.pk),
    )


def _past_size(upload: Upload) -> PayloadTooLarge:
    return PayloadTooLarge(
        gettext_lazy("This piece goes past the file's declared size of %(size)s bytes."),
        code="past_declared_size",
        field="body",
        size=upload.size,
    )


def append(actor: User, upload_id: Any, *, offset: int, body: IO[bytes], length: int | None) -> Upload:
    """Append the bytes of `body` at `offset` (which must be where the upload stands).

    The body is read and sealed outside any transaction (a slow client must not hold the
    database's write lock); a short transaction then checks the offset has not moved and
    publishes the piece by renaming it. A piece that fails half-way is dropped whole; an empty
    piece changes nothing (as in tus: the answer tells where the upload stands)."""
    upload = _appendable(actor, upload_id, offset=offset, length=length)
    key = blob_store().keyring.unwrap(upload.key_id, bytes(upload.wrapped_key))
    temporary = _dir(upload.pk) / f"{offset:016d}.{secrets.token_hex(6)}.tmp"
    try:
        written = _seal_into(temporary, upload, key, offset=offset, body=body)
        if written == 0:
            return upload
        with transaction.atomic():
            upload = _appendable(actor, upload_id, offset=offset, length=written, lock=True)
            os.replace(temporary, _dir(upload.pk) / f"{offset:016d}.part")
            upload.offset += written
            upload.save(update_fields=["offset"])
    finally:
        temporary.unlink(missing_ok=True)
    return upload


def _appendable(actor: User, upload_id: Any, *, offset: int, length: int | None, lock: bool = False) -> Upload:
    qs = Upload.objects.select_for_update() if lock else Upload.objects
    upload = qs.filter(pk=parse_uuid(upload_id), created_by=actor).first()
    if upload is None:
        raise _no_upload(upload_id)
    if upload.used_at is not None:
        raise _used(upload)
    if offset != upload.offset:
        raise Conflict(
            gettext_lazy(
                "This piece starts at byte %(sent)s, but %(offset)s bytes have arrived so far: "
                "send the piece that starts at byte %(offset)s."
            ),
            code="offset_mismatch",
            field="Upload-Offset",
            offset=upload.offset,
            sent=offset,
        )
    if length is not None and upload.offset + length > upload.size:
        raise _past_size(upload)
    return upload


def _seal_into(path: Path, upload: Upload, key: bytes, *, offset: int, body: IO[bytes]) -> int:
    written = 0
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        while piece := body.read(FRAME):
            if upload.offset + written + len(piece) > upload.size:
                raise _past_size(upload)
            at = offset + written
            nonce = secrets.token_bytes(12)
            sealed = aead_encrypt(_suite(), key, nonce, piece, _aad(upload, at))
            out.write(_HEADER.pack(at, len(sealed)) + nonce + sealed)
            written += len(piece)
        out.flush()
        os.fsync(out.fileno())
    return written


def _aad(upload: Upload, offset: int) -> bytes:
    return f"medarchive-upload:{upload.pk}:{offset}".encode()


class UploadReader:
    """The finished upload as a plaintext stream, piece by piece."""

    def __init__(self, upload: Upload) -> None:
        self.upload = upload
        self._frames = self._iter(upload)
        self._buffer = b""

    @staticmethod
    def _iter(upload: Upload) -> Iterator[bytes]:
        key = blob_store().keyring.unwrap(upload.key_id, bytes(upload.wrapped_key))
        expected = 0
        for part in sorted(_dir(upload.pk).glob("*.part")):  # published pieces only, never *.tmp
            with open(part, "rb") as handle:
                while header := handle.read(_HEADER.size):
                    at, length = _HEADER.unpack(header)
                    if at != expected:
                        raise Conflict(
                            gettext_lazy(
                                "Upload %(upload)s is missing the bytes from byte %(missing_from)s: "
                                "upload the file again."
                            ),
                            code="upload_gap",
                            field="upload",
                            upload=str(upload.pk),
                            missing_from=expected,
                        )
                    nonce, sealed = handle.read(12), handle.read(length)
                    plain = aead_decrypt(_suite(), key, nonce, sealed, _aad(upload, at))
                    expected += len(plain)
                    yield plain
        if expected != upload.size:
            raise _incomplete(upload, expected)

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._frames, None)
            if piece is None:
                break
            self._buffer += piece
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def take(actor: User, upload_id: Any) -> tuple[Upload, IO[bytes]]:
    """Reserve a completed upload for a submission; returns it and a plaintext stream of it.

    The reservation (`used_at`) is taken atomically, so one upload never feeds two records; a
    submission whose record is refused gives it back with `release`."""
    upload = get(actor, upload_id)
    if not upload.complete:
        raise _incomplete(upload, upload.offset)
    reserved = Upload.objects.filter(pk=upload.pk, used_at__isnull=True).update(used_at=clock.now())
    if not reserved:
        raise _used(upload)
    return upload, UploadReader(upload)  # type: ignore[return-value]


def _incomplete(upload: Upload, received: int) -> Conflict:
    return Conflict(
        gettext_lazy(
            "Upload %(upload)s is incomplete: %(offset)s of %(size)s bytes have arrived. "
            "Finish the upload before submitting it."
        ),
        code="upload_incomplete",
        field="upload",
        upload=str(upload.pk),
        offset=received,
        size=upload.size,
    )


def release(upload: Upload) -> None:
    """Give a reserved upload back (its record was refused): the corrected record may use it."""
    Upload.objects.filter(pk=upload.pk).update(used_at=None)


def finish(upload: Upload) -> None:
    """Drop the pieces once the record holding the content is committed (the upload stays used)."""
    shutil.rmtree(_dir(upload.pk), ignore_errors=True)


def purge_stale() -> str:
    """Periodic: drop uploads abandoned for STALE_AFTER (their pieces are useless without the client)."""
    cutoff = clock.now() - STALE_AFTER
    stale = list(Upload.objects.filter(created_at__lt=cutoff, used_at__isnull=True).values_list("pk", flat=True))
    for upload_id in stale:
        shutil.rmtree(_dir(upload_id), ignore_errors=True)
    Upload.objects.filter(pk__in=stale).delete()
    return f"{len(stale)} abandoned upload(s) removed"
