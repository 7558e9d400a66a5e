"""Fonds and departments."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy

from medarchive.core import refcache
from medarchive.core.errors import Conflict, NotFound, ValidationError
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


def add_department(code: str, name: str, *, actor: User | None) -> Department:
    """Create a department. `actor=None` only for local bootstrap (init/demo)."""
    if actor is not None:
        require(actor, Action.DEPARTMENT_MANAGE)
    code, name = code.strip(), name.strip()
    if not code or not name:
        raise ValidationError("department code and name are required", field="code" if not code else "name")
    if not code.replace("_", "").isalnum():
        raise ValidationError(f"department code {code!r} may hold only letters, digits and _", field="code")
    if Department.objects.filter(code=code).exists():
        raise Conflict(f"department {code!r} already exists", field="code")
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
                gettext_lazy("There is no department %(department)s."),
                code="unknown_department",
                field="code",
                department=code,
            )
        changed: dict[str, list[Any]] = {}
        if name is not None:
            name = name.strip()
            if not name or len(name) > NAME_LIMIT or any(ord(c) < 32 for c in name):
                raise ValidationError(
                    gettext_lazy("The department name must be one line of 1 to %(limit)s characters."),
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
