"""Findings as people read them: in the UI language (findings store a rule and its parameters),
and the record page's view of the door."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from medarchive.capture.models import Intake, ReviewState
from medarchive.security.permissions import can
from medarchive.security.roles import Action


def _date_text(p: dict[str, str]) -> str:
    if "earlier" in p:
        return _("%(later)s is earlier than %(earlier)s.") % p
    if "key" in p and "date" in p:
        return _("%(key)s (%(date)s) is in the future.") % p
    if "key" in p:
        return _("%(key)s is not a date.") % p
    return _("The date %(date)s is more than a century old; please check it.") % p


_TEXTS = {
    "mandatory": lambda p: _("The mandatory item %(item)s is empty.") % p,
    "format": lambda p: _("%(file)s: %(format)s is not an accepted format for this class.") % p,
    "convert": lambda p: _("%(file)s: %(format)s is not an archival format; an archival rendition is needed.") % p,
    "size": lambda p: _("%(file)s is larger than this class allows.") % p,
    "date": _date_text,
    "duplicate": lambda p: _("%(file)s: identical content is already in record %(record)s.") % p,
    "near_duplicate": lambda p: _("%(file)s: the text is nearly identical to record %(record)s.") % p,
}


def describe(finding: dict[str, Any]) -> str:
    """The finding in the UI language; the stored English message when the rule has no text."""
    text = _TEXTS.get(finding.get("rule", ""))
    params = dict(finding.get("params") or {})
    try:
        return text(params) if text else str(finding.get("message", ""))
    except (KeyError, TypeError):  # an older finding without some parameter
        return str(finding.get("message", ""))


def severity_label(finding: dict[str, Any]) -> str:
    return _("Error") if finding.get("severity") == "error" else _("Warning")


def annotated(items: list[Intake]) -> list[tuple[Intake, list[tuple[str, str, str]]]]:
    return [(i, [(f.get("severity", ""), severity_label(f), describe(f)) for f in i.findings]) for i in items]


def intake_panel(record: Any, user: Any) -> dict[str, Any] | None:
    """The record page's view of the door: findings, comment and what this user may do."""
    intake = Intake.objects.filter(record=record).select_related("submission", "reviewed_by").first()
    if intake is None:
        return None
    pending = intake.state == ReviewState.PENDING
    return {
        "intake": intake,
        "findings": annotated([intake])[0][1],
        "may_review": pending and can(user, Action.RECORD_REVIEW, record),
        "may_withdraw": intake.state in {ReviewState.PENDING, ReviewState.RETURNED}
        and can(user, Action.RECORD_WITHDRAW, record),
    }
