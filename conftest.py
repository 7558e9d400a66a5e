"""Test-session environment: an isolated data directory, set before Django reads its settings."""

import os
import tempfile

_data_dir = tempfile.mkdtemp(prefix="medarchive-test-")
os.environ["MEDARCHIVE_DATA_DIR"] = _data_dir
os.environ["MEDARCHIVE_ENV"] = "test"
os.environ.setdefault("MEDARCHIVE_LANGUAGE", "zh-hans")
os.environ.pop("MEDARCHIVE_MASTER_KEY", None)
os.environ.pop("MEDARCHIVE_STORAGE", None)
# Settings are read once, at Django setup (pytest-django's pytest_configure), after this line.
os.environ["DJANGO_SETTINGS_MODULE"] = "medarchive.settings"


def pytest_configure(config: object) -> None:
    import django

    django.setup()
    _flush_past_the_audit_guards()


def _flush_past_the_audit_guards() -> None:
    """Transactional tests end with a flush (DELETE FROM every table), which the audit guards refuse,
    as they should. Lift them for the flush, as the DBA rebuilding a test database would, then put
    back migration 0005's fresh chain head and the guards, so the next test starts as after `migrate`."""
    from django.db import connection
    from django.test import TransactionTestCase

    from medarchive.security.guards import AUDIT_GUARDS, CHAIN_GUARDS, PENDING_GUARDS

    flush = TransactionTestCase._fixture_teardown
    guards = AUDIT_GUARDS + CHAIN_GUARDS + PENDING_GUARDS

    def _run(statements: list[str]) -> None:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def teardown(self: TransactionTestCase) -> None:
        vendor = connection.vendor
        _run([s for g in guards for s in getattr(g, f"{vendor}_drop")()])
        try:
            flush(self)
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO security_audithead (id, seq, entry_hash, keyed_from) VALUES (1, 0, %s, 1)",
                    ["0" * 64],
                )
        finally:
            _run([s for g in guards for s in getattr(g, f"{vendor}_create")()])

    TransactionTestCase._fixture_teardown = teardown  # type: ignore[method-assign]


def pytest_unconfigure(config: object) -> None:
    import shutil

    shutil.rmtree(_data_dir, ignore_errors=True)
    shutil.rmtree(f"{_data_dir}-audit-checkpoints", ignore_errors=True)
