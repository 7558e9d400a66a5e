"""Django settings, built from `medarchive.config` (the only module that reads the environment)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from medarchive import config as _config
from medarchive.core import private

# Before anything is created (the data directory, the secret key, the database and SQLite's -wal and
# -shm, blobs, mail): every file this process makes is owner-only, whatever umask it was started with.
private.restrict()
CONFIG = _config.load()
BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = list(CONFIG.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "ninja",
    "medarchive.core",
    "medarchive.security",
    "medarchive.archiving",
    "medarchive.preservation",
    "medarchive.capture",
    "medarchive.capture.fhir",
    "medarchive.capture.duties",
    "medarchive.access",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "medarchive.core.gate.BodyGateMiddleware",
    "medarchive.api.ProblemMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "medarchive.core.language.ConfiguredLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "medarchive.security.middleware.IdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "medarchive.web.errors.DomainErrorMiddleware",
]

ROOT_URLCONF = "medarchive.urls"
WSGI_APPLICATION = "medarchive.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "medarchive.web.context.navigation",
            ],
        },
    },
]

# Connections are kept per server thread: connecting costs milliseconds on PostgreSQL, and on SQLite
# ~1 ms of the 4 ms a record read took (opening the file, the PRAGMAs below; measured with py-spy
# under benchmarks/api.py).
_db = dj_database_url.parse(
    CONFIG.database_url, conn_max_age=600 if CONFIG.uses_sqlite else 60, conn_health_checks=True
)
if CONFIG.uses_sqlite:
    # WAL lets readers work while one writer commits; IMMEDIATE takes the write lock at
    # BEGIN so two writers queue on busy_timeout instead of failing with "database is locked".
    # synchronous=FULL syncs the WAL at every commit: what a client was told is stored (201, AA,
    # C-STORE Success) survives a power cut; NORMAL would only sync at checkpoints (ADR 0015).
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": (
            f"PRAGMA journal_mode=WAL; PRAGMA synchronous={CONFIG.sqlite_synchronous}; PRAGMA foreign_keys=ON;"
        ),
    }
    _db["TEST"] = {"NAME": str(CONFIG.data_dir / "test.sqlite3")}
else:
    # A session may not lower durability below what the server promises: commits wait for the WAL
    # flush whatever the server's default (`fsync=off` cannot be fixed here; `medarchive init` and
    # the health check refuse it, see core/durability.py).
    _db["OPTIONS"] = {**_db.get("OPTIONS", {}), "options": "-c synchronous_commit=on"}
DATABASES = {"default": _db}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "security.User"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if CONFIG.env == "test":
    PASSWORD_HASHERS = ["medarchive.security.passwords.TestArgon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "medarchive.security.passwords.CharacterClassValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# SEC-01: lock the account (not the address: hospital NAT puts many users behind one IP)
# after N failures; the (N+1)th attempt is refused even with the right password.
AXES_FAILURE_LIMIT = CONFIG.lockout_attempts
AXES_COOLOFF_TIME = CONFIG.lockout_minutes / 60
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "medarchive.security.views.locked_out"
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

SESSION_COOKIE_AGE = 8 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CONFIG.production
CSRF_COOKIE_SECURE = CONFIG.production
# HSTS on answers over HTTPS (directly, or through the trusted proxy's X-Forwarded-Proto) in production.
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if CONFIG.production else 0
MEDARCHIVE_SESSION_IDLE_SECONDS = CONFIG.session_idle_seconds
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

CSRF_FAILURE_VIEW = "medarchive.web.errors.csrf_failure"

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = CONFIG.language
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# WhiteNoise serves straight from the packages' static folders: no collectstatic step to forget.
STATIC_ROOT = None
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Uploads are encrypted and hashed chunk by chunk as they arrive: no plaintext temp file.
FILE_UPLOAD_HANDLERS = ["medarchive.capture.uploads.EncryptingUploadHandler"]
# Limits on what Django holds in memory (file parts are streamed, not counted): form fields and JSON
# bodies up to 10 MiB (a 1000-record manifest fits), 1000 fields, 1000 files (a submission of the most
# records with one file each). The body gate (core/gate.py) and waitress derive their limits from these.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 1000
FILE_UPLOAD_PERMISSIONS = 0o600

EMAIL_BACKEND = CONFIG.email_backend
EMAIL_FILE_PATH = str(CONFIG.data_dir / "mail")
EMAIL_HOST = CONFIG.email_host
EMAIL_PORT = CONFIG.email_port
EMAIL_HOST_USER = CONFIG.email_user
EMAIL_HOST_PASSWORD = CONFIG.email_password
EMAIL_USE_TLS = CONFIG.email_tls
DEFAULT_FROM_EMAIL = CONFIG.email_from

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"axes": {"level": "ERROR"}},
}
