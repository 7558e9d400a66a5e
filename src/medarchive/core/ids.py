"""Identifiers from outside (URLs, command lines) are parsed once, here."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import NotFound

# What a malformed id was meant to name: (message, code); the value is the detail named after `what`.
_NOT_FOUND: dict[str, tuple[Promise, str]] = {
    "record": (_("The record %(record)s does not exist."), "record_not_found"),
    "volume": (_("The volume %(volume)s does not exist."), "volume_not_found"),
    "submission": (_("The submission %(submission)s does not exist."), "submission_not_found"),
    "upload": (_("The upload %(upload)s does not exist."), "upload_not_found"),
    "Binary": (_("The Binary %(Binary)s does not exist."), "binary_not_found"),
}


def not_found(what: str, value: Any) -> NotFound:
    """The NotFound for an id of `what` (record, volume, submission, upload, Binary)."""
    template, code = _NOT_FOUND[what]
    return NotFound(template, code=code, field=what.lower(), **{what: str(value)})


def parse_uuid(value: Any, *, what: str = "record") -> uuid.UUID:
    """The UUID in `value`, or NotFound: a malformed id names nothing that exists."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise not_found(what, value) from None
