"""OperationOutcome: how every FHIR error is answered. Pure logic, no Django import.

A `FhirError` carries the HTTP status and one issue per problem found, each naming
the element with a FHIRPath `expression` (e.g. `Bundle.entry[1].resource.status`).
Domain errors of the capture services (`MedarchiveError`) are translated once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medarchive.core.errors import (
    Conflict,
    DuplicateSubmission,
    EmptyFile,
    MedarchiveError,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)

# IssueType codes (http://hl7.org/fhir/issue-type) used here.
INVALID, STRUCTURE, REQUIRED, VALUE = "invalid", "structure", "required", "value"
CODE_INVALID, NOT_SUPPORTED, TOO_LONG, TOO_COSTLY = "code-invalid", "not-supported", "too-long", "too-costly"
BUSINESS_RULE, DUPLICATE, CONFLICT, NOT_FOUND = "business-rule", "duplicate", "conflict", "not-found"
LOGIN, FORBIDDEN, SECURITY, EXCEPTION, THROTTLED = "login", "forbidden", "security", "exception", "throttled"
INFORMATIONAL = "informational"


@dataclass(frozen=True)
class Issue:
    code: str
    diagnostics: str
    expression: str = ""
    severity: str = "error"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = [self.expression]
        return out


@dataclass(eq=False)
class FhirError(Exception):
    """A refusal: the HTTP status and the issues that explain it."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.summary)

    @classmethod
    def of(cls, status: int, code: str, diagnostics: str, expression: str = "") -> FhirError:
        return cls(status, [Issue(code, diagnostics, expression)])

    @property
    def summary(self) -> str:
        return "; ".join(i.diagnostics for i in self.issues)

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    if not issues:
        issues = [Issue(INFORMATIONAL, "All OK", severity="information")]
    return {"resourceType": "OperationOutcome", "issue": [i.as_json() for i in issues]}


def issue_code(exc: MedarchiveError) -> str:
    """The IssueType that names a domain error."""
    for kind, code in (
        (PayloadTooLarge, TOO_LONG),
        (EmptyFile, REQUIRED),
        (DuplicateSubmission, DUPLICATE),
        (Conflict, CONFLICT),
        (NotFound, NOT_FOUND),
        (PermissionDenied, FORBIDDEN),
        (NotAuthenticated, LOGIN),
    ):
        if isinstance(exc, kind):
            return code
    if exc.status >= 500:
        return EXCEPTION
    if exc.field and exc.field.startswith("metadata"):
        return VALUE
    return BUSINESS_RULE if exc.status == 422 else INVALID


def from_domain(exc: MedarchiveError, expression: str = "") -> FhirError:
    """Translate a capture/access error, keeping its status (422, 403, 404, 409, 413 ...)."""
    return FhirError(exc.status, [Issue(issue_code(exc), exc.message, expression)])


def fhir_path(base: str, loc: tuple[int | str, ...]) -> str:
    """`("content", 0, "attachment", "size")` under `DocumentReference` →
    `DocumentReference.content[0].attachment.size`."""
    path = base
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "resource_type":
            path += ".resourceType"
        else:
            path += f".{part}"
    return path
