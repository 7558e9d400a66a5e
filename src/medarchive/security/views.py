"""Log in and out. django-axes counts failures and locks the account (SEC-01)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.roles import Action


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
