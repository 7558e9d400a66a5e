"""Domain errors: one base class, fields instead of formatted strings.

Every input (API, web, CLI) maps these once: `status` is the HTTP status, `code`
is a stable machine name, `field` names the offending input when there is one.
"""

from __future__ import annotations

from typing import Any


class MedarchiveError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def as_problem(self) -> dict[str, Any]:
        problem: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            problem["field"] = self.field
        if self.details:
            problem["details"] = self.details
        return problem


class ValidationError(MedarchiveError):
    """Input that names something wrong: a field, a filename, a value."""

    status = 422
    code = "validation_error"


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
