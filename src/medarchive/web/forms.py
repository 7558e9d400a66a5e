"""Showing a rejected form: every problem at once, beside its field and in a summary at the top."""

from __future__ import annotations

from typing import Any

from medarchive.core.errors import MedarchiveError, Problems


def problems_of(exc: MedarchiveError | None) -> dict[str, Any]:
    """Template context: `errors` (field → messages, "" for the form as a whole) and `error_list`."""
    if exc is None:
        return {"errors": {}, "error_list": []}
    found = exc.problems if isinstance(exc, Problems) else [exc]
    by_field: dict[str, list[str]] = {}
    for problem in found:
        by_field.setdefault(problem.field or "", []).append(problem.message)
    return {
        "errors": by_field,
        "error_list": [{"field": p.field or "", "message": p.message} for p in found],
    }
