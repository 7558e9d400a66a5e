"""The system administrator's storage and keys page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from medarchive.preservation.queries import FIXITY_WINDOW_DAYS, storage_status
from medarchive.security.api_auth import actor_of


@login_required
def storage(request: HttpRequest) -> HttpResponse:
    status = storage_status(actor_of(request))
    return render(request, "preservation/storage.html", {"s": status, "window": FIXITY_WINDOW_DAYS})
