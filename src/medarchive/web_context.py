"""Template context for every page: which navigation entries the user may use."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from medarchive.security.permissions import can
from medarchive.security.roles import Action


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"perms_nav": {"review": can(user, Action.RECORD_REVIEW), "aliases": can(user, Action.DEPARTMENT_MAP)}}
