"""Dashboard, record list and detail, downloads. Views translate requests and call queries/services."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_noop

from medarchive.access import queries
from medarchive.access.services import read_content
from medarchive.archiving import metadata as metadata_schema
from medarchive.archiving.models import ArchiveClass, RecordState
from medarchive.archiving.services import active_retention
from medarchive.capture.findings import intake_panel
from medarchive.core.errors import MedarchiveError, NotFound
from medarchive.core.models import Department
from medarchive.security.api_auth import actor_of
from medarchive.security.permissions import can
from medarchive.security.roles import Action


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = actor_of(request)
    context: dict[str, Any] = {"can_list": can(user, Action.RECORD_LIST), "can_create": can(user, Action.RECORD_CREATE)}
    if context["can_list"]:
        visible = queries.visible_records(user)
        by_state = dict(visible.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
        context.update(
            {
                "total": sum(by_state.values()),
                "states": [(s.label, by_state.get(s.value, 0), s.value) for s in RecordState],
                "by_class": list(
                    visible.values("archive_class__code", "archive_class__name")
                    .annotate(n=Count("pk"))
                    .order_by("-n")[:8]
                ),
                "recent": queries.recent_records(user, limit=8),
            }
        )
    return render(request, "access/dashboard.html", context)


def _int(raw: str) -> int | None:
    """A positive integer from a query string, or None (`"²".isdigit()` is True, int("²") fails)."""
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 100_000 else None


def _filter(request: HttpRequest) -> queries.RecordFilter:
    def date(name: str) -> dt.date | None:
        try:
            return dt.date.fromisoformat(request.GET.get(name, ""))
        except ValueError:
            return None

    year = request.GET.get("year", "")
    return queries.RecordFilter(
        q=request.GET.get("q", "").strip(),
        class_code=request.GET.get("class", ""),
        department_code=request.GET.get("department", ""),
        state=request.GET.get("state", ""),
        year=_int(year),
        date_from=date("date_from"),
        date_to=date("date_to"),
    )


@login_required
def record_list(request: HttpRequest) -> HttpResponse:
    page_number = request.GET.get("page", "1")
    flt = _filter(request)
    user = actor_of(request)
    page = queries.list_records(user, flt, page=_int(page_number) or 1)
    params = {k: v for k, v in request.GET.items() if k != "page" and v}
    rows = [
        {
            "record": r,
            "summary": metadata_schema.summary(
                r.metadata, may_see_patient=can(user, Action.RECORD_PATIENT_READ, r), name=r.metadata_schema
            ),
        }
        for r in page.items
    ]
    return render(
        request,
        "access/record_list.html",
        {
            "page": page,
            "rows": rows,
            "filter": flt,
            "query": urlencode(params),
            "states": RecordState.choices,
            "departments": Department.objects.filter(active=True),
            "classes": _classes(),
        },
    )


def _classes() -> list[tuple[str, str]]:
    return list(ArchiveClass.objects.filter(scheme__active=True).values_list("code", "name"))


@login_required
def record_detail(request: HttpRequest, record_id: str) -> HttpResponse:
    try:
        record = queries.get_record(actor_of(request), record_id)
    except NotFound:
        raise Http404 from None
    queries.audit_metadata_read(actor_of(request), record)
    data = queries.describe(record, actor_of(request))
    user = actor_of(request)
    return render(
        request,
        "access/record_detail.html",
        {
            "record": data,
            "state_label": record.get_state_display(),
            "metadata_items": metadata_schema.labelled(data["metadata"], name=record.metadata_schema),
            "retention_name": _retention_name(record.retention),
            "history": record.business_events.select_related("actor"),
            "can_read_content": can(user, Action.RECORD_CONTENT_READ, record),
            "door": intake_panel(record, user),
            "steps": [
                (step, label)
                for step, action, label, state in _STEPS
                if record.state == state and can(user, action, record)
            ],
        },
    )


def _retention_name(code: str) -> str:
    try:
        return f"{code} {active_retention(code).name}"
    except MedarchiveError:
        return code


_STEPS = [  # labels are translated in the template; gettext_noop lets makemessages find them
    ("submit", Action.RECORD_SUBMIT, gettext_noop("Submit to the archive"), RecordState.DRAFT),
    ("archive", Action.RECORD_ARCHIVE, gettext_noop("Archive and assign 档号"), RecordState.ACCEPTED),
]


@login_required
def download(request: HttpRequest, record_id: str, sequence: int) -> HttpResponse | StreamingHttpResponse:
    try:
        content = read_content(actor_of(request), record_id, sequence=sequence)
    except NotFound:
        raise Http404 from None
    response = StreamingHttpResponse(content.chunks, content_type=content.component.mime_type)
    response["Content-Length"] = str(content.component.size)
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(content.component.filename)}"
    response["Cache-Control"] = "no-store"
    return response
