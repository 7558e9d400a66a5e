"""Text fingerprints for the near-duplicate check (CAP-02): extract text, SimHash its shingles.

SimHash over character 4-grams works for Chinese (no word boundaries needed) and for
re-typeset or re-scanned-to-text copies: two texts that share most shingles land within a
few bits. Only the first `MAX_CHARS` characters count: enough to tell two documents apart,
and it bounds the cost per file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterable

logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged PDF is reported by the checks, not the log

MAX_CHARS = 6000
MIN_CHARS = 80  # shorter texts (a title page, a form stub) say too little to compare
MAX_BYTES = 16 * 1024 * 1024  # larger files are not read back for text
MAX_DOCX_XML = 8 * 1024 * 1024  # expanded word/document.xml: a zip bomb must not reach the XML parser
SHINGLE = 4
BITS = 64
NEAR_BITS = 3  # at most this many differing bits = near duplicate; 4 bands of 16 bits find all

TEXT_TYPES = {"text/plain", "text/csv", "application/xml", "application/json", "application/hl7-v2"}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_SPACE = re.compile(r"\s+")


def decode(data: bytes) -> str:
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def extract(mime: str, data: bytes) -> str:
    """Plain text of a file, or "" when its format carries none we can read."""
    if mime in TEXT_TYPES:
        return decode(data[: MAX_CHARS * 4])
    if mime == "application/pdf":
        return _pdf_text(data)
    if mime == DOCX:
        return _docx_text(data)
    return ""


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader  # noqa: PLC0415 - only PDFs pay for the import
    from pypdf.errors import PdfReadError  # noqa: PLC0415

    try:
        reader = PdfReader(io.BytesIO(data))
        parts: list[str] = []
        for page in reader.pages[:20]:
            parts.append(page.extract_text() or "")
            if sum(len(p) for p in parts) > MAX_CHARS:
                break
        return "".join(parts)
    except (PdfReadError, ValueError, KeyError, TypeError, OSError):  # a broken PDF has no text to compare
        return ""


def _docx_text(data: bytes) -> str:
    import zipfile  # noqa: PLC0415

    from docx import Document  # noqa: PLC0415

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            body = archive.getinfo("word/document.xml")
            if body.file_size > MAX_DOCX_XML or sum(i.file_size for i in archive.infolist()) > 4 * MAX_DOCX_XML:
                return ""  # declared sizes are checked before python-docx inflates anything
        return "\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs)
    except (zipfile.BadZipFile, KeyError, ValueError):
        return ""


def normalize(text: str) -> str:
    return _SPACE.sub("", text).lower()[:MAX_CHARS]


def _shingles(text: str) -> Iterable[str]:
    return {text[i : i + SHINGLE] for i in range(max(len(text) - SHINGLE + 1, 0))}


def simhash(text: str) -> int | None:
    """64-bit SimHash (unsigned) of normalized text; None when the text is too short to judge."""
    text = normalize(text)
    if len(text) < MIN_CHARS:
        return None
    weights = [0] * BITS
    for shingle in _shingles(text):
        value = int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "big")
        for bit in range(BITS):
            weights[bit] += 1 if value >> bit & 1 else -1
    return sum(1 << bit for bit, weight in enumerate(weights) if weight > 0)


def bands(value: int) -> tuple[int, int, int, int]:
    return (value & 0xFFFF, value >> 16 & 0xFFFF, value >> 32 & 0xFFFF, value >> 48 & 0xFFFF)


def to_signed(value: int) -> int:
    """Databases store signed 64-bit integers."""
    return value - (1 << 64) if value >= 1 << 63 else value


def to_unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def distance(a: int, b: int) -> int:
    return (to_unsigned(a) ^ to_unsigned(b)).bit_count()
