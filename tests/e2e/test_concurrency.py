"""Crash safety and concurrent archiving, with real processes (SQLite or PostgreSQL per DATABASE_URL)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

DJANGO_PRELUDE = textwrap.dedent("""
    import os, sys, django
    os.environ["DJANGO_SETTINGS_MODULE"] = "medarchive.settings"
    django.setup()
    from medarchive.security.models import User
    archivist = User.objects.get(username="archivist")
""")


def _python(cli: Any, code: str, *args: str) -> subprocess.Popen[str]:
    env = {**cli.env, "MEDARCHIVE_DATA_DIR": str(cli.data_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", DJANGO_PRELUDE + textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _query(cli: Any, sql: str) -> list[tuple[Any, ...]]:
    if "DATABASE_URL" in cli.env:
        import psycopg

        with psycopg.connect(cli.env["DATABASE_URL"]) as conn:
            return list(conn.execute(sql).fetchall())
    with sqlite3.connect(cli.data_dir / "medarchive.sqlite3") as conn:
        return list(conn.execute(sql).fetchall())


def _blob_files(cli: Any) -> set[str]:
    root = cli.data_dir / "blobs"
    return {p.name for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts and len(p.name) == 64}


def test_kill_9_mid_batch_leaves_nothing_half_written_and_the_batch_reruns(cli: Any, tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    count = 30
    for i in range(count):
        (batch / f"扫描件{i:02d}.pdf").write_bytes(b"%PDF-1.7 " + os.urandom(3 * 1024 * 1024))
    args = [
        "ingest",
        str(batch),
        "--class",
        "WS",
        "--department",
        "BGS",
        "--title",
        "批量扫描",
        "--date",
        "2025-05-05",
        "--as",
        "archivist",
        "--json",
    ]
    proc = cli.popen(*args)
    deadline = time.monotonic() + 120
    while len(_blob_files(cli)) < 6 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        proc.communicate()
        pytest.fail("the batch finished before it could be interrupted; make it bigger")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()  # reap it and close its pipes

    # Nothing half-written: every record has its file, stored and present.
    records = _query(cli, "SELECT id FROM archiving_record")
    assert 0 < len(records) < count
    rows = _query(
        cli,
        "SELECT c.record_id, b.address, b.state FROM archiving_component c "
        "JOIN preservation_blob b ON b.address = c.blob_id",
    )
    assert {r[0] for r in rows} == {r[0] for r in records}
    files = _blob_files(cli)
    assert all(state == "stored" and address in files for _, address, state in rows)
    # An object without a record can only be the one the dead writer published for its uncommitted
    # transaction (its intent names it) or a pending claim it was withdrawing; recovery removes both.
    linked = {address for _, address, _ in rows}
    pending = {a for (a,) in _query(cli, "SELECT address FROM preservation_blob WHERE state = 'pending'")}
    intended = {p.name.split("~")[0] for p in (cli.data_dir / "blobs" / ".staging").iterdir() if "~" in p.name}
    assert files - linked <= pending | intended

    report = json.loads(cli.run("storage", "recover", "--json").stdout)
    assert set(report["pending_reclaimed"]) == pending
    assert set(report["intents_withdrawn"]) == (files - linked) - pending
    assert _blob_files(cli) == linked
    assert _query(cli, "SELECT COUNT(*) FROM preservation_blob WHERE state = 'pending'") == [(0,)]

    rerun = json.loads(cli.run(*args).stdout)
    assert rerun["skipped"] == len(records) and rerun["ingested"] == count - len(records)
    assert _query(cli, "SELECT COUNT(*) FROM archiving_record") == [(count,)]
    assert json.loads(cli.run("fixity", "verify", "--json").stdout) == {"ok": True, "checked": count, "failed": []}


def test_a_writer_killed_between_publishing_and_committing_leaves_nothing_after_recovery(cli: Any) -> None:
    """The one crash window of the one-transaction write: the object is in place, the row not committed."""
    proc = _python(
        cli,
        """
        import io, signal
        from medarchive.capture.services import Description, IncomingFile, create_record
        from medarchive.preservation import services as preservation

        published = preservation.publish

        def publish_then_die(staged):
            rows = published(staged)
            print(rows[0].address, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # inside the record's transaction, before its commit

        preservation.publish = publish_then_die
        desc = Description(class_code="WS", department_code="BGS", title="将被中断", date="2025-05-05")
        body = io.BytesIO(b"%PDF-1.7 " + os.urandom(4096))
        create_record(desc, [IncomingFile(name="中断.pdf", stream=body)], actor=archivist)
        """,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    address = out.split()[-1]
    assert address in _blob_files(cli)  # the object was durable in its place ...
    assert _query(cli, "SELECT COUNT(*) FROM archiving_record") == [(0,)]  # ... and nothing else committed
    assert _query(cli, "SELECT COUNT(*) FROM preservation_blob") == [(0,)]
    staging = cli.data_dir / "blobs" / ".staging"
    assert [p.name.split("~")[0] for p in staging.iterdir()] == [address]  # its intent says so

    report = json.loads(cli.run("storage", "recover", "--json").stdout)
    assert report["intents_withdrawn"] == [address]
    assert _blob_files(cli) == set() and list(staging.iterdir()) == []
    assert json.loads(cli.run("storage", "recover", "--json").stdout)["intents_withdrawn"] == []


def test_parallel_archiving_gives_gap_free_unique_item_numbers(cli: Any) -> None:
    workers, per_worker = 4, 12
    make = _python(
        cli,
        """
        import io
        from medarchive.archiving import services as archiving
        from medarchive.capture.services import Description, IncomingFile, create_record
        ids = []
        for i in range(int(sys.argv[1])):
            desc = Description(class_code="WS", department_code="BGS", title=f"并发归档{i}", date="2024-09-09",
                               retention="D30")
            body = f"%PDF-1.7 record {i}".encode()
            r = create_record(desc, [IncomingFile(name=f"{i}.pdf", stream=io.BytesIO(body))], actor=archivist)
            archiving.submit_record(r.pk, actor=archivist)
            archiving.accept_record(r.pk, actor=archivist)
            ids.append(str(r.pk))
        print(" ".join(ids))
    """,
        str(workers * per_worker),
    )
    out, err = make.communicate(timeout=300)
    assert make.returncode == 0, err
    ids = out.split()
    archivers = [
        _python(
            cli,
            """
        from medarchive.archiving import services as archiving
        for record_id in sys.argv[1:]:
            archiving.archive_record(record_id, actor=archivist)
    """,
            *ids[w::workers],
        )
        for w in range(workers)
    ]
    for proc in archivers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    numbers = sorted(n for (n,) in _query(cli, "SELECT item_number FROM archiving_record"))
    assert numbers == list(range(1, workers * per_worker + 1))
    codes = [c for (c,) in _query(cli, "SELECT archival_code FROM archiving_record")]
    assert len(set(codes)) == len(codes) and all(c.startswith("Z001-WS·2024·D30·BGS-") for c in codes)
