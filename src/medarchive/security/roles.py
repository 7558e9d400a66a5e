"""Roles and the actions they may take. Pure data (the action labels are lazy catalog entries).

The three separated administrators (三员分立, SEC-02) never overlap: the system admin
runs the system but cannot read or touch the audit log nor read record content; the
security admin manages identities and roles; the auditor reads and verifies the audit
log and changes nothing.
"""

from __future__ import annotations

from enum import StrEnum

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class Role(StrEnum):
    SYSADMIN = "sysadmin"
    SECADMIN = "secadmin"
    AUDITOR = "auditor"
    ARCHIVIST = "archivist"
    OFFICER = "officer"
    INTERFACE = "interface"  # a hospital system pushing records (HIS/EMR/PACS/LIS gateway)
    CLINICIAN = "clinician"
    RESEARCHER = "researcher"
    VIEWER = "viewer"


class Action(StrEnum):
    """Everything a permission is asked for, and the audit vocabulary (`area:object:verb`)."""

    AUTH_LOGIN = "auth:login"  # audit vocabulary only: no role is "granted" logging in
    RECORD_CREATE = "record:create"
    RECORD_UPDATE = "record:update"
    RECORD_SUBMIT = "record:submit"
    RECORD_ACCEPT = "record:accept"
    RECORD_ARCHIVE = "record:archive"
    RECORD_HOLD = "record:hold"
    RECORD_REVIEW = "record:review"  # accept, return, fix at the door (CAP-02)
    RECORD_WITHDRAW = "record:withdraw"
    RECORD_LIST = "record:list"
    RECORD_METADATA_READ = "record:metadata:read"
    RECORD_CONTENT_READ = "record:content:read"
    RECORD_PATIENT_READ = "record:patient:read"
    DEPARTMENT_MANAGE = "department:manage"
    DEPARTMENT_MAP = "department:map"  # the aliases hospital systems name departments by
    USER_MANAGE = "user:manage"
    ROLE_ASSIGN = "user:role:assign"
    ACCOUNT_UNLOCK = "user:unlock"
    TOKEN_MANAGE = "token:manage"  # noqa: S105 - an action name, not a secret
    DUTY_MANAGE = "duty:manage"
    AUDIT_READ = "audit:read"
    AUDIT_VERIFY = "audit:verify"
    FIXITY_VERIFY = "fixity:verify"
    KEYS_ROTATE = "keys:rotate"
    SYSTEM_CONFIGURE = "system:configure"


# What a refusal says the actor may not do ("You may not %(action)s."): a verb phrase per action.
ACTION_LABELS: dict[Action, Promise] = {
    Action.AUTH_LOGIN: _("log in"),
    Action.RECORD_CREATE: _("capture records"),
    Action.RECORD_UPDATE: _("change the description of records"),
    Action.RECORD_SUBMIT: _("submit records to the archive"),
    Action.RECORD_ACCEPT: _("accept records into the archive"),
    Action.RECORD_ARCHIVE: _("archive records"),
    Action.RECORD_HOLD: _("put archived records on hold"),
    Action.RECORD_REVIEW: _("review records at the door"),
    Action.RECORD_WITHDRAW: _("withdraw records"),
    Action.RECORD_LIST: _("list records"),
    Action.RECORD_METADATA_READ: _("read the description of records"),
    Action.RECORD_CONTENT_READ: _("read the files of records"),
    Action.RECORD_PATIENT_READ: _("see patient identifiers"),
    Action.DEPARTMENT_MANAGE: _("manage departments"),
    Action.USER_MANAGE: _("manage user accounts"),
    Action.ROLE_ASSIGN: _("assign roles"),
    Action.ACCOUNT_UNLOCK: _("unlock accounts"),
    Action.DEPARTMENT_MAP: _("map hospital department codes"),
    Action.TOKEN_MANAGE: _("manage API tokens"),
    Action.DUTY_MANAGE: _("manage department duties"),
    Action.AUDIT_READ: _("read the audit log"),
    Action.AUDIT_VERIFY: _("verify the audit log"),
    Action.FIXITY_VERIFY: _("run fixity checks"),
    Action.KEYS_ROTATE: _("rotate the encryption keys"),
    Action.SYSTEM_CONFIGURE: _("configure the system"),
}


class Scope(StrEnum):
    """How far a record permission reaches."""

    ALL = "all"
    DEPARTMENT = "department"  # records of the actor's own department
    OPEN = "open"  # records whose 开放标识 is 开放
    NONE = "none"


# Record-scoped actions: how far each role reaches.
_RECORD_ACTIONS = {
    Action.RECORD_CREATE,
    Action.RECORD_UPDATE,
    Action.RECORD_SUBMIT,
    Action.RECORD_ACCEPT,
    Action.RECORD_ARCHIVE,
    Action.RECORD_HOLD,
    Action.RECORD_REVIEW,
    Action.RECORD_WITHDRAW,
    Action.RECORD_LIST,
    Action.RECORD_METADATA_READ,
    Action.RECORD_CONTENT_READ,
    Action.RECORD_PATIENT_READ,
}

_READ = {Action.RECORD_LIST, Action.RECORD_METADATA_READ, Action.RECORD_CONTENT_READ}

RECORD_GRANTS: dict[Role, dict[Action, Scope]] = {
    Role.ARCHIVIST: dict.fromkeys(_RECORD_ACTIONS, Scope.ALL),
    Role.OFFICER: {
        **dict.fromkeys(_READ, Scope.DEPARTMENT),
        Action.RECORD_CREATE: Scope.DEPARTMENT,
        Action.RECORD_UPDATE: Scope.DEPARTMENT,
        Action.RECORD_SUBMIT: Scope.DEPARTMENT,
        Action.RECORD_WITHDRAW: Scope.DEPARTMENT,
        Action.RECORD_PATIENT_READ: Scope.DEPARTMENT,
    },
    # A system account: pushes for every department and reads back what it may serve (FHIR GET).
    # Give it scoped tokens; it never reviews, archives or holds.
    Role.INTERFACE: {
        **dict.fromkeys(_READ, Scope.ALL),
        Action.RECORD_CREATE: Scope.ALL,
        Action.RECORD_SUBMIT: Scope.ALL,
        Action.RECORD_PATIENT_READ: Scope.ALL,
    },
    Role.CLINICIAN: {**dict.fromkeys(_READ, Scope.DEPARTMENT), Action.RECORD_PATIENT_READ: Scope.DEPARTMENT},
    Role.RESEARCHER: dict.fromkeys(_READ, Scope.OPEN),
    Role.VIEWER: {Action.RECORD_LIST: Scope.DEPARTMENT, Action.RECORD_METADATA_READ: Scope.DEPARTMENT},
}

SYSTEM_GRANTS: dict[Role, set[Action]] = {
    Role.SYSADMIN: {
        Action.DEPARTMENT_MANAGE,
        Action.USER_MANAGE,
        Action.TOKEN_MANAGE,
        Action.FIXITY_VERIFY,
        Action.KEYS_ROTATE,
        Action.SYSTEM_CONFIGURE,
    },
    # Accounts' existence and description are the system administrator's; what an account may do
    # (its role), its credentials and lockouts are the security administrator's.
    Role.SECADMIN: {Action.ROLE_ASSIGN, Action.ACCOUNT_UNLOCK, Action.TOKEN_MANAGE},
    Role.AUDITOR: {Action.AUDIT_READ, Action.AUDIT_VERIFY, Action.FIXITY_VERIFY},
    Role.ARCHIVIST: {Action.FIXITY_VERIFY, Action.DUTY_MANAGE, Action.DEPARTMENT_MAP},
}


def is_record_action(action: Action) -> bool:
    return action in _RECORD_ACTIONS


def record_scope(role: Role, action: Action) -> Scope:
    return RECORD_GRANTS.get(role, {}).get(action, Scope.NONE)


def may_system(role: Role, action: Action) -> bool:
    return action in SYSTEM_GRANTS.get(role, set())
