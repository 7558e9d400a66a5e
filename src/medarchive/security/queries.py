"""Reads for the administrators' pages: accounts, lockouts, API tokens, the audit trail.

Each starts with the permission of the administrator it serves (SEC-02); reading the audit
trail is itself audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from medarchive.core import clock
from medarchive.core.errors import ValidationError
from medarchive.security import audit
from medarchive.security.models import ApiToken, AuditEntry, User
from medarchive.security.permissions import require
from medarchive.security.roles import Action, Role

PAGE_SIZE = 25
MAX_TEXT = 100


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    pages: int


def _page(qs: QuerySet[Any], page: int, page_size: int = PAGE_SIZE) -> Page:
    paginator = Paginator(qs, page_size)
    number = min(max(page, 1), max(paginator.num_pages, 1))
    return Page(list(paginator.page(number).object_list), paginator.count, number, paginator.num_pages)


def _text(value: str, field: str) -> str:
    value = (value or "").strip()
    if len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise ValidationError(
            _("The filter must be one line of at most %(limit)s characters."),
            code="bad_filter",
            field=field,
            limit=MAX_TEXT,
        )
    return value


def accounts(
    actor: User, *, action: Action, q: str = "", role: str = "", department: str = "", active: str = "", page: int = 1
) -> Page:
    """Accounts for the system administrator (USER_MANAGE) or the security administrator (ROLE_ASSIGN)."""
    require(actor, action)
    qs = User.objects.select_related("department").order_by("username")
    q = _text(q, "q")
    if q:
        qs = qs.filter(Q(username__icontains=q) | Q(display_name__icontains=q) | Q(email__icontains=q))
    if role in {r.value for r in Role}:
        qs = qs.filter(role=role)
    if department:
        qs = qs.filter(department__code=department)
    if active in {"1", "0"}:
        qs = qs.filter(is_active=active == "1")
    return _page(qs, page)


@dataclass(frozen=True)
class Lockout:
    username: str
    failures: int
    last_attempt: dt.datetime
    locked: bool
    until: dt.datetime
    addresses: int


def lockouts(actor: User) -> list[Lockout]:
    """Accounts with failed logins, most recent first; `locked` when the limit is reached and not cooled off."""
    require(actor, Action.ACCOUNT_UNLOCK)
    from axes.models import AccessAttempt  # noqa: PLC0415 - axes reads settings when imported

    limit = int(settings.AXES_FAILURE_LIMIT)
    cooloff = dt.timedelta(hours=float(settings.AXES_COOLOFF_TIME))
    now = clock.now()
    rows = (
        AccessAttempt.objects.values("username")
        .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"), addresses=Count("ip_address"))
        .order_by("-last")
    )
    return [
        Lockout(
            username=row["username"] or "",
            failures=int(row["failures"] or 0),
            last_attempt=row["last"],
            locked=int(row["failures"] or 0) >= limit and row["last"] + cooloff > now,
            until=row["last"] + cooloff,
            addresses=int(row["addresses"] or 0),
        )
        for row in rows
    ]


def tokens(actor: User, *, q: str = "", state: str = "", page: int = 1) -> Page:
    """Every API token (never its secret: only the prefix is stored in the clear)."""
    require(actor, Action.TOKEN_MANAGE)
    qs = ApiToken.objects.select_related("user").order_by("-created_at")
    q = _text(q, "q")
    if q:
        qs = qs.filter(Q(user__username__icontains=q) | Q(name__icontains=q) | Q(prefix__startswith=q))
    now = clock.now()
    if state == "active":
        qs = qs.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    elif state == "revoked":
        qs = qs.filter(revoked_at__isnull=False)
    elif state == "expired":
        qs = qs.filter(revoked_at__isnull=True, expires_at__lte=now)
    return _page(qs, page)


def own_tokens(actor: User) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=actor).order_by("-created_at"))


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    object: str = ""
    result: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def as_details(self) -> dict[str, str]:
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in vars(self).items() if v}


RESULT_LABELS = {
    "success": _("success"),
    "denied": _("denied"),
    "failure": _("failure"),
    "locked": _("locked out"),
}
RESULTS = tuple(RESULT_LABELS)


def _audit_entries(flt: AuditFilter) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.all()
    if flt.actor:
        qs = qs.filter(actor_name__icontains=_text(flt.actor, "actor"))
    if flt.action:
        qs = qs.filter(action__startswith=_text(flt.action, "action"))
    if flt.object:
        value = _text(flt.object, "object")
        qs = qs.filter(Q(object_id=value) | Q(object_type=value))
    if flt.result in RESULTS:
        qs = qs.filter(result=flt.result)
    if flt.since:
        qs = qs.filter(at__gte=flt.since)
    if flt.until:
        qs = qs.filter(at__lt=flt.until)
    return qs.order_by("-seq")


def audit_trail(actor: User, flt: AuditFilter, *, page: int = 1) -> Page:
    """One page of the trail, newest first; the auditor's reading is itself an audit entry."""
    require(actor, Action.AUDIT_READ)
    audit.seal_pending()  # the auditor sees every read up to now, not only those the sealer reached
    found = _page(_audit_entries(flt), page, 50)
    with transaction.atomic():
        audit.record_event(
            Action.AUDIT_READ,
            actor=actor,
            object_type="audit",
            details={"filters": flt.as_details(), "page": found.page, "shown": len(found.items)},
        )
    return found


EXPORT_FIELDS = ("seq", "at", "actor_name", "action", "object_type", "object_id", "result", "source", "details")


def audit_export(actor: User, flt: AuditFilter) -> Iterator[dict[str, Any]]:
    """Every matching entry, oldest first, for a CSV export (audited once, before the first row)."""
    require(actor, Action.AUDIT_READ)
    audit.seal_pending()
    qs = _audit_entries(flt).order_by("seq")
    with transaction.atomic():
        audit.record_event(
            Action.AUDIT_READ,
            actor=actor,
            object_type="audit",
            details={"op": "export", "filters": flt.as_details(), "rows": qs.count()},
        )
    return ({field: getattr(entry, field) for field in EXPORT_FIELDS} for entry in qs.iterator(chunk_size=2000))


def audit_actions() -> list[str]:
    return sorted({a.value for a in Action})
