"""Changing accounts after they exist: description and activation (the system administrator), role,
password reset and unlocking (the security administrator), one's own password (everyone).

Separation of duties (SEC-02): the three administrator accounts are changed only from the
local console, never by another account, and nobody changes their own role or activation —
otherwise one administrator could silence or become another.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import Collector, NotFound, PermissionDenied, ValidationError
from medarchive.core.models import Department
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action, Role

ADMINISTRATORS = frozenset({Role.SYSADMIN, Role.SECADMIN, Role.AUDITOR})
DEPARTMENT_ROLES = frozenset({Role.OFFICER, Role.CLINICIAN, Role.VIEWER})
MAX_NAME = 100


def _target(user_id: Any, actor: User, action: Action) -> User:
    user = User.objects.select_for_update().filter(pk=_int(user_id)).first()
    if user is None:
        raise NotFound(_("There is no account %(user_id)s."), code="unknown_account", user_id=user_id)
    if Role(user.role) in ADMINISTRATORS:
        raise PermissionDenied(
            _("Administrator accounts are changed only from the local console."),
            code="administrator_account",
            action=action.value,
            object_id=str(user.pk),
            actor_id=actor.pk,
        )
    return user


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _not_self(user: User, actor: User, action: Action) -> None:
    if user.pk == actor.pk:
        raise PermissionDenied(
            _("You cannot change this for your own account."),
            code="own_account",
            action=action.value,
            object_id=str(user.pk),
            actor_id=actor.pk,
        )


def _department(code: str, role: Role, problems: Collector) -> Department | None:
    code = (code or "").strip()
    if not code:
        if role in DEPARTMENT_ROLES:
            problems.add(
                ValidationError(_("This role needs a department."), code="department_required", field="department")
            )
        return None
    department = Department.objects.filter(code=code, active=True).first()
    if department is None:
        problems.add(
            ValidationError(
                _("There is no active department %(department)s."),
                code="unknown_department",
                field="department",
                department=code,
            )
        )
    return department


def set_active(user_id: Any, active: bool, *, actor: User) -> User:
    """Deactivate (sessions and API tokens stop working at once) or reactivate an account."""
    require(actor, Action.USER_MANAGE)
    with transaction.atomic():
        user = _target(user_id, actor, Action.USER_MANAGE)
        _not_self(user, actor, Action.USER_MANAGE)
        if user.is_active != active:
            user.is_active = active
            user.save(update_fields=["is_active"])
            audit.record_event(
                Action.USER_MANAGE,
                actor=actor,
                object_type="user",
                object_id=str(user.pk),
                details={"op": "activate" if active else "deactivate", "username": user.username},
            )
    return user


def update_profile(user_id: Any, *, actor: User, display_name: str, email: str, department_code: str) -> User:
    """Name, email and department; every problem reported at once."""
    require(actor, Action.USER_MANAGE)
    with transaction.atomic():
        user = _target(user_id, actor, Action.USER_MANAGE)
        problems = Collector()
        display_name = display_name.strip()
        if len(display_name) > MAX_NAME or any(ord(c) < 32 for c in display_name):
            problems.add(
                ValidationError(
                    _("The name must be one line of at most %(limit)s characters."),
                    code="bad_name",
                    field="display_name",
                    limit=MAX_NAME,
                )
            )
        email = email.strip()
        if email:
            try:
                validate_email(email)
            except DjangoValidationError:
                problems.add(
                    ValidationError(
                        _("%(email)s is not an email address."), code="bad_email", field="email", email=email
                    )
                )
        department = _department(department_code, Role(user.role), problems)
        problems.raise_if_any()
        before = {"display_name": user.display_name, "email": user.email, "department": _code(user.department)}
        user.display_name, user.email, user.department = display_name, email, department
        user.save(update_fields=["display_name", "email", "department"])
        after = {"display_name": user.display_name, "email": user.email, "department": _code(user.department)}
        changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        if changed:
            audit.record_event(
                Action.USER_MANAGE,
                actor=actor,
                object_type="user",
                object_id=str(user.pk),
                details={"op": "profile", "username": user.username, "changed": changed},
            )
    return user


def _code(department: Department | None) -> str:
    return department.code if department is not None else ""


def assign_role(user_id: Any, role: str, *, actor: User, department_code: str = "") -> User:
    """Give an account another role (never an administrator role: those are set at installation)."""
    require(actor, Action.ROLE_ASSIGN)
    with transaction.atomic():
        user = _target(user_id, actor, Action.ROLE_ASSIGN)
        _not_self(user, actor, Action.ROLE_ASSIGN)
        problems = Collector()
        try:
            new_role = Role(role)
        except ValueError:
            raise ValidationError(
                _("There is no role %(role)s."), code="unknown_role", field="role", role=role
            ) from None
        if new_role in ADMINISTRATORS:
            raise PermissionDenied(
                _("Administrator roles are given only from the local console."),
                code="administrator_role",
                action=Action.ROLE_ASSIGN.value,
                object_id=str(user.pk),
                actor_id=actor.pk,
            )
        department = _department(department_code or _code(user.department), new_role, problems)
        problems.raise_if_any()
        old_role, old_department = user.role, _code(user.department)
        user.role, user.department = new_role.value, department
        user.save(update_fields=["role", "department"])
        audit.record_event(
            Action.ROLE_ASSIGN,
            actor=actor,
            object_type="user",
            object_id=str(user.pk),
            details={
                "username": user.username,
                "role": [old_role, new_role.value],
                "department": [old_department, _code(department)],
            },
        )
    return user


def temporary_password() -> str:
    """Readable (no 0/O, 1/l), and it passes the password rules: lower, upper, digit and a symbol."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
    body = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{body[:4]}-{body[4:8]}-{body[8:]}-{secrets.choice('ABCDEFGHJK')}{secrets.randbelow(10)}a"


def reset_password(user_id: Any, *, actor: User) -> tuple[User, str]:
    """A new temporary password, shown once to the security administrator; sessions end."""
    require(actor, Action.ROLE_ASSIGN)
    with transaction.atomic():
        user = _target(user_id, actor, Action.ROLE_ASSIGN)
        _not_self(user, actor, Action.ROLE_ASSIGN)
        password = temporary_password()
        user.set_password(password)
        user.save(update_fields=["password"])
        audit.record_event(
            Action.ROLE_ASSIGN,
            actor=actor,
            object_type="user",
            object_id=str(user.pk),
            details={"op": "reset_password", "username": user.username},
        )
    return user, password


def change_own_password(*, actor: User, current: str, new: str, repeat: str) -> User:
    """Everyone changes their own password; every problem (wrong current, mismatch, rules) at once."""
    if not actor.is_authenticated or not actor.is_active:
        raise PermissionDenied(_("Log in first."), code="not_logged_in", action="user:password", actor_id=actor.pk)
    problems = Collector()
    if not actor.check_password(current):
        problems.add(ValidationError(_("The current password is wrong."), code="wrong_password", field="current"))
    if new != repeat:
        problems.add(ValidationError(_("The two new passwords differ."), code="passwords_differ", field="repeat"))
    try:
        validate_password(new, actor)
    except DjangoValidationError as exc:
        for message in exc.messages:
            problems.add(ValidationError(message, code="weak_password", field="new"))
    problems.raise_if_any()
    with transaction.atomic():
        actor.set_password(new)
        actor.save(update_fields=["password"])
        audit.record_event(
            Action.USER_MANAGE,
            actor=actor,
            object_type="user",
            object_id=str(actor.pk),
            details={"op": "change_own_password", "username": actor.username},
        )
    return actor


def unlock(username: str, *, actor: User) -> int:
    """Forget the failed logins of an account so it may log in again; returns how many were forgotten."""
    require(actor, Action.ACCOUNT_UNLOCK)
    from axes.models import AccessAttempt  # noqa: PLC0415 - axes reads settings when imported

    with transaction.atomic():
        attempts = AccessAttempt.objects.filter(username=username)
        count = sum(attempts.values_list("failures_since_start", flat=True))
        if not attempts.exists():
            raise NotFound(_("%(username)s is not locked."), code="not_locked", field="username", username=username)
        attempts.delete()
        audit.record_event(
            Action.ACCOUNT_UNLOCK,
            actor=actor,
            object_type="user",
            object_id=username[:64],
            details={"username": username[:150], "failures": count},
        )
    return count


def lockout_limit() -> int:
    return int(settings.AXES_FAILURE_LIMIT)
