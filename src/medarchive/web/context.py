"""Template context for every page: the navigation entries the user may use."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from medarchive.security.models import User
from medarchive.web.navigation import entries_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {"nav_entries": []}
    entries = entries_for(user)
    current = request.path
    return {
        "nav_entries": [
            {"url": e.url, "label": e.label, "group": e.group, "current": _is_current(e.url, current)} for e in entries
        ],
        "admin_entries": [e for e in entries if e.group != "work"],
    }


def _is_current(url: str, path: str) -> bool:
    return path == url if url == "/" else path.startswith(url)
