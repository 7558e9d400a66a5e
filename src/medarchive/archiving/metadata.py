"""Validation and masking of the versioned extra metadata (JSON schema). Pure logic."""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import Collector, ValidationError

if TYPE_CHECKING:
    import jsonschema
from medarchive.core.labels import Listed, with_labels

CURRENT_SCHEMA = "record-metadata-v1"
MASK = "***"


@cache
def schema(name: str = CURRENT_SCHEMA) -> dict[str, Any]:
    text = resources.files("medarchive.archiving").joinpath("data", f"{name}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def personal_identifiers(name: str = CURRENT_SCHEMA) -> frozenset[str]:
    return frozenset(schema(name).get("x-personal-identifiers", []))


# JSON types as people read them, for "pages must be a whole number".
TYPE_LABELS: dict[str, Promise] = {
    "integer": _("a whole number"),
    "number": _("a number"),
    "string": _("text"),
    "array": _("a list"),
    "boolean": _("true or false"),
    "object": _("a set of names and values"),
    "null": _("empty"),
}


def key_label(key: str, *, name: str = CURRENT_SCHEMA) -> Any:
    """A metadata key as people read it: the schema's title (页数), else the key itself."""
    return schema(name)["properties"].get(key, {}).get("title", key)


def _kind(types: Any) -> Listed:
    names = types if isinstance(types, list) else [types]
    return Listed([TYPE_LABELS.get(str(t), str(t)) for t in names], alternatives=True)


def validate(metadata: Any, *, name: str = CURRENT_SCHEMA) -> dict[str, Any]:
    """Return the metadata when it fits the schema, else raise naming every bad field (`Problems`)."""
    if not isinstance(metadata, dict):
        raise ValidationError(
            with_labels(_("%(label)s must be %(kind)s."), label=_("扩展元数据"), kind=TYPE_LABELS["object"]),
            code="wrong_type",
            field="metadata",
        )
    problems = Collector()
    for bad in _non_finite(metadata):
        problems.add(
            ValidationError(
                with_labels(
                    _("%(label)s: NaN and infinite numbers are not allowed."), label=key_label(bad.split(".")[0])
                ),
                code="not_finite",
                field=f"metadata.{bad}",
            )
        )
    problems.raise_if_any()
    import jsonschema  # noqa: PLC0415 - 35 ms of every command's start-up, needed only to validate

    validator = jsonschema.Draft202012Validator(schema(name), format_checker=jsonschema.FormatChecker())
    for error in sorted(validator.iter_errors(metadata), key=lambda e: [str(p) for p in e.absolute_path]):
        problems.add(_problem(error, name))
    problems.raise_if_any()
    return dict(metadata)


# Bounds of the schema (validator: message, code, the detail that holds the bound).
_BOUNDS: dict[str, tuple[Promise, str, str]] = {
    "maxLength": (_("%(label)s is longer than %(limit)s characters."), "too_long", "limit"),
    "minimum": (_("%(label)s must be at least %(minimum)s."), "below_minimum", "minimum"),
    "maximum": (_("%(label)s must be at most %(maximum)s."), "above_maximum", "maximum"),
}


def _problem(error: jsonschema.ValidationError, name: str) -> ValidationError:
    """One schema violation in the catalog's words (jsonschema's own messages are for developers)."""
    path = [str(p) for p in error.absolute_path]
    field = ".".join(["metadata", *path])
    shown = key_label(path[0], name=name) if path else _("扩展元数据")
    kind, value = error.validator, error.validator_value
    if kind == "type":
        return ValidationError(
            with_labels(_("%(label)s must be %(kind)s."), label=shown, kind=_kind(value)),
            code="wrong_type",
            field=field,
        )
    if kind in _BOUNDS:
        template, code, key = _BOUNDS[kind]
        return ValidationError(with_labels(template, label=shown), code=code, field=field, **{key: value})
    if kind == "format" and value == "date":
        return ValidationError(
            with_labels(_("%(label)s: %(value)s is not a date of the form YYYY-MM-DD."), label=shown),
            code="bad_date",
            field=field,
            value=str(error.instance),
        )
    if kind == "enum":
        return ValidationError(
            with_labels(_("%(label)s must be one of %(choices)s (not %(value)s)."), label=shown),
            code="invalid_choice",
            field=field,
            value=str(error.instance),
            choices=[str(v) for v in value],
        )
    return ValidationError(
        with_labels(_("%(label)s holds a value of a kind the archive cannot store."), label=shown),
        code="invalid_metadata",
        field=field,
    )


def _non_finite(value: Any, path: str = "") -> list[str]:
    """The paths of every NaN/Infinity in `value` (JSON has no such numbers; databases reject them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [path or "value"]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    found: list[str] = []
    for key, item in items:
        found += _non_finite(item, f"{path}.{key}" if path else str(key))
    return found


def coerce(key: str, raw: str, *, name: str = CURRENT_SCHEMA) -> Any:
    """Turn a command-line KEY=VALUE string into the schema's type for KEY."""
    spec = schema(name)["properties"].get(key, {})
    kind = spec.get("type")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        raise ValidationError(
            with_labels(
                _("%(label)s must be %(kind)s (not %(value)s)."), label=key_label(key, name=name), kind=_kind(kind)
            ),
            code="wrong_type",
            field=f"metadata.{key}",
            value=raw,
        ) from None
    if kind == "array":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def labelled(metadata: dict[str, Any], *, name: str = CURRENT_SCHEMA) -> list[tuple[str, Any]]:
    """(label, value) pairs for display: the schema's title where it has one, else the key."""
    properties = schema(name)["properties"]
    return [
        (properties.get(key, {}).get("title", key), "、".join(map(str, value)) if isinstance(value, list) else value)
        for key, value in metadata.items()
    ]


# What tells records with the same title apart in a list (出院记录 × many): who, which visit, when.
SUMMARY_KEYS = (
    "patient_name",
    "admission_no",
    "visit_number",
    "discharge_date",
    "visit_date",
    "study_date",
    "modality",
    "contract_no",
    "supplier",
    "voucher_no",
    "period",
    "event",
    "location",
)
SUMMARY_LENGTH = 3


def summary(metadata: dict[str, Any], *, may_see_patient: bool, name: str = CURRENT_SCHEMA) -> list[tuple[str, Any]]:
    """Up to three (label, value) pairs for a list row; personal identifiers masked without the right."""
    shown = masked(metadata, may_see_patient=may_see_patient, name=name)
    properties = schema(name)["properties"]
    found = [(properties.get(k, {}).get("title", k), shown[k]) for k in SUMMARY_KEYS if shown.get(k) not in (None, "")]
    return found[:SUMMARY_LENGTH]


def masked(metadata: dict[str, Any], *, may_see_patient: bool, name: str = CURRENT_SCHEMA) -> dict[str, Any]:
    if may_see_patient:
        return dict(metadata)
    hidden = personal_identifiers(name)
    return {key: (MASK if key in hidden and value not in (None, "") else value) for key, value in metadata.items()}
