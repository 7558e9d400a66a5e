"""Roles and the actions they may take. Pure data, no Django import.

The three separated administrators (三员分立, SEC-02) never overlap: the system admin
runs the system but cannot read or touch the audit log nor read record content; the
security admin manages identities and roles; the auditor reads and verifies the audit
log and changes nothing.
"""

from __future__ import annotations

from enum import StrEnum


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
    TOKEN_MANAGE = "token:manage"  # noqa: S105 - an action name, not a secret
    DUTY_MANAGE = "duty:manage"
    AUDIT_READ = "audit:read"
    AUDIT_VERIFY = "audit:verify"
    FIXITY_VERIFY = "fixity:verify"
    KEYS_ROTATE = "keys:rotate"
    SYSTEM_CONFIGURE = "system:configure"


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
    Role.SECADMIN: {Action.ROLE_ASSIGN, Action.USER_MANAGE, Action.TOKEN_MANAGE},
    Role.AUDITOR: {Action.AUDIT_READ, Action.AUDIT_VERIFY, Action.FIXITY_VERIFY},
    Role.ARCHIVIST: {Action.FIXITY_VERIFY, Action.DUTY_MANAGE, Action.DEPARTMENT_MAP},
}


def is_record_action(action: Action) -> bool:
    return action in _RECORD_ACTIONS


def record_scope(role: Role, action: Action) -> Scope:
    return RECORD_GRANTS.get(role, {}).get(action, Scope.NONE)


def may_system(role: Role, action: Action) -> bool:
    return action in SYSTEM_GRANTS.get(role, set())
