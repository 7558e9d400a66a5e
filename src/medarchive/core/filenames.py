"""Rules for names that come from outside: NFC, no path tricks, no control characters.

Pure logic, no Django import. The stored name is NFC; the caller keeps the original as
metadata when it differed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from medarchive.core.errors import ValidationError

MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class CleanName:
    name: str
    original: str

    @property
    def was_normalized(self) -> bool:
        return self.name != self.original


def clean_filename(raw: str, *, field: str = "filename") -> CleanName:
    """Return the NFC form of a bare file name, or raise naming what is wrong with it."""
    if not raw or not raw.strip():
        raise ValidationError("file name is empty", field=field)
    if any(unicodedata.category(ch) in {"Cc", "Cf"} and ch not in "\u200d" for ch in raw):
        raise ValidationError(f"file name {raw!r} contains control characters", field=field)
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise ValidationError(f"file name {raw!r} is an absolute path; send the bare name", field=field)
    parts = raw.replace("\\", "/").split("/")
    if ".." in parts:
        raise ValidationError(f"file name {raw!r} contains '..'", field=field)
    if len(parts) > 1:
        raise ValidationError(f"file name {raw!r} contains a directory separator", field=field)
    if raw in {".", ".."} or raw.strip() != raw:
        raise ValidationError(f"file name {raw!r} is not a usable name", field=field)
    name = unicodedata.normalize("NFC", raw)
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"file name is longer than {MAX_NAME_LENGTH} characters", field=field)
    return CleanName(name=name, original=raw)
