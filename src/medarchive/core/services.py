"""Fonds and departments."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from medarchive.core import refcache
from medarchive.core.errors import Collector, Conflict, NotFound, ValidationError
from medarchive.core.labels import label, with_labels
from medarchive.core.models import Department, Fonds
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action

NAME_LIMIT = 200


def ensure_fonds() -> Fonds:
    """The configured fonds, created on first use (cached: see `core.refcache`)."""
    code = settings.CONFIG.fonds_code

    def load() -> Fonds:
        return Fonds.objects.get_or_create(code=code, defaults={"name": settings.CONFIG.fonds_name})[0]

    fonds = refcache.cached(("fonds", code), load)
    assert fonds is not None  # get_or_create always returns a row
    return fonds


def active_department(code: str) -> Department | None:
    return refcache.cached(("department", code), lambda: Department.objects.filter(code=code, active=True).first())


def known_department(code: str, *, field: str = "department") -> Department:
    """The active department with this code, or a ValidationError naming the active ones."""
    code = (code or "").strip()
    if not code:
        raise ValidationError(
            with_labels(_("%(label)s is required."), label=label("department")), code="required", field=field
        )
    department = active_department(code)
    if department is None:
        known = list(Department.objects.filter(active=True).order_by("code").values_list("code", flat=True))
        if not known:
            raise ValidationError(
                _("The department %(department)s does not exist: no department has been set up yet."),
                code="unknown_department",
                field=field,
                department=code,
            )
        raise ValidationError(
            _("The department %(department)s does not exist; the active departments are %(known)s."),
            code="unknown_department",
            field=field,
            department=code,
            known=known,
        )
    return department


def add_department(code: str, name: str, *, actor: User | None) -> Department:
    """Create a department. `actor=None` only for local bootstrap (init/demo)."""
    if actor is not None:
        require(actor, Action.DEPARTMENT_MANAGE)
    code, name = code.strip(), name.strip()
    problems = Collector()
    if not code:
        problems.add(
            ValidationError(
                with_labels(_("%(label)s is required."), label=_("部门代码")), code="required", field="code"
            )
        )
    elif not code.replace("_", "").isalnum():
        problems.add(
            ValidationError(
                _("The department code %(department)s may hold only letters, digits and _."),
                code="bad_department_code",
                field="code",
                department=code,
            )
        )
    if not name:
        problems.add(
            ValidationError(
                with_labels(_("%(label)s is required."), label=_("部门名称")), code="required", field="name"
            )
        )
    problems.raise_if_any()
    if Department.objects.filter(code=code).exists():
        raise Conflict(
            _("The department %(department)s already exists."),
            code="department_exists",
            field="code",
            department=code,
        )
    with transaction.atomic():
        department = Department.objects.create(code=code, name=name, fonds=ensure_fonds())
        audit.record_event(
            Action.DEPARTMENT_MANAGE,
            actor=actor,
            object_type="department",
            object_id=code,
            details={"op": "add", "name": name},
        )
    return department


def update_department(code: str, *, actor: User, name: str | None = None, active: bool | None = None) -> Department:
    """Rename a department or switch it off (it keeps its records and accounts; new ones cannot use it)."""
    require(actor, Action.DEPARTMENT_MANAGE)
    with transaction.atomic():
        department = Department.objects.select_for_update().filter(code=code).first()
        if department is None:
            raise NotFound(
                _("There is no department %(department)s."),
                code="unknown_department",
                field="code",
                department=code,
            )
        changed: dict[str, list[Any]] = {}
        if name is not None:
            name = name.strip()
            if not name or len(name) > NAME_LIMIT or any(ord(c) < 32 for c in name):
                raise ValidationError(
                    _("The department name must be one line of 1 to %(limit)s characters."),
                    code="bad_department_name",
                    field="name",
                    limit=NAME_LIMIT,
                )
            if name != department.name:
                changed["name"] = [department.name, name]
                department.name = name
        if active is not None and active != department.active:
            changed["active"] = [department.active, active]
            department.active = active
        if changed:
            department.save(update_fields=["name", "active"])
            audit.record_event(
                Action.DEPARTMENT_MANAGE,
                actor=actor,
                object_type="department",
                object_id=department.code,
                details={"op": "update", "changed": changed},
            )
    return department
