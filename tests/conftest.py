"""Shared fixtures: an initialised archive, departments, one user per role, a way to make records."""

from __future__ import annotations

import io
import itertools
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PASSWORD = "Correct-Horse-42"
_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_audit_checkpoints() -> Iterator[None]:
    """Each test's database starts from the migrated state, so checkpoints one test wrote
    (outside the database) would name entries the next test never had: remove them."""
    yield
    from django.conf import settings

    shutil.rmtree(settings.CONFIG.audit_checkpoint_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_intents_of_earlier_tests() -> Iterator[None]:
    """A record captured inside a test's transaction leaves its publish intent (the on-commit hook that
    removes it never runs, the test's rollback takes the row): forget those, as `recover()` would once
    this process is gone, so each test sees only what it left itself."""
    yield
    from django.conf import settings

    from medarchive.preservation import intents

    for intent in intents.found(settings.CONFIG.blob_dir / ".staging"):
        intent.done()


@pytest.fixture(autouse=True)
def _configured_language() -> Iterator[None]:
    """Every test starts in the configured language (zh-Hans): a request with an English cookie, or
    a `translation.activate`, must not leave the next test reading English."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def archive(db: Any) -> Any:
    from medarchive.archiving.services import install_defaults
    from medarchive.core.services import add_department, ensure_fonds

    fonds = ensure_fonds()
    install_defaults(fonds)
    add_department("BGS", "院办公室", actor=None)
    add_department("NK", "内科", actor=None)
    return fonds


@pytest.fixture
def users(archive: Any) -> dict[str, Any]:
    from medarchive.security.services import add_user

    spec = {
        "sysadmin": ("sysadmin", None),
        "secadmin": ("secadmin", None),
        "auditor": ("auditor", None),
        "archivist": ("archivist", None),
        "officer": ("officer", "BGS"),
        "officer_nk": ("officer", "NK"),
        "clinician": ("clinician", "NK"),
        "researcher": ("researcher", None),
        "viewer": ("viewer", "BGS"),
    }
    return {
        name: add_user(name, actor=None, role=role, password=PASSWORD, department_code=dept)
        for name, (role, dept) in spec.items()
    }


@pytest.fixture
def make_record(users: dict[str, Any]) -> Callable[..., Any]:
    from medarchive.capture.services import Description, IncomingFile, create_record

    def make(
        *,
        actor: Any = None,
        content: bytes | None = None,
        filename: str = "通知.pdf",
        department: str = "BGS",
        class_code: str = "WS",
        **fields: Any,
    ) -> Any:
        n = next(_counter)
        desc = Description(
            class_code=class_code,
            department_code=department,
            title=fields.pop("title", f"关于第{n}号事项的通知"),
            date=fields.pop("date", "2025-03-01"),
            **fields,
        )
        body = content if content is not None else b"%PDF-1.7\n" + f"record {n} ".encode() * 50
        return create_record(
            desc, [IncomingFile(name=filename, stream=io.BytesIO(body))], actor=actor or users["archivist"]
        )

    return make
