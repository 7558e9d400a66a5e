"""Client file names survive multipart parsing: Django's parser strips any path and some characters from
a file name; the door checks names itself (core/filenames.py) and must see what was sent. Installed by the
capture app at start; kept apart from uploads.py so that start-up does not import the blob store."""

from __future__ import annotations

import html
from typing import Any

from django.http import multipartparser

_original = multipartparser.MultiPartParser.sanitize_file_name


def _keep_name(self: Any, file_name: str) -> str | None:
    raw = html.unescape(file_name).strip()
    if not raw or raw in {".", ".."}:
        return _original(self, file_name)
    return raw


def keep_client_file_names() -> None:
    multipartparser.MultiPartParser.sanitize_file_name = _keep_name  # type: ignore[method-assign]
