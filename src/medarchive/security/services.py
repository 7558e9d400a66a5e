"""State changes for identities, tokens and the audit trail. Each audits in its own transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _

from medarchive.core import clock, fastsql
from medarchive.core.errors import (
    Collector,
    ConfigurationError,
    Conflict,
    IntegrityFailure,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from medarchive.core.labels import with_labels
from medarchive.core.models import Department
from medarchive.security import audit, trailcheck
from medarchive.security.models import ROLE_LABELS, ApiToken, User
from medarchive.security.permissions import require
from medarchive.security.roles import Action, Role

ADMINISTRATORS = {Role.SYSADMIN, Role.SECADMIN, Role.AUDITOR}
TOKEN_PREFIX = "mda_"  # noqa: S105 - a public prefix that makes leaked tokens greppable


def add_user(
    username: str,
    *,
    actor: User | None,
    role: str,
    password: str,
    department_code: str | None = None,
    display_name: str = "",
    email: str = "",
) -> User:
    """Create an account. `actor=None` only for bootstrap (init/demo) from the local CLI.

    Every account carries a role, so creating one is assigning a role: it needs ROLE_ASSIGN
    (the security administrator). The three administrator accounts
    are created only from the local console at installation, never by another account,
    so no administrator can mint a colleague they control (SEC-02).
    """
    if actor is not None:
        require(actor, Action.ROLE_ASSIGN)
    role_value = Role(role) if role in {r.value for r in Role} else None
    if actor is not None and role_value is not None and role_value in ADMINISTRATORS:
        raise PermissionDenied(
            with_labels(
                _("“%(role)s” accounts are created only from the local console."), role=ROLE_LABELS[role_value]
            ),
            code="console_only",
            field="role",
            role=role_value.value,
            action=Action.ROLE_ASSIGN.value,
            actor_id=actor.pk,
        )
    problems = Collector()
    username = (username or "").strip()
    if not username:
        problems.add(
            ValidationError(
                with_labels(_("%(label)s is required."), label=_("用户名")), code="required", field="username"
            )
        )
    elif User.objects.filter(username=username).exists():
        problems.add(
            Conflict(
                _("The user %(username)s already exists."), code="user_exists", field="username", username=username
            )
        )
    if role_value is None:
        problems.add(
            ValidationError(
                _("The role %(role)s does not exist; choose one of %(choices)s."),
                code="invalid_choice",
                field="role",
                role=role,
                choices=[r.value for r in Role],
            )
        )
    department = None
    if department_code:
        department = Department.objects.filter(code=department_code).first()
        if department is None:
            problems.add(
                ValidationError(
                    _("The department %(department)s does not exist."),
                    code="unknown_department",
                    field="department",
                    department=department_code,
                )
            )
    elif role_value is not None and role_value in {Role.OFFICER, Role.CLINICIAN, Role.VIEWER}:
        problems.add(
            ValidationError(
                with_labels(_("A “%(role)s” account needs a department."), role=ROLE_LABELS[role_value]),
                code="department_required",
                field="department",
                role=role_value.value,
            )
        )
    email = email.strip()
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            problems.add(
                ValidationError(_("%(email)s is not an email address."), code="bad_email", field="email", email=email)
            )
    candidate = User(
        username=username,
        role=role_value.value if role_value else "",
        department=department,
        display_name=display_name,
        email=email,
    )
    try:
        validate_password(password, candidate)
    except DjangoValidationError as exc:
        problems.add(
            ValidationError(
                _("The password is not strong enough: %(reasons)s"),
                code="weak_password",
                field="password",
                reasons=" ".join(exc.messages),
            )
        )
    problems.raise_if_any()
    with transaction.atomic():
        candidate.set_password(password)
        candidate.save()
        audit.record_event(
            Action.USER_MANAGE,
            actor=actor,
            object_type="user",
            object_id=str(candidate.pk),
            details={"op": "add", "username": username, "role": candidate.role, "department": department_code or ""},
        )
    return candidate


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_token(
    user: User,
    *,
    actor: User | None,
    name: str = "cli",
    scopes: list[str] | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Return the token row and the raw secret; the secret is shown once and never stored.

    A token is issued to its owner only (or from the local console): an administrator who
    could mint a token for someone else could act as them.
    """
    if actor is not None and actor.pk != user.pk:
        raise PermissionDenied(
            _("API tokens are issued only to their owner."),
            code="token_owner_only",
            action=Action.TOKEN_MANAGE.value,
            actor_id=actor.pk,
        )
    unknown = [scope for scope in scopes or [] if scope not in {a.value for a in Action}]
    if unknown:
        raise ValidationError(
            _("Unknown token scopes: %(scopes)s."), code="unknown_scope", field="scopes", scopes=unknown
        )
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=raw[:12], digest=_digest(raw), scopes=scopes or [], expires_at=expires_at
        )
        audit.record_event(
            Action.TOKEN_MANAGE,
            actor=actor,
            object_type="token",
            object_id=str(token.pk),
            details={"op": "create", "user": user.username, "name": name},
        )
    return token, raw


def revoke_token(token_id: int, *, actor: User | None) -> None:
    """Owners revoke their own tokens; TOKEN_MANAGE holders revoke anyone's (a leaked token must die fast)."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise NotFound(
                _("The API token %(token)s does not exist."), code="token_not_found", field="token", token=token_id
            )
        if actor is not None and actor.pk != token.user_id:
            require(actor, Action.TOKEN_MANAGE)
        token.revoked_at = clock.now()
        token.save(update_fields=["revoked_at"])
        audit.record_event(
            Action.TOKEN_MANAGE, actor=actor, object_type="token", object_id=str(token_id), details={"op": "revoke"}
        )


def token_is_valid(raw: str) -> bool:
    """Whether `raw` is a live token of an active user: one indexed read, no write (the body gate asks
    this before a request's body is read, in the server's network thread)."""
    if not raw.startswith(TOKEN_PREFIX):
        return False
    live = ApiToken.objects.filter(digest=_digest(raw), revoked_at__isnull=True, user__is_active=True)
    now = clock.now()
    return live.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).exists()


def authenticate_token(raw: str) -> tuple[User, ApiToken] | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    # Prepared lookups: this runs before every API request (benchmarks/api.py).
    found = fastsql.select(ApiToken, digest=_digest(raw), limit=1)
    token = found[0] if found else None
    user = fastsql.get(User, token.user_id) if token is not None and token.revoked_at is None else None
    if token is None or user is None or not user.is_active:
        return None
    token.user = user
    now = clock.now()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    # Touch at most once a minute: a token used in a hot loop should not write on every call.
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


def verify_audit(*, actor: User | None) -> trailcheck.VerifyReport:
    """Walk the whole audit chain against its head and every checkpoint; when it verifies,
    append a checkpoint. The verification is itself audited (when the trail still can be)."""
    if actor is not None:
        require(actor, Action.AUDIT_VERIFY)
    sealed = _seal_first()  # every read written so far is covered by this walk
    report = trailcheck.verify_chain(write_checkpoint=True)
    return _record_check(_with_tail(report, sealed), actor=actor)


def checkpoint_audit(*, actor: User | None) -> trailcheck.VerifyReport:
    """Check what was appended since the last checkpoint and append a new one."""
    if actor is not None:
        require(actor, Action.AUDIT_VERIFY)
    sealed = _seal_first()
    return _record_check(_with_tail(trailcheck.write_checkpoint(), sealed), actor=actor)


def _seal_first() -> int:
    """Seal the waiting reads; a chain that cannot take them (its head is gone) is what verify reports."""
    try:
        return audit.seal_pending()
    except IntegrityFailure:
        return 0


def _with_tail(report: trailcheck.VerifyReport, sealed: int) -> trailcheck.VerifyReport:
    waiting, oldest = audit.unsealed()
    return report.with_tail(
        sealed_now=sealed, unsealed=waiting, oldest_unsealed=oldest.isoformat() if oldest is not None else None
    )


def _record_check(report: trailcheck.VerifyReport, *, actor: User | None) -> trailcheck.VerifyReport:
    try:
        with transaction.atomic():
            audit.record_event(
                Action.AUDIT_VERIFY,
                actor=actor,
                object_type="audit",
                result="success" if report.ok else "failure",
                details=report.audit_details(),
            )
    except (IntegrityFailure, ConfigurationError) as exc:
        if exc.code not in {"audit_head_missing", "audit_key_missing"}:
            raise
        # The report says why: the auditor must still get it.
        return report.with_warning(trailcheck.Notice("not_recorded"))
    return report


def rotate_audit_key(*, actor: User | None) -> tuple[str, tuple[str, ...]]:
    """Make a new audit key active; old keys stay so the entries they sealed still verify."""
    if actor is not None:
        require(actor, Action.KEYS_ROTATE)
    config = settings.CONFIG
    if config.audit_key:
        raise Conflict(
            gettext_lazy(
                "The audit key comes from MEDARCHIVE_AUDIT_KEY: add a key to the ring in your key manager "
                "and set it there."
            ),
            code="audit_key_external",
            field="MEDARCHIVE_AUDIT_KEY",
        )
    ring = audit.ensure_ring()
    new_id = ring.rotate(config.audit_key_file)
    audit.forget_ring()
    with transaction.atomic():
        audit.record_event(Action.KEYS_ROTATE, actor=actor, object_type="audit_key", object_id=new_id)
    return new_id, ring.key_ids
