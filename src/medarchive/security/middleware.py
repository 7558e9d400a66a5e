"""Session idle timeout (SEC-01) and the audit source of each request."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from medarchive.security import context

LAST_SEEN = "medarchive_last_seen"


class IdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = context.source.set(request.META.get("REMOTE_ADDR", "") or "")
        scopes = context.token_scopes.set(frozenset())
        try:
            if request.user.is_authenticated:
                now = time.time()
                last = request.session.get(LAST_SEEN)
                if last is not None and now - float(last) > settings.MEDARCHIVE_SESSION_IDLE_SECONDS:
                    logout(request)
                else:
                    request.session[LAST_SEEN] = now
            return self.get_response(request)
        finally:
            context.source.reset(token)
            context.token_scopes.reset(scopes)
