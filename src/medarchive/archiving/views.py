"""Lifecycle buttons on the record page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from medarchive.archiving import services
from medarchive.capture import review
from medarchive.core.errors import MedarchiveError, PermissionDenied
from medarchive.security import audit
from medarchive.security.api_auth import actor_of

_STEPS = {"submit": review.submit, "accept": review.accept, "archive": services.archive_record}


@login_required
@require_POST
def transition(request: HttpRequest, record_id: str, step: str) -> HttpResponse:
    if step not in _STEPS:
        raise Http404
    try:
        record = _STEPS[step](record_id, actor=actor_of(request))
    except MedarchiveError as exc:
        if isinstance(exc, PermissionDenied):
            audit.record_refusal(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Done: the record is now %(state)s.") % {"state": record.get_state_display()})
    return HttpResponseRedirect(reverse("record-detail", args=[record_id]))
