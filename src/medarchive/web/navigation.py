"""The navigation: one list of every page a role may be sent to, and who may use it.

The top bar, the dashboard's shortcuts and the browser test that walks every role
through every link all read this list, so a page added here is offered to exactly the
roles that may open it — and tested for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from medarchive.security.models import User
from medarchive.security.permissions import can
from medarchive.security.roles import Action, Role, Scope, record_scope


@dataclass(frozen=True)
class Entry:
    url_name: str
    label: Promise
    allowed: Callable[[User], bool]
    group: str = "work"  # work | system | security | audit
    hint: Promise | None = None

    @property
    def url(self) -> str:
        return reverse(self.url_name)


def _may(action: Action) -> Callable[[User], bool]:
    return lambda user: can(user, action)


def _reads_duties(user: User) -> bool:
    """Archivists see every department's duties; department readers their own; open-record readers none."""
    if can(user, Action.DUTY_MANAGE):
        return True
    scope = record_scope(Role(user.role), Action.RECORD_LIST)
    return scope is Scope.ALL or (scope is Scope.DEPARTMENT and user.department_id is not None)


def _submits(user: User) -> bool:
    return can(user, Action.RECORD_CREATE) or can(user, Action.RECORD_REVIEW)


ENTRIES: tuple[Entry, ...] = (
    Entry("dashboard", _("Dashboard"), lambda user: True),
    Entry("record-list", _("Records"), _may(Action.RECORD_LIST)),
    Entry("record-new", _("Upload"), _may(Action.RECORD_CREATE)),
    Entry("review-queue", _("Review queue"), _may(Action.RECORD_REVIEW)),
    Entry("returned-inbox", _("Returned"), _may(Action.RECORD_CREATE)),
    Entry("submission-list", _("Submissions"), _submits),
    Entry("duties-dashboard", _("Duties"), _reads_duties),
    Entry("department-aliases", _("Department codes"), _may(Action.DEPARTMENT_MAP)),
    Entry(
        "system-accounts",
        _("Accounts"),
        _may(Action.USER_MANAGE),
        "system",
        _("Activate, deactivate and describe accounts."),
    ),
    Entry(
        "system-departments",
        _("Departments"),
        _may(Action.DEPARTMENT_MANAGE),
        "system",
        _("The hospital's departments and their codes."),
    ),
    Entry(
        "system-tokens",
        _("API tokens"),
        _may(Action.TOKEN_MANAGE),
        "system",
        _("Tokens of hospital systems and scripts; revoke a leaked one at once."),
    ),
    Entry(
        "system-storage",
        _("Storage and keys"),
        _may(Action.SYSTEM_CONFIGURE),
        "system",
        _("Where the files are kept, how much, and which keys protect them."),
    ),
    Entry(
        "security-roles",
        _("Roles"),
        _may(Action.ROLE_ASSIGN),
        "security",
        _("Create accounts and decide what each may do."),
    ),
    Entry(
        "security-lockouts",
        _("Lockouts"),
        _may(Action.ACCOUNT_UNLOCK),
        "security",
        _("Accounts locked after failed logins; unlock them."),
    ),
    Entry(
        "audit-trail",
        _("Audit trail"),
        _may(Action.AUDIT_READ),
        "audit",
        _("Who did what, when, from where; verify the chain."),
    ),
)


def entries_for(user: User | None) -> list[Entry]:
    if user is None or not user.is_authenticated:
        return []
    return [entry for entry in ENTRIES if entry.allowed(user)]
