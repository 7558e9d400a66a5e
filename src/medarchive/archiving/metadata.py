"""Validation and masking of the versioned extra metadata (JSON schema). Pure logic."""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from medarchive.core.errors import ValidationError

CURRENT_SCHEMA = "record-metadata-v1"
MASK = "***"


@cache
def schema(name: str = CURRENT_SCHEMA) -> dict[str, Any]:
    text = resources.files("medarchive.archiving").joinpath("data", f"{name}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def personal_identifiers(name: str = CURRENT_SCHEMA) -> frozenset[str]:
    return frozenset(schema(name).get("x-personal-identifiers", []))


def validate(metadata: Any, *, name: str = CURRENT_SCHEMA) -> dict[str, Any]:
    """Return the metadata when it fits the schema, else raise naming the first bad field."""
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be an object of name/value pairs", field="metadata")
    bad = _non_finite(metadata)
    if bad is not None:
        raise ValidationError(f"metadata.{bad}: NaN and infinite numbers are not allowed", field=f"metadata.{bad}")
    validator = jsonschema.Draft202012Validator(schema(name), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(metadata), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = ".".join(str(p) for p in first.absolute_path)
        field = f"metadata.{path}" if path else "metadata"
        raise ValidationError(f"{field}: {first.message}", field=field)
    return dict(metadata)


def _non_finite(value: Any, path: str = "") -> str | None:
    """The path of the first NaN/Infinity in `value` (JSON has no such numbers; databases reject them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "value"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


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
        raise ValidationError(f"metadata.{key} must be a {kind}, got {raw!r}", field=f"metadata.{key}") from None
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
