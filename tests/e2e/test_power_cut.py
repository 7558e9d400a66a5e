"""A power cut after the listener answered AA: are the acknowledged records still there?

The HL7 listener runs with `powercut/synced_copy.c` preloaded: at every fsync of the database or
its WAL a copy of the file as synced is kept beside it. After AA for each message the listener is
killed (-9) and each file is replaced by its last synced copy, which is what the disk holds after
the power went (the page cache is gone). A second process holds the database open meanwhile, as
the web server does next to a listener, so that no connection's close checkpoints the WAL.

With `synchronous=NORMAL` acknowledged records vanish (the WAL is synced only at checkpoints);
with `FULL`, the default, every one of them survives.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_hl7_listener import Listener, msa

from medarchive.capture.hl7 import samples

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="SQLite's files"),
    pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("gcc") is None, reason="needs gcc, Linux"),
]

PASSWORD = "Correct-Horse-42"
MESSAGES = 8
SHIM = Path(__file__).parent / "powercut" / "synced_copy.c"
DATABASE = "medarchive.sqlite3"


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("shim") / "synced_copy.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(built), str(SHIM), "-ldl"], check=True)
    return built


def _archive(fresh_cli: Any, synchronous: str | None) -> Any:
    cli = fresh_cli()
    if synchronous is not None:
        cli.env["MEDARCHIVE_SQLITE_SYNCHRONOUS"] = synchronous
    cli.run("init")
    cli.run("department", "add", "NK", "内科")
    cli.run("user", "add", "his", "--role", "interface", "--password-stdin", input=PASSWORD + "\n")
    cli.run("user", "add", "archivist", "--role", "archivist", "--password-stdin", input=PASSWORD + "\n")
    return cli


def _acknowledged(cli: Any, shim: Path) -> list[str]:
    """Send MESSAGES documents through a listener that keeps synced copies; kill it after the last AA."""
    database = cli.data_dir / DATABASE
    assert not (cli.data_dir / f"{DATABASE}-wal").exists()  # every command closed its database: all on disk
    shutil.copyfile(database, f"{database}.synced")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1])\n"
            "db.execute('SELECT count(*) FROM sqlite_master').fetchall()\n"
            "print('open', flush=True)\n"
            "time.sleep(600)\n",
            str(database),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
    env = {
        **cli.env,
        "LD_PRELOAD": str(shim),
        "POWERCUT_DIR": str(cli.data_dir),
        "POWERCUT_SUFFIXES": f"{DATABASE},{DATABASE}-wal",
    }
    command = ["listen", "hl7", "--as", "his", "--port", "0", "--workers", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "medarchive", "--data-dir", str(cli.data_dir), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    listener = Listener(process)
    numbers = []
    try:
        with listener.client() as client:
            for n in range(MESSAGES):
                document = samples.pdf(8 * 1024, seed=f"power-cut-{n}")
                code, _, text = msa(client.send_message(samples.mdm(document, control_id=f"PC{n:04d}")))
                assert code == "AA", text
                numbers.append(text.split()[2])
    finally:
        process.send_signal(signal.SIGKILL)  # the power goes: no close, no checkpoint
        process.wait(30)
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        listener.join()
        for pipe in (process.stdout, process.stderr, holder.stdout):
            if pipe is not None:
                pipe.close()
    return numbers


def _power_cut(data_dir: Path) -> None:
    """What the disk holds: each database file as it was last synced (never synced: not there)."""
    for name in (DATABASE, f"{DATABASE}-wal"):
        path, synced = data_dir / name, data_dir / f"{name}.synced"
        if synced.exists():
            os.replace(synced, path)
        else:
            path.unlink(missing_ok=True)
    (data_dir / f"{DATABASE}-shm").unlink(missing_ok=True)  # derived from the WAL, rebuilt on open


def _stored(cli: Any) -> set[str]:
    out = cli.run("records", "list", "--as", "archivist", "--json", "--page-size", "100").stdout
    return {str(item["electronic_no"]) for item in json.loads(out)["items"]}


def test_acknowledged_records_survive_a_power_cut_as_configured_by_default(fresh_cli: Any, shim: Path) -> None:
    cli = _archive(fresh_cli, None)  # the default: synchronous=FULL
    acknowledged = _acknowledged(cli, shim)
    _power_cut(cli.data_dir)
    assert len(acknowledged) == MESSAGES
    assert set(acknowledged) <= _stored(cli)


def test_the_harness_loses_acknowledged_records_with_synchronous_normal(fresh_cli: Any, shim: Path) -> None:
    # The same run with the old setting: proof that the harness sees what a power cut takes.
    cli = _archive(fresh_cli, "NORMAL")
    acknowledged = _acknowledged(cli, shim)
    _power_cut(cli.data_dir)
    lost = set(acknowledged) - _stored(cli)
    assert lost, "with synchronous=NORMAL the last acknowledged commits should have been lost"
