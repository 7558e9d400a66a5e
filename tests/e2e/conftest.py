"""End-to-end fixtures: the real `medarchive` command in a subprocess, on a fresh data directory.

These tests do not use the test database: each gets its own data directory (SQLite) or,
when DATABASE_URL points at PostgreSQL, its own throwaway database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "Correct-Horse-42"


@dataclass
class Cli:
    data_dir: Path
    env: dict[str, str]

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "medarchive", "--data-dir", str(self.data_dir), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"medarchive {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "medarchive", "--data-dir", str(self.data_dir), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )


def _pg_database(url: str) -> Iterator[str]:
    import psycopg

    base, _, _ = url.rpartition("/")
    name = f"medarchive_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_cli(tmp_path: Path) -> Iterator[Callable[[], Cli]]:
    """A factory for an uninitialised archive (own data dir, own database)."""
    cleanups: list[Iterator[str]] = []

    def make() -> Cli:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDARCHIVE_") and k != "DJANGO_SETTINGS_MODULE"}
        env["MEDARCHIVE_ENV"] = "test"
        env["PYTHONWARNINGS"] = "error::DeprecationWarning"
        url = os.environ.get("DATABASE_URL", "")
        if url.startswith("postgres"):
            gen = _pg_database(url)
            env["DATABASE_URL"] = next(gen)
            cleanups.append(gen)
        else:
            env.pop("DATABASE_URL", None)
        return Cli(data_dir=tmp_path / f"data-{len(cleanups)}-{uuid.uuid4().hex[:6]}", env=env)

    yield make
    for gen in cleanups:
        for _ in gen:
            pass


@pytest.fixture
def cli(fresh_cli: Callable[[], Cli]) -> Cli:
    """An initialised archive with departments BGS and NK and a few users."""
    c = fresh_cli()
    c.run("init")
    c.run("department", "add", "BGS", "院办公室")
    c.run("department", "add", "NK", "内科")
    for name, role, dept in (
        ("archivist", "archivist", None),
        ("officer", "officer", "BGS"),
        ("auditor", "auditor", None),
        ("viewer", "viewer", "BGS"),
    ):
        args = ["user", "add", name, "--role", role, "--password-stdin"]
        if dept:
            args += ["--department", dept]
        c.run(*args, input=PASSWORD + "\n")
    return c
