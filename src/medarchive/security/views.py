"""Log in and out (django-axes counts failures and locks the account, SEC-01); one's own account page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from medarchive.core import clock
from medarchive.core.errors import Collector, MedarchiveError, ValidationError
from medarchive.security import audit
from medarchive.security.accounts import change_own_password
from medarchive.security.api_auth import actor_of
from medarchive.security.models import User
from medarchive.security.queries import own_tokens
from medarchive.security.roles import Action
from medarchive.security.services import create_token
from medarchive.web.forms import problems_of


def _audit_login(user: User | None, username: str, result: str) -> None:
    with transaction.atomic():
        # The name is whatever was typed: keep it whole in details, bounded in the indexed column.
        clean = username.replace("\x00", "")
        audit.record_event(
            Action.AUTH_LOGIN,
            actor=user,
            object_type="user",
            object_id=clean[:64],
            result=result,
            details={"username": clean[:150]},
        )


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    error = ""
    next_url = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/"
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        password = request.POST.get("password", "")
        user = authenticate(request, username=username, password=password)
        if user is not None:
            login(request, user)
            _audit_login(user, username, "success")
            return HttpResponseRedirect(next_url)
        if getattr(request, "axes_locked_out", False):
            return locked_out(request)
        _audit_login(None, username, "failure")
        error = _("Wrong user name or password.")
    return render(request, "security/login.html", {"error": error, "next": next_url}, status=401 if error else 200)


def locked_out(request: HttpRequest, credentials: Any = None, *args: Any, **kwargs: Any) -> HttpResponse:
    username = request.POST.get("username", "") if request.method == "POST" else ""
    _audit_login(None, username, "locked")
    return render(
        request,
        "security/login.html",
        {
            "error": _(
                "Too many failed attempts: this account is locked. Ask the security administrator "
                "to unlock it, or try again later."
            ),
            "next": "/",
            "locked": True,
        },
        status=403,
    )


@require_http_methods(["POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponseRedirect("/login/")


# --- one's own account: password and API tokens ---------------------------------------------------

MAX_TOKEN_DAYS = 3650


def _token_form(request: HttpRequest) -> tuple[str, int | None, MedarchiveError | None]:
    name = request.POST.get("name", "").strip()
    raw_days = request.POST.get("days", "").strip()
    problems = Collector()
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
        problems.add(
            ValidationError(
                gettext_lazy("Give the token a name of at most 100 characters, e.g. the system that uses it."),
                code="bad_token_name",
                field="name",
            )
        )
    days: int | None = None
    if raw_days:
        if raw_days.isascii() and raw_days.isdigit() and 0 < int(raw_days) <= MAX_TOKEN_DAYS:
            days = int(raw_days)
        else:
            problems.add(
                ValidationError(
                    gettext_lazy("The validity is a number of days from 1 to %(limit)s, or empty for no end."),
                    code="bad_token_days",
                    field="days",
                    limit=MAX_TOKEN_DAYS,
                )
            )
    try:
        problems.raise_if_any()
    except ValidationError as exc:
        return name, days, exc
    return name, days, None


@login_required
@require_http_methods(["GET", "POST"])
def my_account(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    error: MedarchiveError | None = None
    form = request.POST.get("form", "")
    new_token = ""
    status = 200
    if request.method == "POST" and form == "password":
        try:
            change_own_password(
                actor=actor,
                current=request.POST.get("current", ""),
                new=request.POST.get("new", ""),
                repeat=request.POST.get("repeat", ""),
            )
        except ValidationError as exc:
            error, status = exc, 422
        else:
            update_session_auth_hash(request, actor)  # stay logged in here; other sessions end
            messages.success(request, _("Your password was changed."))
            return HttpResponseRedirect(reverse("my-account"))
    elif request.method == "POST" and form == "token":
        name, days, error = _token_form(request)
        if error is None:
            expires = clock.now() + dt.timedelta(days=days) if days else None
            _token, new_token = create_token(actor, actor=actor, name=name, expires_at=expires)
        else:
            status = 422
    return render(
        request,
        "security/my_account.html",
        {
            "form": form,
            "tokens": own_tokens(actor),
            "new_token": new_token,
            "now": clock.now(),
            **problems_of(error),
        },
        status=status,
    )
