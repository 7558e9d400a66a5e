"""The department code table (部门代码映射): list with filters, add, edit, delete with a confirmation.
Thin: parse the form, call `core.aliases`, render (errors beside their fields)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from medarchive.core import aliases
from medarchive.core.department_codes import ALIAS_KINDS, Kind
from medarchive.core.errors import MedarchiveError, PermissionDenied, Problems
from medarchive.core.models import Department
from medarchive.security import audit
from medarchive.security.api_auth import actor_of
from medarchive.web.errors import error_page

KIND_LABELS = {
    Kind.FHIR_PRACTICE_SETTING: gettext_lazy("FHIR practiceSetting (code system and code)"),
    Kind.FHIR_ORGANIZATION: gettext_lazy("FHIR custodian Organization identifier"),
    Kind.HL7_LOCATION: gettext_lazy("HL7 PV1-3 point of care"),
    Kind.HL7_FACILITY: gettext_lazy("HL7 MSH-4 sending facility"),
    Kind.DICOM_INSTITUTION: gettext_lazy("DICOM institution or department name"),
}
SYSTEM_HINTS = {
    Kind.FHIR_PRACTICE_SETTING: gettext_lazy("the coding's system URI (required)"),
    Kind.FHIR_ORGANIZATION: gettext_lazy("the identifier's system URI (required)"),
    Kind.HL7_LOCATION: gettext_lazy("PV1-3.4 facility; blank matches any"),
    Kind.HL7_FACILITY: gettext_lazy("always blank"),
    Kind.DICOM_INSTITUTION: gettext_lazy("for a department name: its Institution Name; blank matches any"),
}
FIELDS = ("kind", "system", "key", "department", "note")


def _refused(request: HttpRequest, exc: MedarchiveError) -> HttpResponse:
    if isinstance(exc, PermissionDenied):
        audit.record_refusal(exc)
    return error_page(request, exc.status, exc.message)


def _errors(exc: MedarchiveError) -> dict[str, list[str]]:
    if isinstance(exc, Problems):
        return exc.by_field()
    return {exc.field or "": [exc.message]}


def _values(post: Any) -> dict[str, str]:
    return {name: str(post.get(name, "")) for name in FIELDS}


def _form_context(values: dict[str, str], errors: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "general_errors": [m for f, ms in errors.items() if f not in FIELDS for m in ms],
        "kinds": [(k.value, KIND_LABELS[k]) for k in ALIAS_KINDS],
        "hints": [(KIND_LABELS[k], SYSTEM_HINTS[k]) for k in ALIAS_KINDS],
        "departments": Department.objects.filter(active=True).order_by("code"),
    }


@login_required
def alias_list(request: HttpRequest) -> HttpResponse:
    user = actor_of(request)
    filters = {name: request.GET.get(name, "").strip() for name in ("kind", "department", "q")}
    values = {"kind": "", "system": "", "key": "", "department": "", "note": ""}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = _values(request.POST)
        try:
            alias = aliases.add_alias(
                values["kind"],
                values["key"],
                values["department"],
                system=values["system"],
                note=values["note"],
                actor=user,
            )
        except PermissionDenied as exc:
            return _refused(request, exc)
        except MedarchiveError as exc:
            errors, status = _errors(exc), exc.status
        else:
            messages.success(request, _("Mapped %(key)s to %(department)s.") % _labels(alias))
            return HttpResponseRedirect(reverse("department-aliases"))
    try:
        rows = list(
            aliases.list_aliases(user, kind=filters["kind"], department=filters["department"], search=filters["q"])
        )
    except MedarchiveError as exc:
        return _refused(request, exc)
    context = _form_context(values, errors)
    labels = dict(context["kinds"])
    context |= {"rows": [(a, labels.get(a.kind, a.kind)) for a in rows], "filters": filters}
    return render(request, "core/aliases.html", context, status=status)


def _labels(alias: Any) -> dict[str, str]:
    return {"key": alias.key, "department": f"{alias.department.code} {alias.department.name}"}


@login_required
def alias_edit(request: HttpRequest, alias_id: int) -> HttpResponse:
    user = actor_of(request)
    try:
        alias = aliases.get_alias(alias_id, actor=user)
    except MedarchiveError as exc:
        return _refused(request, exc)
    values = {
        "kind": alias.kind,
        "system": alias.system,
        "key": alias.key,
        "department": alias.department.code,
        "note": alias.note,
    }
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = _values(request.POST)
        try:
            alias = aliases.change_alias(alias_id, values, actor=user)
        except PermissionDenied as exc:
            return _refused(request, exc)
        except MedarchiveError as exc:
            errors, status = _errors(exc), exc.status
        else:
            messages.success(request, _("Mapped %(key)s to %(department)s.") % _labels(alias))
            return HttpResponseRedirect(reverse("department-aliases"))
    context = _form_context(values, errors) | {"alias": alias}
    return render(request, "core/alias_edit.html", context, status=status)


@login_required
def alias_delete(request: HttpRequest, alias_id: int) -> HttpResponse:
    user = actor_of(request)
    try:
        alias = aliases.get_alias(alias_id, actor=user)
        if request.method == "POST":
            labels = _labels(alias)
            aliases.remove_alias(alias_id, actor=user)
            messages.success(request, _("Removed the mapping of %(key)s to %(department)s.") % labels)
            return HttpResponseRedirect(reverse("department-aliases"))
    except MedarchiveError as exc:
        return _refused(request, exc)
    kind_label = KIND_LABELS.get(Kind(alias.kind), alias.kind) if alias.kind in ALIAS_KINDS else alias.kind
    return render(request, "core/alias_delete.html", {"alias": alias, "kind_label": kind_label})
