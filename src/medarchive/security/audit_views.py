"""The auditor's audit trail browser: filter, page, export, and verify the chain (SEC-04, SEC-02)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from medarchive.security import queries
from medarchive.security.api_auth import actor_of
from medarchive.security.roles import ACTION_LABELS, Action
from medarchive.security.services import verify_audit


def _day(raw: str, *, end: bool = False) -> dt.datetime | None:
    """A YYYY-MM-DD from a date input as the start of that local day (the next day's for `end`)."""
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        return None
    if end:
        day += dt.timedelta(days=1)
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def _filter(request: HttpRequest) -> queries.AuditFilter:
    get = request.GET
    return queries.AuditFilter(
        actor=get.get("actor", ""),
        action=get.get("action", ""),
        object=get.get("object", ""),
        result=get.get("result", ""),
        since=_day(get.get("since", "")),
        until=_day(get.get("until", ""), end=True),
    )


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


def _action_label(code: str) -> object:
    """The action in words where the role table names it; the code stays beside it for searching."""
    try:
        return ACTION_LABELS[Action(code)]
    except ValueError:
        return ""


@login_required
def trail(request: HttpRequest, report: object = None) -> HttpResponse:
    flt = _filter(request)
    page = queries.audit_trail(actor_of(request), flt, page=_page_number(request))
    for entry in page.items:
        entry.result_label = queries.RESULT_LABELS.get(entry.result, entry.result)
        entry.action_label = _action_label(entry.action)
        entry.details_text = json.dumps(entry.details, ensure_ascii=False, sort_keys=True) if entry.details else ""
    params = {k: v for k, v in request.GET.items() if k != "page" and v}
    return render(
        request,
        "security/audit_trail.html",
        {
            "page": page,
            "flt": {k: request.GET.get(k, "") for k in ("actor", "action", "object", "result", "since", "until")},
            "query": urlencode(params),
            "actions": queries.audit_actions(),
            "results": list(queries.RESULT_LABELS.items()),
            "report": report,
        },
    )


@login_required
@require_POST
def verify(request: HttpRequest) -> HttpResponse:
    report = verify_audit(actor=actor_of(request))
    return trail(request, report=report)


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def export(request: HttpRequest) -> StreamingHttpResponse:
    rows = queries.audit_export(actor_of(request), _filter(request))

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield "\ufeff"  # Excel opens UTF-8 CSV with Chinese text correctly only with a BOM
        yield writer.writerow(queries.EXPORT_FIELDS)
        for row in rows:
            row["at"] = timezone.localtime(row["at"]).isoformat()
            row["details"] = json.dumps(row["details"], ensure_ascii=False, sort_keys=True)
            yield writer.writerow([row[f] for f in queries.EXPORT_FIELDS])

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
