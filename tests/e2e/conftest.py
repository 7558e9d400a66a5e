"""End-to-end fixtures: the real `medarchive` command in a subprocess, on a fresh data directory.

These tests do not use the test database: each gets its own data directory (SQLite) or,
when DATABASE_URL points at PostgreSQL, its own throwaway database.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --- the browser and the server for web tests (Debian's Chromium, never `playwright install`) -------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# --- the browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(
                f"{CHROMIUM} is missing under CI: the browser tests must run there "
                "(install Debian's `chromium` package in the CI setup)"
            )
        pytest.skip(f"{CHROMIUM} is not installed (Debian package `chromium`); under CI=true this fails instead")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# --- the server -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _drain(stream: Any, sink: list[str]) -> None:
    """Read a pipe to its end so a chatty server never blocks on a full pipe buffer."""
    for line in stream:
        sink.append(line)


@contextlib.contextmanager
def _serving(cli: Any) -> Iterator[str]:
    """The real `medarchive serve` on a free loopback port; yields its base URL."""
    port = _free_port()
    proc = cli.popen("serve", "--port", str(port))
    output: list[str] = []
    readers = [threading.Thread(target=_drain, args=(s, output), daemon=True) for s in (proc.stdout, proc.stderr)]
    for reader in readers:
        reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                time.sleep(0.2)
                pytest.fail(f"the server exited with {proc.returncode} before answering:\n{''.join(output)}")
            try:
                with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as response:
                    if json.load(response).get("status") == "ok":
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /api/v1/health within 60 s:\n{''.join(output)}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        for reader in readers:
            reader.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def serving() -> Callable[[Any], Any]:
    return _serving


def _log_in(page: Any, password: str, username: str = "officer") -> None:
    """Fill the login form and wait for the next page."""
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("form[action='/login/'] button[type=submit]")


@pytest.fixture
def log_in() -> Callable[..., None]:
    return _log_in
