"""Format identification from content, never from the file extension (CAP-03). Pure logic.

Works on the first bytes of a file (the capture pass keeps `HEAD_BYTES` of them while it
encrypts), so identification costs no second read. libmagic was left out on purpose: it
calls DICOM "TIFF" and OFD "zip" (see docs/adr/0003-format-identification.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Format:
    name: str
    mime: str
    version: str = ""


UNKNOWN = Format("Unknown binary", "application/octet-stream")
_PDF_VERSION = re.compile(rb"%PDF-(\d\.\d)")


def _zip_format(head: bytes) -> Format:
    # Member names of the first local headers are in the head; OOXML and OFD are recognised by them.
    if b"OFD.xml" in head:
        return Format("OFD", "application/ofd", "1.0")
    if b"word/" in head:
        return Format("Office Open XML Document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    if b"xl/" in head:
        return Format("Office Open XML Workbook", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    if b"ppt/" in head:
        return Format("Office Open XML Presentation",
                      "application/vnd.openxmlformats-officedocument.presentationml.presentation")
    if b"mimetypeapplication/vnd.oasis.opendocument" in head:
        return Format("OpenDocument", "application/vnd.oasis.opendocument")
    return Format("ZIP", "application/zip")


def _text_format(head: bytes) -> Format:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"MSH|"):
        return Format("HL7 v2 message", "application/hl7-v2")
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<"):
        return Format("XML", "application/xml")
    if stripped.startswith((b"{", b"[")):
        return Format("JSON", "application/json")
    first_line = stripped.split(b"\n", 1)[0]
    if first_line.count(b",") >= 1:
        return Format("CSV", "text/csv")
    return Format("Plain text", "text/plain")


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the head is still text.
        if exc.start < len(head) - 3:
            try:
                head.decode("gb18030")
            except UnicodeDecodeError:
                return False
    return True


def identify(head: bytes) -> Format:
    """Identify a file from its first bytes (pass at least HEAD_BYTES when available)."""
    if head.startswith(b"%PDF-"):
        match = _PDF_VERSION.match(head)
        return Format("PDF", "application/pdf", match.group(1).decode() if match else "")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Format("PNG", "image/png", "1.2")
    if head.startswith(b"\xff\xd8\xff"):
        return Format("JPEG", "image/jpeg")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return Format("TIFF", "image/tiff", "6.0")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Format("GIF", "image/gif", head[3:6].decode())
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return Format("JPEG 2000", "image/jp2")
    if len(head) >= 132 and head[128:132] == b"DICM":
        return Format("DICOM", "application/dicom")
    if head.startswith(b"PK\x03\x04"):
        return _zip_format(head)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return Format("OLE2 Compound Document (legacy Office)", "application/x-ole-storage")
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return Format("WAVE", "audio/wav")
    if head.startswith(b"ID3") or head[:2] in {b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"}:
        return Format("MP3", "audio/mpeg")
    if head[4:8] == b"ftyp":
        return Format("MPEG-4", "video/mp4")
    if head.startswith(b"\x00\x00\x01\xba"):
        return Format("MPEG-PS", "video/mpeg")
    if head.startswith(b"{\\rtf"):
        return Format("RTF", "application/rtf")
    if _is_text(head):
        return _text_format(head)
    return UNKNOWN
