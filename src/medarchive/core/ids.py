"""Identifiers from outside (URLs, command lines) are parsed once, here."""

from __future__ import annotations

import uuid
from typing import Any

from medarchive.core.errors import NotFound


def parse_uuid(value: Any, *, what: str = "record") -> uuid.UUID:
    """The UUID in `value`, or NotFound: a malformed id names nothing that exists."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"{what} {value} does not exist") from None
