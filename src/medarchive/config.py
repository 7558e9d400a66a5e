"""The one place that reads the environment.

Every setting is `MEDARCHIVE_*` (plus `DATABASE_URL`), typed here, with a default
that makes the embedded single-machine setup work. In production mode
(`MEDARCHIVE_ENV=production`) a missing mandatory secret is a loud startup failure
instead of a generated file.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medarchive.archiving.archival_code import DEFAULT_PATTERN as DEFAULT_ARCHIVAL_CODE_PATTERN
from medarchive.core import private
from medarchive.core.errors import ConfigurationError

PREFIX = "MEDARCHIVE_"
DEFAULT_MAX_UPLOAD = 512 * 1024 * 1024


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(PREFIX + name)
    return default if value is None or value == "" else value


def _address(name: str) -> str:
    """An IP address, or "" when unset (a host name or a list would silently match no client)."""
    raw = (_env(name, "") or "").strip()
    if raw:
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            raise ConfigurationError(
                f"{PREFIX}{name} must be one IP address, got {raw!r}", field=PREFIX + name
            ) from None
    return raw


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{PREFIX}{name} must be an integer, got {raw!r}", field=PREFIX + name) from None


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{PREFIX}{name} must be true or false, got {raw!r}", field=PREFIX + name)


def _positive(value: int, name: str) -> int:
    if value <= 0:
        raise ConfigurationError(f"{PREFIX}{name} must be more than 0, got {value}", field=PREFIX + name)
    return value


@dataclass(frozen=True)
class Config:
    env: str
    data_dir: Path
    database_url: str = field(repr=False)  # may carry a password
    secret_key: str = field(repr=False)
    debug: bool
    allowed_hosts: tuple[str, ...]
    storage: str
    s3_bucket: str | None
    s3_endpoint_url: str | None
    s3_prefix: str
    cipher: str
    master_key: str | None = field(repr=False)
    key_file: Path
    max_upload_bytes: int
    session_idle_seconds: int
    lockout_attempts: int
    lockout_minutes: int
    language: str
    fonds_code: str
    fonds_name: str
    audit_hash: str
    audit_key: str | None = field(repr=False)  # the audit chain's HMAC key ring (ADR 0013)
    audit_key_file: Path
    audit_checkpoint_dir: Path  # checkpoints of the audit chain, outside the database
    archival_code_pattern: str
    resumable_threshold_bytes: int  # files larger than this are sent as resumable uploads
    staging_grace_seconds: int  # staged writes untouched this long are debris of a killed writer
    watch_dir: Path | None  # the watched drop folder (CAP-08); None = no watcher
    watch_user: str  # the account the worker captures watched-folder files as
    email_backend: str
    email_host: str
    email_port: int
    email_user: str
    email_password: str = field(repr=False)
    email_tls: bool
    email_from: str
    # SQLite's PRAGMA synchronous: FULL syncs the WAL at every commit, so an acknowledged record
    # survives a power cut (ADR 0015); NORMAL is only for measuring what that costs.
    sqlite_synchronous: str = "FULL"
    # How often a server's or worker's sealer moves audited reads into the chain (ADR 0020): the
    # bound on how long a read entry stays unsealed.
    audit_seal_ms: int = 1000
    # The reverse proxy (an address) whose X-Forwarded-* headers are believed; "" = none (docs/operations.md).
    trusted_proxy: str = ""

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _secret_key(env: str, data_dir: Path) -> str:
    explicit = _env("SECRET_KEY")
    if explicit:
        return explicit
    if env == "production":
        raise ConfigurationError(f"{PREFIX}SECRET_KEY is missing and has no default in production mode")
    # Embedded mode: generate once and keep it beside the data it protects.
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    private.make_dir(data_dir)
    value = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value)
    return value


def load() -> Config:
    env = _env("ENV", "embedded") or "embedded"
    if env not in {"embedded", "production", "test"}:
        raise ConfigurationError(f"{PREFIX}ENV must be embedded, production or test, got {env!r}")
    data_dir = Path(_env("DATA_DIR", "medarchive-data") or "medarchive-data").expanduser().resolve()
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir / 'medarchive.sqlite3'}"
    storage = _env("STORAGE", "local") or "local"
    if storage not in {"local", "s3"}:
        raise ConfigurationError(f"{PREFIX}STORAGE must be local or s3, got {storage!r}")
    cipher = _env("CIPHER", "aes-256-gcm") or "aes-256-gcm"
    if cipher not in {"aes-256-gcm", "sm4-gcm"}:
        raise ConfigurationError(f"{PREFIX}CIPHER must be aes-256-gcm or sm4-gcm, got {cipher!r}")
    s3_bucket = _env("S3_BUCKET")
    if storage == "s3" and not s3_bucket:
        raise ConfigurationError(f"{PREFIX}S3_BUCKET is required when {PREFIX}STORAGE=s3")
    master_key = _env("MASTER_KEY")
    if env == "production" and not master_key and not _env("KEY_FILE"):
        raise ConfigurationError(f"{PREFIX}MASTER_KEY or {PREFIX}KEY_FILE is required in production mode")
    audit_hash = _env("AUDIT_HASH", "sm3") or "sm3"
    if audit_hash not in {"sm3", "sha256"}:
        raise ConfigurationError(f"{PREFIX}AUDIT_HASH must be sm3 or sha256, got {audit_hash!r}")
    audit_key = _env("AUDIT_KEY")
    if env == "production" and not audit_key and not _env("AUDIT_KEY_FILE"):
        raise ConfigurationError(f"{PREFIX}AUDIT_KEY or {PREFIX}AUDIT_KEY_FILE is required in production mode")
    key_file = Path(_env("KEY_FILE") or data_dir / "keys.json").expanduser()
    hosts = _env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver") or ""
    synchronous = (_env("SQLITE_SYNCHRONOUS", "FULL") or "FULL").upper()
    if synchronous not in {"FULL", "EXTRA", "NORMAL"}:
        raise ConfigurationError(f"{PREFIX}SQLITE_SYNCHRONOUS must be FULL, EXTRA or NORMAL, got {synchronous!r}")
    return Config(
        env=env,
        data_dir=data_dir,
        database_url=database_url,
        secret_key=_secret_key(env, data_dir),
        debug=_env_bool("DEBUG", False),
        allowed_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()),
        storage=storage,
        s3_bucket=s3_bucket,
        s3_endpoint_url=_env("S3_ENDPOINT_URL"),
        s3_prefix=_env("S3_PREFIX", "") or "",
        cipher=cipher,
        master_key=master_key,
        key_file=key_file,
        max_upload_bytes=_env_int("MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD),
        session_idle_seconds=_env_int("SESSION_IDLE_SECONDS", 15 * 60),
        lockout_attempts=_env_int("LOCKOUT_ATTEMPTS", 5),
        lockout_minutes=_env_int("LOCKOUT_MINUTES", 30),
        language=_env("LANGUAGE", "zh-hans") or "zh-hans",
        fonds_code=_env("FONDS_CODE", "Z001") or "Z001",
        fonds_name=_env("FONDS_NAME", "示范医院") or "示范医院",
        audit_hash=audit_hash,
        audit_key=audit_key,
        audit_key_file=Path(_env("AUDIT_KEY_FILE") or key_file.parent / "audit-keys.json").expanduser(),
        # A sibling of the data directory by default: a copy or wipe of the data directory leaves it.
        audit_checkpoint_dir=Path(
            _env("AUDIT_CHECKPOINT_DIR") or data_dir.parent / f"{data_dir.name}-audit-checkpoints"
        )
        .expanduser()
        .resolve(),
        archival_code_pattern=_env("ARCHIVAL_CODE_PATTERN", DEFAULT_ARCHIVAL_CODE_PATTERN)
        or DEFAULT_ARCHIVAL_CODE_PATTERN,
        resumable_threshold_bytes=_env_int("RESUMABLE_THRESHOLD_BYTES", 64 * 1024 * 1024),
        staging_grace_seconds=_positive(_env_int("STAGING_GRACE_SECONDS", 3600), "STAGING_GRACE_SECONDS"),
        watch_dir=Path(watch).expanduser().resolve() if (watch := _env("WATCH_DIR")) else None,
        watch_user=_env("WATCH_USER", "") or "",
        sqlite_synchronous=synchronous,
        audit_seal_ms=_positive(_env_int("AUDIT_SEAL_MS", 1000), "AUDIT_SEAL_MS"),
        trusted_proxy=_address("TRUSTED_PROXY"),
        **_email(env),
    )


def _email(env: str) -> dict[str, Any]:
    """Reminders go through Django's mail backend: SMTP when a host is set, else files under
    the data dir (embedded mode, so nothing is lost and an admin can read them)."""
    host = _env("EMAIL_HOST", "") or ""
    backend = (
        "django.core.mail.backends.smtp.EmailBackend" if host else "django.core.mail.backends.filebased.EmailBackend"
    )
    if env == "test":
        backend = "django.core.mail.backends.locmem.EmailBackend"
    return {
        "email_backend": _env("EMAIL_BACKEND", backend) or backend,
        "email_host": host,
        "email_port": _env_int("EMAIL_PORT", 25),
        "email_user": _env("EMAIL_USER", "") or "",
        "email_password": _env("EMAIL_PASSWORD", "") or "",
        "email_tls": _env_bool("EMAIL_TLS", False),
        "email_from": _env("EMAIL_FROM", "medarchive@localhost") or "medarchive@localhost",
    }
