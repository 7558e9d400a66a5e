"""OperationOutcome, the translation of domain errors, and the ValueSets (pure)."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from medarchive.capture.fhir import valueset as vs
from medarchive.capture.fhir.outcome import FhirError, Issue, fhir_path, from_domain, operation_outcome
from medarchive.core.errors import (
    Conflict,
    DuplicateSubmission,
    EmptyFile,
    IntegrityFailure,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ValidationError,
)


def test_an_outcome_is_a_valid_r4_operation_outcome() -> None:
    error = FhirError(
        422,
        [
            Issue("code-invalid", "status 'x' is not allowed", "DocumentReference.status"),
            Issue("required", "date is required", "DocumentReference.date"),
        ],
    )
    body = error.outcome()
    model = OperationOutcome.model_validate(body)
    assert [i.code for i in model.issue] == ["code-invalid", "required"]
    assert model.issue[0].expression == ["DocumentReference.status"]
    assert error.summary == "status 'x' is not allowed; date is required"
    assert str(error) == error.summary
    OperationOutcome.model_validate(operation_outcome([]))  # "All OK" when there is nothing to say


def test_an_issue_without_expression_has_none() -> None:
    assert "expression" not in Issue("login", "authentication required").as_json()


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (PayloadTooLarge("too big"), 413, "too-long"),
        (EmptyFile("empty"), 422, "required"),
        (DuplicateSubmission("again"), 409, "duplicate"),
        (Conflict("busy"), 409, "conflict"),
        (NotFound("gone"), 404, "not-found"),
        (PermissionDenied("no"), 403, "forbidden"),
        (NotAuthenticated("who"), 401, "login"),
        (IntegrityFailure("broken"), 500, "exception"),
        (ValidationError("bad patient id", field="metadata.patient_id"), 422, "value"),
        (ValidationError("unknown class", field="class"), 422, "business-rule"),
    ],
)
def test_domain_errors_keep_their_status_and_get_an_issue_type(exc: Exception, status: int, code: str) -> None:
    error = from_domain(exc, "DocumentReference")  # type: ignore[arg-type]
    assert (error.status, error.issues[0].code) == (status, code)
    assert error.issues[0].expression == "DocumentReference"


def test_fhir_paths_follow_the_fhirpath_notation() -> None:
    assert fhir_path("DocumentReference", ("content", 0, "attachment", "size")) == (
        "DocumentReference.content[0].attachment.size"
    )
    assert fhir_path("Bundle.entry[1].resource", ("resource_type",)) == "Bundle.entry[1].resource.resourceType"


@pytest.mark.parametrize(
    ("declared", "identified", "match"),
    [
        ("application/pdf", "application/pdf", True),
        ("Application/PDF; charset=binary", "application/pdf", True),
        ("application/x-pdf", "application/pdf", True),
        ("image/jpg", "image/jpeg", True),
        ("text/xml", "application/xml", True),
        ("text/plain", "text/csv", True),  # text is told apart by heuristics
        ("application/json", "text/plain", True),
        ("application/zip", "application/ofd", True),  # an OFD is a zip
        ("application/pdf", "image/png", False),
        ("image/png", "application/pdf", False),
        ("application/octet-stream", "application/pdf", False),
        ("text/plain", "application/pdf", False),
        ("application/ofd", "application/zip", False),
    ],
)
def test_media_types_match_the_identified_format(declared: str, identified: str, match: bool) -> None:
    assert vs.media_types_match(declared, identified) is match


def test_valuesets_are_consistent() -> None:
    assert vs.is_patient_class("BA") and vs.is_patient_class("BA-ZY") and not vs.is_patient_class("BAX")
    assert all(t.class_code == "BA" or t.class_code.startswith("BA-") for t in vs.DOCUMENT_TYPES.values())
    assert set(vs.SECURITY_FROM_CONFIDENTIALITY.values()) <= set(vs.CONFIDENTIALITY_OF_SECURITY)
    assert set(vs.CONFIDENTIALITY_OF_SECURITY.values()) <= set(vs.CONFIDENTIALITY_DISPLAY)
    # Every 密级 survives a round trip out and back in, except 绝密, which HL7 has no word for.
    for level, code in vs.CONFIDENTIALITY_OF_SECURITY.items():
        back = vs.SECURITY_FROM_CONFIDENTIALITY[code]
        assert back == level or (level, back) == ("绝密", "机密")
