"""Capture pages: the submission form, the review queue, the returned-items inbox, submissions.

Client-side checks are for convenience; the services' checks are the truth. Every page
goes through the same services as the API.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from medarchive.archiving.models import OPEN_STATUSES, SECURITY_LEVELS, ArchiveClass
from medarchive.capture import findings, queries, review, services
from medarchive.capture.intake import Item, receive
from medarchive.capture.models import Channel, ReviewState
from medarchive.core.errors import (
    Collector,
    MedarchiveError,
    NotFound,
    PermissionDenied,
    Problems,
    ValidationError,
)
from medarchive.core.models import Department
from medarchive.security import audit
from medarchive.security.api_auth import actor_of
from medarchive.security.permissions import can, require
from medarchive.security.roles import Action
from medarchive.web.forms import problems_of

_FORM_FIELDS = {"department_code": "department", "class": "class_code"}


def _form_field(field: str) -> str:
    """The upload form's field for a problem the door names (`metadata.pages` → the metadata box)."""
    if field.startswith("metadata"):
        return "metadata"
    if field.startswith("files"):
        return "files"
    return _FORM_FIELDS.get(field, field)


def _form_context(request: HttpRequest, values: dict[str, Any], error: MedarchiveError | None) -> dict[str, Any]:
    user = actor_of(request)
    departments = [
        d for d in Department.objects.filter(active=True) if can(user, Action.RECORD_CREATE, department_id=d.pk)
    ]
    return {
        "values": values,
        **problems_of(error, _form_field),
        "departments": departments,
        "classes": ArchiveClass.objects.filter(scheme__active=True).order_by("code"),
        "security_levels": SECURITY_LEVELS,
        # 开放标识 is the archive's decision: submitters only see 未审核 (the service enforces it too).
        "open_statuses": OPEN_STATUSES if can(user, Action.RECORD_ACCEPT) else [services.UNREVIEWED],
        "max_bytes": settings.CONFIG.max_upload_bytes,
        "resumable_bytes": settings.CONFIG.resumable_threshold_bytes,
    }


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    require(actor_of(request), Action.RECORD_CREATE)
    if request.method != "POST":
        default_department = getattr(request.user, "department", None)
        values = {
            "department": default_department.code if default_department else "",
            "security_level": "内部",
            "open_status": "未审核",
        }
        return render(request, "capture/upload.html", _form_context(request, values, None))
    values = {
        k: request.POST.get(k, "")
        for k in (
            "class_code",
            "department",
            "title",
            "date",
            "responsible",
            "doc_number",
            "security_level",
            "open_status",
            "metadata",
        )
    }
    metadata_error: ValidationError | None = None
    try:
        metadata = json.loads(values["metadata"]) if values["metadata"].strip() else {}
        if not isinstance(metadata, dict):
            raise ValueError
    except ValueError:
        metadata, metadata_error = (
            {},
            ValidationError(
                gettext_lazy('Extra metadata must be a JSON object, e.g. {"keywords": ["病案"]}'),
                code="metadata_not_an_object",
                field="metadata",
            ),
        )
    desc = services.Description(
        class_code=values["class_code"],
        department_code=values["department"],
        title=values["title"],
        date=values["date"],
        responsible=values["responsible"],
        doc_number=values["doc_number"],
        security_level=values["security_level"] or "内部",
        open_status=values["open_status"] or "未审核",
        metadata=metadata,
    )
    if metadata_error is not None:  # nothing is captured; the other fields are still checked
        problems = Collector()
        problems.add(metadata_error)
        with problems.check():
            services.check_description(desc)
        for upload in request.FILES.getlist("files"):
            services.IncomingFile.from_upload(upload).discard()
        error = Problems(problems.problems) if len(problems.problems) > 1 else metadata_error
        return render(request, "capture/upload.html", _form_context(request, values, error), status=422)
    # Without JavaScript the form arrives here: one record with all its files, through the door.
    files = [services.IncomingFile.from_upload(f) for f in request.FILES.getlist("files")]
    key = request.POST.get("idempotency_key") or None
    result = receive(
        [Item(desc, files, key=key, label=values["title"][:200])],
        actor=actor_of(request),
        channel=Channel.WEB,
        source=actor_of(request).username,
        key=key,
    )
    outcome = result.outcomes[0]
    if outcome.error is not None:
        if isinstance(outcome.error, PermissionDenied):
            audit.record_refusal(outcome.error)
        status = outcome.error.status
        return render(request, "capture/upload.html", _form_context(request, values, outcome.error), status=status)
    assert outcome.record is not None
    return HttpResponseRedirect(reverse("record-detail", args=[outcome.record.pk]) + "?created=1")


def _int(value: str, default: int = 1) -> int:
    return int(value) if value.isdigit() else default


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    user = actor_of(request)
    require(user, Action.RECORD_REVIEW)
    flt = {
        "state": request.GET.get("state", ReviewState.PENDING),
        "class_code": request.GET.get("class", ""),
        "department_code": request.GET.get("department", ""),
        "channel": request.GET.get("channel", ""),
        "errors_only": request.GET.get("errors") == "1",
    }
    page = queries.review_queue(user, page=_int(request.GET.get("page", "1")), **flt)  # type: ignore[arg-type]
    params = {k: v for k, v in request.GET.items() if k != "page" and v}
    return render(
        request,
        "capture/review_queue.html",
        {
            "page": page,
            "rows": findings.annotated(page.items, user),
            "flt": flt,
            "query": urlencode(params),
            "states": ReviewState.choices,
            "channels": Channel.choices,
            "classes": ArchiveClass.objects.filter(scheme__active=True).order_by("code"),
            "departments": Department.objects.filter(active=True),
        },
    )


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


@login_required
@require_POST
def review_bulk_accept(request: HttpRequest) -> HttpResponse:
    ids = request.POST.getlist("record")
    if not ids:
        messages.error(request, _("Select the records to accept first."))
    else:
        outcomes = review.accept_many(ids, actor=actor_of(request))
        accepted = [o for o in outcomes if o.ok]
        refused = [o for o in outcomes if not o.ok]
        if accepted:
            messages.success(request, _("%(n)d record(s) accepted.") % {"n": len(accepted)})
        for o in refused:
            messages.error(request, o.message)
    return HttpResponseRedirect(_back(request, reverse("review-queue")))


_STEPS = {
    "accept": lambda request, record_id: review.accept(
        record_id,
        actor=actor_of(request),
        comment=request.POST.get("comment", ""),
        override=request.POST.get("override") == "1",
    ),
    "return": lambda request, record_id: review.return_to_department(
        record_id, actor=actor_of(request), comment=request.POST.get("comment", "")
    ),
    "withdraw": lambda request, record_id: review.withdraw(
        record_id, actor=actor_of(request), reason=request.POST.get("comment", "")
    ),
}
_DONE = {
    "accept": gettext_lazy("Accepted into the archive."),
    "return": gettext_lazy("Returned to the department with your comment."),
    "withdraw": gettext_lazy("The submission was withdrawn; it stays on record as withdrawn."),
}


@login_required
@require_POST
def review_step(request: HttpRequest, record_id: str, step: str) -> HttpResponse:
    if step not in _STEPS:
        raise Http404
    try:
        _STEPS[step](request, record_id)
    except NotFound:
        raise Http404 from None
    except MedarchiveError as exc:
        if isinstance(exc, PermissionDenied):
            audit.record_refusal(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, str(_DONE[step]))
    return HttpResponseRedirect(_back(request, reverse("record-detail", args=[record_id])))


@login_required
def returned_inbox(request: HttpRequest) -> HttpResponse:
    page = queries.returned_inbox(actor_of(request), page=_int(request.GET.get("page", "1")))
    return render(
        request, "capture/returned.html", {"page": page, "rows": findings.annotated(page.items, actor_of(request))}
    )


@login_required
def submission_list(request: HttpRequest) -> HttpResponse:
    items, total, number, pages = queries.submissions(actor_of(request), page=_int(request.GET.get("page", "1")))
    return render(
        request,
        "capture/submissions.html",
        {"items": items, "total": total, "page": number, "pages": pages},
    )


@login_required
def submission_detail(request: HttpRequest, submission_id: str) -> HttpResponse:
    try:
        submission = queries.get_submission(actor_of(request), submission_id)
    except NotFound:
        raise Http404 from None
    return render(
        request,
        "capture/submission_detail.html",
        {"submission": submission, "items": (submission.report or {}).get("items", [])},
    )
