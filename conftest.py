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


def pytest_unconfigure(config: object) -> None:
    import shutil

    shutil.rmtree(_data_dir, ignore_errors=True)
    shutil.rmtree(f"{_data_dir}-audit-checkpoints", ignore_errors=True)
