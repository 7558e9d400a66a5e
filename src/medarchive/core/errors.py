"""Domain errors: one base class, a stable code and fields instead of formatted strings.

Every input (API, web, CLI) maps these once: `status` is the HTTP status, `code` is a
stable machine name (`unknown_class`, `implausible_date`), `field` names the offending
input when there is one. The message is a catalog template (`gettext_lazy`) with
`%(name)s` placeholders filled from the error's details, so the same error reads in
the user's language wherever it is shown: `exc.message` renders it in the active one.
A plain string is shown as it is (protocol peers, tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.functional import Promise


class MedarchiveError(Exception):
    status = 400
    code = "invalid"

    def __init__(
        self, message: str | Promise, *, code: str | None = None, field: str | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.template: str | Promise = message
        if code is not None:
            self.code = code
        self.field = field
        self.details = details

    @property
    def message(self) -> str:
        """The message in the active language, its placeholders filled from the details."""
        text = str(self.template)
        if isinstance(self.template, Promise) and "%(" in text:
            try:
                return text % _Params(self.details)
            except (KeyError, TypeError, ValueError):
                return text
        return text

    @message.setter
    def message(self, value: str | Promise) -> None:
        self.template = value
        self.args = (value,)

    def __str__(self) -> str:
        return self.message

    def as_problem(self) -> dict[str, Any]:
        """The one error body every API and report uses: code, message, field (and details)."""
        problem: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field or ""}
        shown = {k: v for k, v in self.details.items() if k not in _PRIVATE}
        if shown:
            problem["details"] = shown
        return problem


# Kept for the audit trail and the server log, never sent to a client.
_PRIVATE = frozenset({"actor_id"})


class _Params(dict[str, Any]):
    """Placeholder values as text; a list reads as a comma-separated list."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, list | tuple | set | frozenset):
            return "、".join(str(v) for v in value)
        if isinstance(value, Promise):
            return str(value)
        return value


class ValidationError(MedarchiveError):
    """Input that names something wrong: a field, a filename, a value."""

    status = 422
    code = "validation_error"


class Problems(ValidationError):
    """Everything wrong with one input, found at once: a form lists every problem beside its field.

    Carries the first problem's code, message and field (so a caller that reads one still
    reads something true) and all of them in `problems`.
    """

    def __init__(self, problems: Iterable[MedarchiveError]) -> None:
        self.problems = list(problems)
        if not self.problems:
            raise ValueError("Problems needs at least one problem")
        first = self.problems[0]
        super().__init__(first.template, code=first.code, field=first.field, **first.details)
        self.status = max(p.status for p in self.problems)

    def as_problem(self) -> dict[str, Any]:
        problem = super().as_problem()
        problem["errors"] = [p.as_problem() for p in self.problems]
        return problem

    def by_field(self) -> dict[str, list[str]]:
        fields: dict[str, list[str]] = {}
        for p in self.problems:
            fields.setdefault(p.field or "", []).append(p.message)
        return fields


class Collector:
    """Gathers validation problems so a form reports all of them at once.

    `with collector.check(): ...` runs one check and keeps its ValidationError;
    `collector.raise_if_any()` raises them together as `Problems`.
    """

    def __init__(self) -> None:
        self.problems: list[MedarchiveError] = []

    def add(self, error: MedarchiveError) -> None:
        if isinstance(error, Problems):
            self.problems.extend(error.problems)
        else:
            self.problems.append(error)

    def check(self) -> _Catch:
        return _Catch(self)

    def raise_if_any(self) -> None:
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            raise Problems(self.problems)


class _Catch:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, ValidationError):
            self.collector.add(exc)
            return True
        return False


class NotFound(MedarchiveError):
    status = 404
    code = "not_found"


class PermissionDenied(MedarchiveError):
    status = 403
    code = "permission_denied"


class NotAuthenticated(MedarchiveError):
    status = 401
    code = "not_authenticated"


class Conflict(MedarchiveError):
    """The request is valid but clashes with the current state (e.g. immutable record)."""

    status = 409
    code = "conflict"


class DuplicateSubmission(Conflict):
    code = "duplicate_submission"


class PayloadTooLarge(ValidationError):
    status = 413
    code = "payload_too_large"


class EmptyFile(ValidationError):
    code = "empty_file"


class IntegrityFailure(MedarchiveError):
    """Stored content or metadata does not match what was recorded (fixity, audit chain)."""

    status = 500
    code = "integrity_failure"


class InternalError(MedarchiveError):
    """Something failed that the caller cannot fix; the details are in the server log."""

    status = 500
    code = "internal_error"


class ConfigurationError(MedarchiveError):
    status = 500
    code = "configuration_error"


class Unavailable(MedarchiveError):
    """This process cannot serve now (a dependency is down); a load balancer sends the request elsewhere."""

    status = 503
    code = "not_ready"
