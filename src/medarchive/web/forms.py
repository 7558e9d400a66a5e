"""Showing a rejected form: every problem at once, beside its field and in a summary at the top."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medarchive.core.errors import MedarchiveError, Problems


def _same(field: str) -> str:
    return field


def problems_of(
    exc: MedarchiveError | None, field_of: Callable[[str], str] = _same, anchor_of: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """Template context: `errors` (form field → messages, "" for the form as a whole) and `error_list`.

    `field_of` maps a service's field name to the form's (`metadata.pages` → `metadata`); `anchor_of`
    maps the form's field to the id of its element when they differ (the summary links to it)."""
    if exc is None:
        return {"errors": {}, "error_list": []}
    found = exc.problems if isinstance(exc, Problems) else [exc]
    by_field: dict[str, list[str]] = {}
    listed = []
    for problem in found:
        field = field_of(problem.field or "")
        by_field.setdefault(field, []).append(problem.message)
        anchor = anchor_of(field) if anchor_of else field
        listed.append({"field": field, "anchor": anchor, "message": problem.message})
    return {"errors": by_field, "error_list": listed}
