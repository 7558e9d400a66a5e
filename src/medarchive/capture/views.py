"""The upload form: client-side checks for convenience, the service's checks for truth."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from medarchive.archiving.models import OPEN_STATUSES, SECURITY_LEVELS, ArchiveClass
from medarchive.capture import services
from medarchive.core.errors import MedarchiveError, PermissionDenied
from medarchive.core.models import Department
from medarchive.security import audit
from medarchive.security.api_auth import actor_of
from medarchive.security.permissions import can
from medarchive.security.roles import Action


def _form_context(request: HttpRequest, values: dict[str, Any], error: MedarchiveError | None) -> dict[str, Any]:
    user = actor_of(request)
    departments = [
        d for d in Department.objects.filter(active=True) if can(user, Action.RECORD_CREATE, department_id=d.pk)
    ]
    return {
        "values": values,
        "error": error,
        "departments": departments,
        "classes": ArchiveClass.objects.filter(scheme__active=True).order_by("code"),
        "security_levels": SECURITY_LEVELS,
        # 开放标识 is the archive's decision: submitters only see 未审核 (the service enforces it too).
        "open_statuses": OPEN_STATUSES if can(user, Action.RECORD_ACCEPT) else [services.UNREVIEWED],
        "max_bytes": settings.CONFIG.max_upload_bytes,
    }


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    if not can(actor_of(request), Action.RECORD_CREATE):
        return render(request, "error.html", {"message": _("You may not capture records.")}, status=403)
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
    try:
        metadata = json.loads(values["metadata"]) if values["metadata"].strip() else {}
        if not isinstance(metadata, dict):
            raise ValueError
    except ValueError:
        error = MedarchiveError(
            _('Extra metadata must be a JSON object, e.g. {"keywords": ["病案"]}'), field="metadata"
        )
        return render(request, "capture/upload.html", _form_context(request, values, error), status=422)
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
    files = [services.IncomingFile.from_upload(f) for f in request.FILES.getlist("files")]
    try:
        record = services.create_record(
            desc,
            files,
            actor=actor_of(request),
            idempotency_key=request.POST.get("idempotency_key") or None,
        )
    except MedarchiveError as exc:
        if isinstance(exc, PermissionDenied):
            audit.record_refusal(exc)
        return render(request, "capture/upload.html", _form_context(request, values, exc), status=exc.status)
    return HttpResponseRedirect(reverse("record-detail", args=[record.pk]) + "?created=1")
