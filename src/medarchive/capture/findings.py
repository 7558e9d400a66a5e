"""Findings as people read them: in the UI language (findings store a rule and its parameters),
and the record page's view of the door."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from medarchive.capture.models import Intake, ReviewState
from medarchive.security.permissions import can, visible_to
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
    "duplicate": lambda p: (
        _("%(file)s: identical content is already in record %(record)s.") % p
        if "record" in p
        else _("%(file)s: identical content is already in the archive.") % p
    ),
    "near_duplicate": lambda p: (
        _("%(file)s: the text is nearly identical to record %(record)s.") % p
        if "record" in p
        else _("%(file)s: the text is nearly identical to a record in the archive.") % p
    ),
    "identifier_reused": lambda p: (
        _("The identifier %(key)s was already used for record %(record)s with other content.") % p
        if "record" in p
        else _("The identifier %(key)s was already used for another record with other content.") % p
    ),
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


_OTHER_RECORD = {
    "duplicate": "identical content is already in the archive",
    "near_duplicate": "the text is nearly identical to a record in the archive",
    "identifier_reused": "its identifier was already used for another record with other content",
}


def for_viewer(found: list[dict[str, Any]], actor: Any) -> list[dict[str, Any]]:
    """The findings as `actor` may read them: another record is named only to someone who may see
    it (else a duplicate finding would tell a department what another department holds)."""
    ids = {str(f.get("params", {}).get("record_id")) for f in found if f.get("params", {}).get("record_id")}
    visible: set[str] = set()
    if ids:
        from medarchive.archiving.models import Record  # noqa: PLC0415 - keep this module's imports light

        allowed = Record.objects.filter(visible_to(actor, Action.RECORD_METADATA_READ), pk__in=ids)
        visible = {str(pk) for pk in allowed.values_list("pk", flat=True)}
    shown = []
    for finding in found:
        params = finding.get("params") or {}
        other = params.get("record_id")
        if other and str(other) not in visible:
            params = {k: v for k, v in params.items() if k not in {"record", "record_id", "bits"}}
            text = _OTHER_RECORD.get(finding.get("rule", ""), "a matching record exists")
            shown.append({**finding, "params": params, "message": f"{params.get('file', '')}: {text}"})
        else:
            shown.append(finding)
    return shown


def annotated(items: list[Intake], actor: Any) -> list[tuple[Intake, list[tuple[str, str, str]]]]:
    """Each intake with its findings as (severity, label, text) in the UI language, as `actor` may read them."""
    return [
        (i, [(f.get("severity", ""), severity_label(f), describe(f)) for f in for_viewer(i.findings, actor)])
        for i in items
    ]


def intake_panel(record: Any, user: Any) -> dict[str, Any] | None:
    """The record page's view of the door: findings, comment and what this user may do."""
    intake = Intake.objects.filter(record=record).select_related("submission", "reviewed_by").first()
    if intake is None:
        return None
    pending = intake.state == ReviewState.PENDING
    return {
        "intake": intake,
        "findings": annotated([intake], user)[0][1],
        "may_review": pending and can(user, Action.RECORD_REVIEW, record),
        "may_withdraw": intake.state in {ReviewState.PENDING, ReviewState.RETURNED}
        and can(user, Action.RECORD_WITHDRAW, record),
    }
