"""The system administrator's department page: list, add, rename, switch off and on."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from medarchive.core.errors import MedarchiveError, ValidationError
from medarchive.core.models import Department
from medarchive.core.services import add_department, update_department
from medarchive.security.api_auth import actor_of
from medarchive.security.permissions import require
from medarchive.security.roles import Action
from medarchive.web.forms import problems_of


@login_required
@require_http_methods(["GET", "POST"])
def department_list(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    require(actor, Action.DEPARTMENT_MANAGE)
    values = {"code": "", "name": ""}
    error: MedarchiveError | None = None
    if request.method == "POST":
        values = {k: request.POST.get(k, "").strip() for k in values}
        try:
            department = add_department(values["code"], values["name"], actor=actor)
        except ValidationError as exc:
            error = exc
        except MedarchiveError as exc:
            if exc.status != 409:
                raise
            error = exc
        else:
            messages.success(request, _("The department %(name)s was added.") % {"name": department.name})
            return HttpResponseRedirect(reverse("system-departments"))
    rows = Department.objects.annotate(n_users=Count("users", distinct=True)).order_by("-active", "code")
    return render(
        request,
        "core/departments.html",
        {"rows": rows, "values": values, **problems_of(error)},
        status=error.status if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def department_edit(request: HttpRequest, code: str) -> HttpResponse:
    actor = actor_of(request)
    require(actor, Action.DEPARTMENT_MANAGE)
    department = Department.objects.filter(code=code).first()
    if department is None:
        raise Http404
    values = {"name": department.name, "active": department.active}
    error: MedarchiveError | None = None
    if request.method == "POST":
        values = {"name": request.POST.get("name", ""), "active": request.POST.get("active") == "1"}
        try:
            update_department(code, actor=actor, name=str(values["name"]), active=bool(values["active"]))
        except ValidationError as exc:
            error = exc
        else:
            messages.success(request, _("The department %(code)s was saved.") % {"code": code})
            return HttpResponseRedirect(reverse("system-departments"))
    return render(
        request,
        "core/department_edit.html",
        {"department": department, "values": values, **problems_of(error)},
        status=422 if error else 200,
    )
