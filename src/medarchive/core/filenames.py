"""Rules for names that come from outside: NFC, no path tricks, no control characters.

Pure logic (the messages are lazy catalog entries). The stored name is NFC; the caller keeps
the original as metadata when it differed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import ValidationError

MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class CleanName:
    name: str
    original: str

    @property
    def was_normalized(self) -> bool:
        return self.name != self.original


def _visible(raw: str) -> str:
    """The name with its invisible characters shown as escapes (the old messages used repr)."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in raw)


def clean_filename(raw: str, *, field: str = "filename") -> CleanName:
    """Return the NFC form of a bare file name, or raise naming what is wrong with it."""
    if not raw or not raw.strip():
        raise ValidationError(_("The file name is empty."), code="empty_filename", field=field)
    if any(unicodedata.category(ch) in {"Cc", "Cf"} and ch not in "\u200d" for ch in raw):
        raise ValidationError(
            _("The file name %(name)s contains control characters."),
            code="control_characters",
            field=field,
            name=_visible(raw),
        )
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise ValidationError(
            _("The file name %(name)s is an absolute path; send the bare name."),
            code="unsafe_filename",
            field=field,
            name=raw,
        )
    parts = raw.replace("\\", "/").split("/")
    if ".." in parts:
        raise ValidationError(_("The file name %(name)s contains '..'."), code="unsafe_filename", field=field, name=raw)
    if len(parts) > 1:
        raise ValidationError(
            _("The file name %(name)s contains a directory separator."), code="unsafe_filename", field=field, name=raw
        )
    if raw in {".", ".."} or raw.strip() != raw:
        raise ValidationError(
            _("The file name %(name)s is not a usable name (no leading or trailing spaces)."),
            code="unsafe_filename",
            field=field,
            name=raw,
        )
    name = unicodedata.normalize("NFC", raw)
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            _("The file name is longer than %(limit)s characters."), code="too_long", field=field, limit=MAX_NAME_LENGTH
        )
    return CleanName(name=name, original=raw)
