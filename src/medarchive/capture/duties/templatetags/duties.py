"""`{% load duties %}{% notifications_link %}`: the nav link with the unread count, for base.html."""

from __future__ import annotations

from typing import Any

from django import template

from medarchive.capture.duties.notify import unread_count
from medarchive.security.models import User

register = template.Library()


@register.inclusion_tag("duties/_notifications_link.html", takes_context=True)
def notifications_link(context: dict[str, Any]) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {"authenticated": False, "unread": 0}
    return {"authenticated": True, "unread": unread_count(user)}
