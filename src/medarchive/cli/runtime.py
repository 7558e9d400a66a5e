"""Django setup and the `--as USERNAME` actor for commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from medarchive.cli.output import EXIT_CODES, fail, fail_with

F = TypeVar("F", bound=Callable[..., Any])
_ready = False


def setup(*, migrate: bool = False) -> None:
    global _ready
    if not _ready:
        import os

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medarchive.settings")
        django.setup()
        from medarchive.security import context

        context.source.set("cli")
        _ready = True
    if migrate:
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)


def ensure_initialised() -> None:
    from django.db import connection

    if "archiving_record" not in connection.introspection.table_names():
        fail("this data directory is not initialised; run `medarchive init` first", code=2)
    check_durability()


def check_durability() -> None:
    """Warn when the database could lose acknowledged commits in a power cut; refuse in production."""
    from django.conf import settings

    from medarchive.cli.output import errors
    from medarchive.preservation.durability import problems

    found = problems()
    if not found:
        return
    if settings.CONFIG.production:
        fail("the database is not durable: " + "; ".join(found), code=2)
    for problem in found:
        errors.print(f"[yellow]warning:[/] {problem}", highlight=False)


def actor(username: str | None) -> Any:
    """The user a command acts as; None means the local operator (bootstrap and system jobs)."""
    if username is None:
        return None
    from medarchive.security.models import User

    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        fail(f"no active user {username!r}", code=3, field="--as")
    return user


def handles_errors(func: F) -> F:
    """Map domain errors to one clear line on stderr and a stable exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from medarchive.core.errors import MedarchiveError, PermissionDenied

        try:
            return func(*args, **kwargs)
        except PermissionDenied as exc:
            from medarchive.security import audit

            audit.record_refusal(exc)
            fail_with(exc, code=EXIT_CODES[exc.status])
        except MedarchiveError as exc:
            fail_with(exc, code=EXIT_CODES.get(exc.status, 1))

    return wrapper  # type: ignore[return-value]
