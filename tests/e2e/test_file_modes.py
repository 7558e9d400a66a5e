"""Files only the service can read: owner-only modes on a fresh archive whatever the umask, and
`medarchive init` repairing an archive whose modes were widened."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import PASSWORD

# Everything a running archive creates besides what `init` and `ingest` do: a resumable upload's
# pieces, the DICOM spool, a reminder mail (no SMTP host: written to mail/), SQLite's -wal and -shm.
WORKLOAD = """
import io, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medarchive.settings")
import django
django.setup()
from django.core.mail import send_mail
from medarchive.capture import resumable
from medarchive.capture.dicom.spool import Spool
from medarchive.security.models import User

user = User.objects.get(username="archivist")
upload = resumable.start(actor=user, filename="big.pdf", size=8)
resumable.append(user, upload.pk, offset=0, body=io.BytesIO(b"%PDF-1.7"), length=8)
association = Spool.default().begin({"calling_ae": "PACS"})
association.add([b"DICM" * 64])
association.release()
send_mail("催办", "请归档", "medarchive@localhost", ["wang@example.org"])
from django.db import connection
if connection.vendor == "sqlite":  # while a connection is open, SQLite's sidecars exist
    for suffix in ("-wal", "-shm"):
        mode = os.stat(str(connection.settings_dict["NAME"]) + suffix).st_mode & 0o777
        assert mode == 0o600, f"{suffix} is {mode:o}"
"""


def _modes(root: Path) -> dict[str, str]:
    found = {".": f"{stat.S_IMODE(root.lstat().st_mode):o}"}
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder) / name
            found[str(path.relative_to(root))] = f"{stat.S_IMODE(path.lstat().st_mode):o}"
    return found


def _run(cli: Any, umask: int, *args: str, code: str | None = None, stdin: str | None = None) -> str:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "medarchive", *args]
    env = {**cli.env, "MEDARCHIVE_DATA_DIR": str(cli.data_dir), "MEDARCHIVE_ENV": "embedded"}
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, env=env, umask=umask, timeout=180, check=False
    )
    assert result.returncode == 0, f"{args or 'workload'}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_fresh_archive_is_owner_only_whatever_the_umask(fresh_cli: Any, tmp_path: Path, umask: int) -> None:
    cli = fresh_cli()
    document = tmp_path / "通知.pdf"
    document.write_bytes(b"%PDF-1.7\n" + b"notice " * 500)
    _run(cli, umask, "init")
    _run(cli, umask, "department", "add", "BGS", "院办公室")
    _run(cli, umask, "user", "add", "archivist", "--role", "archivist", "--password-stdin", stdin=PASSWORD + "\n")
    _run(cli, umask, "ingest", str(document), "--class", "WS", "--department", "BGS", "--title", "通知",
         "--date", "2025-03-01", "--as", "archivist")  # fmt: skip
    _run(cli, umask, code=WORKLOAD)

    modes = _modes(cli.data_dir)
    made = set(modes)
    expected = {"blobs", "blobs/.staging", "keys.json", "secret_key", "uploads", "dicom-spool", "mail"}
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        expected |= {"medarchive.sqlite3"}
    assert expected <= made, sorted(made)
    assert any(name.startswith("uploads/") and name.endswith(".part") for name in made), sorted(made)
    assert any(name.startswith("mail/") for name in made), sorted(made)
    assert any(name.count("/") == 2 and name.startswith("blobs/") and len(name) == 6 + 3 + 64 for name in made), sorted(
        made
    )  # a blob, in one level of fan-out (blobs/ab/<address>)
    assert "blobs/LAYOUT" in made
    wider = {name: mode for name, mode in modes.items() if int(mode, 8) & 0o077 or int(mode, 8) not in (0o700, 0o600)}
    assert wider == {}, f"not owner-only under umask {umask:03o}: {wider}"
    for folder, _dirs, files in os.walk(cli.data_dir):
        assert stat.S_IMODE(Path(folder).stat().st_mode) == 0o700, folder
        for name in files:
            assert stat.S_IMODE((Path(folder) / name).stat().st_mode) == 0o600, Path(folder) / name


@pytest.mark.slow
def test_init_repairs_the_modes_of_an_existing_archive_and_says_so(fresh_cli: Any) -> None:
    cli = fresh_cli()
    cli.run("init")
    widened = [cli.data_dir, cli.data_dir / "blobs", cli.data_dir / "keys.json", cli.data_dir / "secret_key"]
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        widened.append(cli.data_dir / "medarchive.sqlite3")
    for path in widened:
        path.chmod(0o755 if path.is_dir() else 0o644)
    summary = json.loads(cli.run("init", "--json").stdout)
    assert {Path(r["path"]) for r in summary["repaired"]} == set(widened)
    assert {r["after"] for r in summary["repaired"]} <= {"0700", "0600"}
    assert all(int(mode, 8) in (0o700, 0o600) for mode in _modes(cli.data_dir).values())
    again = cli.run("init")
    assert "owner only" not in again.stdout  # nothing left to repair
    # Plain output names each repair.
    (cli.data_dir / "keys.json").chmod(0o640)
    told = "".join(cli.run("init").stdout.split())  # the console wraps long paths
    assert "keys.jsonwas0640:now0600" in told
