"""The administrators' pages (三员分立, SEC-02): accounts and API tokens for the system administrator;
roles, password resets and lockouts for the security administrator. Thin: parse, call, render.

A refusal raised by a service becomes the styled 403 page (web/errors.py), audited there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from medarchive.core import clock
from medarchive.core.errors import MedarchiveError, ValidationError
from medarchive.core.models import Department
from medarchive.security import accounts, queries
from medarchive.security.api_auth import actor_of
from medarchive.security.models import ROLE_LABELS, ApiToken, User
from medarchive.security.permissions import require
from medarchive.security.roles import Action, Role
from medarchive.security.services import add_user, revoke_token
from medarchive.web.forms import problems_of

ASSIGNABLE = [(r.value, label) for r, label in ROLE_LABELS.items() if r not in accounts.ADMINISTRATORS]


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _query(request: HttpRequest) -> str:
    return urlencode({k: v for k, v in request.GET.items() if k != "page" and v})


def _account(user_id: int) -> User:
    user = User.objects.select_related("department").filter(pk=user_id).first()
    if user is None:
        raise Http404
    return user


def _departments() -> list[Department]:
    return list(Department.objects.filter(active=True).order_by("code"))


# --- the system administrator: accounts -----------------------------------------------------------


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    flt = {k: request.GET.get(k, "") for k in ("q", "role", "department", "active")}
    page = queries.accounts(actor_of(request), action=Action.USER_MANAGE, page=_page_number(request), **flt)
    return render(
        request,
        "security/accounts.html",
        {
            "page": page,
            "flt": flt,
            "query": _query(request),
            "roles": list(ROLE_LABELS.items()),
            "departments": _departments(),
            "administrators": {r.value for r in accounts.ADMINISTRATORS},
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def account_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = actor_of(request)
    require(actor, Action.USER_MANAGE)
    user = _account(user_id)
    values = {
        "display_name": user.display_name,
        "email": user.email,
        "department": user.department.code if user.department else "",
    }
    error: MedarchiveError | None = None
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in values}
        try:
            accounts.update_profile(
                user.pk,
                actor=actor,
                display_name=values["display_name"],
                email=values["email"],
                department_code=values["department"],
            )
        except ValidationError as exc:
            error = exc
        else:
            messages.success(request, _("The account %(username)s was saved.") % {"username": user.username})
            return HttpResponseRedirect(reverse("system-accounts"))
    return render(
        request,
        "security/account_edit.html",
        {"account": user, "values": values, "departments": _departments(), **problems_of(error)},
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def account_activation(request: HttpRequest, user_id: int) -> HttpResponse:
    """GET asks for confirmation (works without JavaScript); POST does it."""
    actor = actor_of(request)
    require(actor, Action.USER_MANAGE)
    user = _account(user_id)
    if request.method == "POST":
        accounts.set_active(user.pk, not user.is_active, actor=actor)
        text = _("%(username)s can log in again.") if not user.is_active else _("%(username)s is deactivated.")
        messages.success(request, text % {"username": user.username})
        return HttpResponseRedirect(reverse("system-accounts"))
    return render(request, "security/account_activation.html", {"account": user})


# --- API tokens (the system administrator; the security administrator may revoke too) ----------------


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    flt = {k: request.GET.get(k, "") for k in ("q", "state")}
    page = queries.tokens(actor_of(request), page=_page_number(request), **flt)
    context = {"page": page, "flt": flt, "query": _query(request), "now": clock.now()}
    return render(request, "security/tokens.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    actor = actor_of(request)
    token = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if token is None:
        raise Http404
    if token.user_id != actor.pk:
        require(actor, Action.TOKEN_MANAGE)
    back = reverse("my-account") if token.user_id == actor.pk else reverse("system-tokens")
    if request.method == "POST":
        revoke_token(token.pk, actor=actor)
        messages.success(request, _("The token %(prefix)s… is revoked.") % {"prefix": token.prefix})
        return HttpResponseRedirect(back)
    return render(request, "security/token_revoke.html", {"token": token, "back": back})


# --- the security administrator: roles, password resets, lockouts -----------------------------------


def _new_account_values(request: HttpRequest) -> dict[str, str]:
    keys = ("username", "display_name", "role", "department", "email")
    return {k: request.POST.get(k, "").strip() for k in keys}


@login_required
@require_http_methods(["GET", "POST"])
def role_list(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    flt = {k: request.GET.get(k, "") for k in ("q", "role", "department", "active")}
    values = {"username": "", "display_name": "", "role": Role.VIEWER.value, "department": "", "email": ""}
    error: MedarchiveError | None = None
    created: dict[str, str] | None = None
    if request.method == "POST":
        require(actor, Action.ROLE_ASSIGN)
        values = _new_account_values(request)
        password = accounts.temporary_password()
        try:
            user = add_user(
                values["username"],
                actor=actor,
                role=values["role"],
                password=password,
                department_code=values["department"] or None,
                display_name=values["display_name"],
                email=values["email"],
            )
        except ValidationError as exc:
            error = exc
        else:
            created = {"username": user.username, "password": password}
            values = {"username": "", "display_name": "", "role": values["role"], "department": "", "email": ""}
    page = queries.accounts(actor, action=Action.ROLE_ASSIGN, page=_page_number(request), **flt)
    return render(
        request,
        "security/roles.html",
        {
            "page": page,
            "flt": flt,
            "query": _query(request),
            "roles": list(ROLE_LABELS.items()),
            "assignable": ASSIGNABLE,
            "departments": _departments(),
            "values": values,
            "created": created,
            "administrators": {r.value for r in accounts.ADMINISTRATORS},
            **problems_of(error),
        },
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def role_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = actor_of(request)
    require(actor, Action.ROLE_ASSIGN)
    user = _account(user_id)
    values = {"role": user.role, "department": user.department.code if user.department else ""}
    error: MedarchiveError | None = None
    new_password = ""
    if request.method == "POST":
        if request.POST.get("op") == "reset_password":
            _user, new_password = accounts.reset_password(user.pk, actor=actor)
        else:
            values = {k: request.POST.get(k, "").strip() for k in values}
            try:
                accounts.assign_role(user.pk, values["role"], actor=actor, department_code=values["department"])
            except ValidationError as exc:
                error = exc
            else:
                messages.success(request, _("The role of %(username)s was changed.") % {"username": user.username})
                return HttpResponseRedirect(reverse("security-roles"))
    return render(
        request,
        "security/role_edit.html",
        {
            "account": user,
            "values": values,
            "assignable": ASSIGNABLE,
            "departments": _departments(),
            "new_password": new_password,
            "administrator": user.role in {r.value for r in accounts.ADMINISTRATORS},
            **problems_of(error),
        },
        status=422 if error else 200,
    )


@login_required
def lockout_list(request: HttpRequest) -> HttpResponse:
    rows = queries.lockouts(actor_of(request))
    context: dict[str, Any] = {"rows": rows, "limit": accounts.lockout_limit()}
    return render(request, "security/lockouts.html", context)


@login_required
@require_POST
def lockout_unlock(request: HttpRequest) -> HttpResponse:
    username = request.POST.get("username", "")
    accounts.unlock(username, actor=actor_of(request))
    messages.success(request, _("%(username)s may log in again.") % {"username": username})
    return HttpResponseRedirect(reverse("security-lockouts"))
