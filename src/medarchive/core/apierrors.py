"""The API's own refusals (bodies, methods, authentication, size), as domain errors: every one of them
answers with the one Problem body. Used by the API root, the routers that read a body themselves and
the body gate in front of the server."""

from __future__ import annotations

import json
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from medarchive.core.errors import MedarchiveError, NotAuthenticated, PayloadTooLarge, ValidationError


class BadRequest(ValidationError):
    status = 400
    code = "bad_request"


class MethodNotAllowed(MedarchiveError):
    status = 405
    code = "method_not_allowed"


class NotAnObject(ValueError):
    """A JSON body that parsed, but is not an object."""

    def __init__(self, value: Any) -> None:
        self.kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
        super().__init__(self.kind)


def load_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON body that must be an object; raises json/Unicode errors or `NotAnObject`.

    NUL in a string is left to the schemas (their text patterns refuse control characters): a field the
    operation does not know is ignored, whatever it holds."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise NotAnObject(data)
    return data


def body_problem(cause: BaseException | None) -> MedarchiveError:
    """Why a JSON body could not be read, naming the body: 400 unparseable, 422 not an object."""
    if isinstance(cause, NotAnObject):
        return ValidationError(
            gettext_lazy("The body must be a JSON object, not %(kind)s."),
            code="not_an_object",
            field="body",
            kind=cause.kind,
        )
    if isinstance(cause, json.JSONDecodeError):
        return BadRequest(
            gettext_lazy("The body is not valid JSON: %(reason)s at position %(position)s."),
            code="invalid_json",
            field="body",
            reason=cause.msg,
            position=cause.pos,
        )
    return BadRequest(
        gettext_lazy("The body is not valid JSON (it must be UTF-8 text)."), code="invalid_json", field="body"
    )


def parse_object(raw: bytes) -> dict[str, Any]:
    """`load_object`, its failures as the Problem that names the body."""
    try:
        return load_object(raw)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and NotAnObject are ValueErrors
        raise body_problem(exc) from None


def load_json_field(raw: str, *, field: str, code: str, template: Promise) -> Any:
    """A form field that holds JSON; a syntax error names the field, with `template`'s %(reason)s and
    %(position)s filled from the parser."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError(template, code=code, field=field, reason=exc.msg, position=exc.pos) from None


def unauthenticated() -> NotAuthenticated:
    return NotAuthenticated(
        gettext_lazy("Authentication required: send Authorization: Bearer <token>."), field="Authorization"
    )


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        gettext_lazy("The request body is larger than the limit of %(limit)s bytes."), field="body", limit=limit
    )
