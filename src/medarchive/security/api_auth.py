"""API authentication: bearer tokens for systems and scripts, the session for the browser."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext_lazy
from ninja.security import APIKeyCookie, HttpBearer

from medarchive.core.errors import NotAuthenticated
from medarchive.security import context
from medarchive.security.models import User
from medarchive.security.services import authenticate_token


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = authenticate_token(token)
        if found is None:
            return None
        user, api_token = found
        request.user = user
        context.token_scopes.set(frozenset(api_token.scopes))
        return user


class Session(APIKeyCookie):
    """The logged-in browser session; CSRF is enforced for unsafe methods."""

    param_name = "sessionid"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user
        return None


def require_authenticated(view: Any) -> Any:
    """Wrap the OpenAPI document and docs: no anonymous access to anything but health."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer ") and authenticate_token(header[7:].strip()) is not None:
            return view(request, *args, **kwargs)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            return view(request, *args, **kwargs)
        refusal = NotAuthenticated(
            gettext_lazy("Authentication required: send Authorization: Bearer <token>."), field="Authorization"
        )
        response = JsonResponse(refusal.as_problem(), status=401, json_dumps_params={"ensure_ascii": False})
        response["WWW-Authenticate"] = 'Bearer realm="medarchive"'
        return response

    return wrapper


def actor_of(request: HttpRequest) -> User:
    """The authenticated user of a request, typed for the services (inputs call this, never `request.user`)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise NotAuthenticated(
            gettext_lazy("Authentication required: send Authorization: Bearer <token>."), field="Authorization"
        )
    return user
