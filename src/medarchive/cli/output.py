"""Printing for the CLI: rich for people, stable JSON for scripts, one way to fail."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

console = Console()
errors = Console(stderr=True)

EXIT_CODES = {400: 2, 401: 3, 403: 3, 404: 4, 409: 5, 413: 2, 422: 2, 500: 1}


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n")


def _say(message: str, field: str | None) -> None:
    prefix = f"{field}: " if field and not message.startswith(field) else ""
    errors.print(f"[bold red]error:[/] {escape(prefix + message)}", highlight=False, markup=True)


def fail(message: str, *, code: int = 1, field: str | None = None) -> NoReturn:
    _say(message, field)
    raise SystemExit(code)


def fail_with(exc: Any, *, code: int = 1) -> NoReturn:
    """A domain error: one line per problem (a rejected description names all of them at once)."""
    for problem in getattr(exc, "problems", None) or [exc]:
        _say(problem.message, problem.field)
    raise SystemExit(code)
