"""Format identification from content, never from the file extension (CAP-03). Pure logic.

Works on the first bytes of a file (the capture pass keeps `HEAD_BYTES` of them while it
encrypts), so identification costs no second read. libmagic was left out on purpose: it
calls DICOM "TIFF" and OFD "zip" (see docs/adr/0003-format-identification.md).
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 64 * 1024


class ContentSample:
    """The first and last bytes of a file, kept while it streams past (no second read)."""

    def __init__(self) -> None:
        self.head = b""
        self.tail = b""

    def feed(self, data: bytes) -> None:
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.tail = (self.tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]


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
        return Format(
            "Office Open XML Document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        )
    if b"xl/" in head:
        return Format("Office Open XML Workbook", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    if b"ppt/" in head:
        return Format(
            "Office Open XML Presentation", "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        )
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


def _pdf(head: bytes) -> Format:
    match = _PDF_VERSION.match(head)
    return Format("PDF", "application/pdf", match.group(1).decode() if match else "")


# (test on the first bytes, format or a function of the head that names the format), first match wins.
_SIGNATURES: list[tuple[Callable[[bytes], bool], Format | Callable[[bytes], Format]]] = [
    # DICOM first: its 128-byte preamble may itself be a TIFF header (dual-personality files).
    (lambda h: h[128:132] == b"DICM", Format("DICOM", "application/dicom")),
    (lambda h: h.startswith(b"%PDF-"), _pdf),
    (lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"), Format("PNG", "image/png", "1.2")),
    (lambda h: h.startswith(b"\xff\xd8\xff"), Format("JPEG", "image/jpeg")),
    (lambda h: h.startswith((b"II*\x00", b"MM\x00*")), Format("TIFF", "image/tiff", "6.0")),
    (lambda h: h.startswith((b"GIF87a", b"GIF89a")), lambda h: Format("GIF", "image/gif", h[3:6].decode())),
    (lambda h: h.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"), Format("JPEG 2000", "image/jp2")),
    (lambda h: h.startswith(b"PK\x03\x04"), _zip_format),
    (
        lambda h: h.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
        Format("OLE2 Compound Document (legacy Office)", "application/x-ole-storage"),
    ),
    (lambda h: h.startswith(b"RIFF") and h[8:12] == b"WAVE", Format("WAVE", "audio/wav")),
    (lambda h: h.startswith(b"ID3") or h[:2] in {b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"}, Format("MP3", "audio/mpeg")),
    (lambda h: h[4:8] == b"ftyp", Format("MPEG-4", "video/mp4")),
    (lambda h: h.startswith(b"\x00\x00\x01\xba"), Format("MPEG-PS", "video/mpeg")),
    (lambda h: h.startswith(b"{\\rtf"), Format("RTF", "application/rtf")),
    (_is_text, _text_format),
]


# `Format.name` is stored with each file (格式名称) and compared in code, so it stays as identified;
# people read these names through the catalog. Proper names (PDF, TIFF, OFD …) read the same everywhere.
FORMAT_LABELS: dict[str, Promise] = {
    UNKNOWN.name: _("Unknown binary"),
    "Office Open XML Document": _("Office Open XML document"),
    "Office Open XML Workbook": _("Office Open XML workbook"),
    "Office Open XML Presentation": _("Office Open XML presentation"),
    "OpenDocument": _("OpenDocument document"),
    "HL7 v2 message": _("HL7 v2 message"),
    "Plain text": _("Plain text"),
    "OLE2 Compound Document (legacy Office)": _("OLE2 compound document (legacy Office)"),
    "JPEG 2000": _("JPEG 2000 image"),
    "WAVE": _("WAVE audio"),
    "MPEG-4": _("MPEG-4 video"),
    "MPEG-PS": _("MPEG program stream"),
}


def format_label(name: str) -> str:
    """A stored format name as people read it, in the active language."""
    found = FORMAT_LABELS.get(name)
    return str(found) if found is not None else name


def identify(head: bytes) -> Format:
    """Identify a file from its first bytes (pass at least HEAD_BYTES when available)."""
    for test, found in _SIGNATURES:
        if test(head):
            return found(head) if callable(found) else found
    return UNKNOWN


_PDF_TOOL = [
    re.compile(rb"<xmp:CreatorTool>([^<]{1,200})</xmp:CreatorTool>"),
    re.compile(rb"/Creator\s*\(((?:[^()\\]|\\.){1,200})\)"),
    re.compile(rb"<pdf:Producer>([^<]{1,200})</pdf:Producer>"),
    re.compile(rb"/Producer\s*\(((?:[^()\\]|\\.){1,200})\)"),
]
_EXIF_SOFTWARE = 0x0131


def _pdf_text(raw: bytes) -> str:
    raw = re.sub(rb"\\([()\\])", rb"\1", raw)
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", errors="replace")
    return raw.decode("utf-8", errors="replace")


def creating_application(fmt: Format, sample: ContentSample) -> str:
    """文档创建程序 (CAP-03) where the file states it in its first or last bytes: PDF (XMP
    CreatorTool, then /Creator, then the producer) and JPEG/TIFF (EXIF Software). Empty otherwise."""
    if fmt.name == "PDF":
        for pattern in _PDF_TOOL:
            for part in (sample.tail, sample.head):  # the info dictionary is usually near the end
                found = pattern.search(part)
                if found:
                    return _pdf_text(found.group(1)).strip()[:200]
        return ""
    if fmt.name in {"JPEG", "TIFF"}:
        try:
            with warnings.catch_warnings():  # corrupt EXIF is the file's problem, not a reason to fail capture
                warnings.simplefilter("ignore")
                from PIL import Image  # noqa: PLC0415 - only images need it; every command imports this module

                with Image.open(io.BytesIO(sample.head)) as image:
                    software = image.getexif().get(_EXIF_SOFTWARE)
        except (OSError, SyntaxError, ValueError):
            return ""
        return str(software).strip("\x00 ")[:200] if software else ""
    return ""
