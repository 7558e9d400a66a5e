"""The one permission choke point.

`require(actor, action, obj)` is the first line of every service; `visible_to(actor)`
is the only way list and search queries see records, so a list can never show what a
`require` would refuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import NotAuthenticated, PermissionDenied
from medarchive.core.labels import with_labels
from medarchive.security import context
from medarchive.security.roles import ACTION_LABELS, Action, Role, Scope, is_record_action, may_system, record_scope

if TYPE_CHECKING:
    from medarchive.security.models import User

OPEN = "开放"
# Only these states are ever open to outside readers: a draft marked 开放 by its author is not public.
PUBLISHED_STATES = ("archived", "on_hold")


class DepartmentOwned(Protocol):
    department_id: Any
    open_status: str
    state: str
    pk: Any


def _active(actor: User | None) -> User:
    if actor is None or not actor.is_authenticated or not actor.is_active:
        raise NotAuthenticated(_("Please log in first."), code="not_authenticated")
    return actor


def record_allows(actor: User, action: Action, record: DepartmentOwned | None, *, department_id: Any = None) -> bool:
    scope = record_scope(Role(actor.role), action)
    if scope is Scope.ALL:
        return True
    if scope is Scope.DEPARTMENT:
        dept = record.department_id if record is not None else department_id
        return actor.department_id is not None and (dept is None or dept == actor.department_id)
    if scope is Scope.OPEN:
        return record is None or (record.open_status == OPEN and record.state in PUBLISHED_STATES)
    return False


def can(actor: User | None, action: Action, obj: DepartmentOwned | None = None, *, department_id: Any = None) -> bool:
    try:
        user = _active(actor)
    except NotAuthenticated:
        return False
    scopes = context.token_scopes.get()
    if scopes and action.value not in scopes:  # an API token narrowed to some actions
        return False
    if is_record_action(action):
        return record_allows(user, action, obj, department_id=department_id)
    return may_system(Role(user.role), action)


def require(
    actor: User | None, action: Action, obj: DepartmentOwned | None = None, *, department_id: Any = None
) -> User:
    """Return the actor when allowed; raise PermissionDenied otherwise. The message names the action
    as people read it; `details.action` keeps its machine name for the audit trail."""
    user = _active(actor)
    scopes = context.token_scopes.get()
    if scopes and action.value not in scopes:
        raise PermissionDenied(
            with_labels(_("This API token may not %(action)s."), action=ACTION_LABELS[action]),
            code="token_not_scoped",
            action=action.value,
            actor_id=user.pk,
        )
    if not can(user, action, obj, department_id=department_id):
        raise PermissionDenied(
            with_labels(_("You may not %(action)s."), action=ACTION_LABELS[action]),
            code="permission_denied",
            action=action.value,
            object_id=str(obj.pk) if obj is not None else "",
            actor_id=user.pk,
        )
    return user


def visible_to(actor: User | None, action: Action = Action.RECORD_LIST) -> Q:
    """The filter every record query goes through."""
    try:
        user = _active(actor)
    except NotAuthenticated:
        return Q(pk__in=[])
    scopes = context.token_scopes.get()
    if scopes and action.value not in scopes:
        return Q(pk__in=[])
    scope = record_scope(Role(user.role), action)
    if scope is Scope.ALL:
        return Q()
    if scope is Scope.DEPARTMENT and user.department_id is not None:
        return Q(department_id=user.department_id)
    if scope is Scope.OPEN:
        return Q(open_status=OPEN, state__in=PUBLISHED_STATES)
    return Q(pk__in=[])
