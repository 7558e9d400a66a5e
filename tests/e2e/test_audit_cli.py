"""`medarchive audit` through the real CLI on a fresh data directory (SQLite, or PostgreSQL with
DATABASE_URL): the keyed chain, its checkpoints outside the database, and an attacker with SQL.

The attacker's SQL runs in a separate process through Django's connection, so the same
statements hit SQLite and PostgreSQL; the audit triggers are dropped first, as someone with DDL
rights would.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = pytest.mark.slow

Cli = Any  # the fixture type lives in conftest.py

_DROP_GUARDS = """
from django.db import connection
from medarchive.security.guards import AUDIT_GUARDS, CHAIN_GUARDS
with connection.cursor() as cursor:
    for guard in AUDIT_GUARDS + CHAIN_GUARDS:
        for statement in getattr(guard, connection.vendor + "_drop")():
            cursor.execute(statement)
"""


def _python(cli: Cli, code: str) -> str:
    """Run code with Django set up on the CLI's archive (not through medarchive's services)."""
    env = {**cli.env, "MEDARCHIVE_DATA_DIR": str(cli.data_dir), "DJANGO_SETTINGS_MODULE": "medarchive.settings"}
    script = "import django\ndjango.setup()\n" + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _attack(cli: Cli, *statements: str) -> None:
    lines = "\n".join(f"    cursor.execute({s!r})" for s in statements)
    _python(cli, _DROP_GUARDS + "with connection.cursor() as cursor:\n" + lines + "\n")


def _verify(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli.run("audit", *(args or ("verify",)), "--as", "auditor", "--json", check=False)
    return result.returncode, json.loads(result.stdout)


def _checkpoint_dir(cli: Cli) -> Any:
    return cli.data_dir.parent / f"{cli.data_dir.name}-audit-checkpoints"


def test_a_fresh_archive_has_an_owner_only_audit_key_and_checkpoints_beside_the_data(cli: Cli) -> None:
    key_file = cli.data_dir / "audit-keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    directory = _checkpoint_dir(cli)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "audit-checkpoints.jsonl").stat().st_mode) == 0o600
    first = json.loads((directory / "audit-checkpoints.jsonl").read_text().splitlines()[0])
    assert first["seq"] == 0 and first["keyed_from"] == 1 and first["signer"] == "unsigned"
    code, report = _verify(cli)
    assert code == 0 and report["ok"] is True and report["first_bad_seq"] is None
    assert report["checkpoints_checked"] >= 1 and report["checkpoint"]["written"] is True
    assert report["keyed_from"] == 1 and report["warnings"] == []
    assert set(report) >= {"ok", "checked", "first_bad_seq", "problem", "code", "checkpoints_checked"}
    code, report = _verify(cli, "checkpoint")
    assert code == 0 and report["checkpoint"]["written"] is True  # the verify before added an entry
    human = cli.run("audit", "verify", "--as", "auditor")
    assert "checkpoints checked" in human.stdout and "unsigned" in human.stdout
    rotated = json.loads(cli.run("audit", "rotate-key", "--json").stdout)
    assert rotated["active_key"] in rotated["keys"] and len(rotated["keys"]) == 2
    assert _verify(cli)[1]["ok"] is True
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_truncating_the_tail_and_updating_the_head_fails_verification_at_the_cut(cli: Cli) -> None:
    for code in ("WK", "FK", "EK"):
        cli.run("department", "add", code, f"科室{code}")
    code, report = _verify(cli)  # leaves a checkpoint of the whole trail
    assert code == 0
    last = report["last_seq"]
    cut = last - 2
    _attack(
        cli,
        f"DELETE FROM security_auditentry WHERE seq >= {cut}",
        "UPDATE security_audithead SET seq = (SELECT MAX(seq) FROM security_auditentry), "
        "entry_hash = (SELECT entry_hash FROM security_auditentry "
        "WHERE seq = (SELECT MAX(seq) FROM security_auditentry)) WHERE id = 1",
    )
    code, report = _verify(cli)
    assert code == 1 and report["ok"] is False
    assert report["first_bad_seq"] == cut and report["code"] == "checkpoint_beyond_tail"
    result = cli.run("audit", "checkpoint", "--as", "auditor", check=False)
    assert result.returncode == 1 and "#" in result.stderr


def test_a_full_rechain_without_the_key_fails_at_seq_1(cli: Cli) -> None:
    _python(
        cli,
        _DROP_GUARDS
        + """
from medarchive.security import chain, trailcheck
prev = chain.GENESIS
with connection.cursor() as cursor:
    for entry in list(trailcheck._entries(1, 10**9)):
        forged = chain.ChainEntry(**{**entry.__dict__, "prev_hash": prev, "key_id": "", "actor_name": "mallory"})
        sealed = chain.seal(forged)
        cursor.execute(
            "UPDATE security_auditentry SET actor_name = 'mallory', prev_hash = %s, entry_hash = %s, key_id = ''"
            " WHERE seq = %s",
            [prev, sealed, entry.seq],
        )
        prev = sealed
    cursor.execute("UPDATE security_audithead SET entry_hash = %s WHERE id = 1", [prev])
""",
    )
    code, report = _verify(cli)
    assert code == 1 and report["first_bad_seq"] == 1 and report["code"] == "entry_unkeyed"


def test_deleting_the_head_fails_verification_and_audited_actions_fail_clearly(cli: Cli) -> None:
    _attack(cli, "DELETE FROM security_audithead")
    code, report = _verify(cli)
    assert code == 1 and report["code"] == "head_missing" and report["first_bad_seq"] == report["last_seq"] + 1
    assert "not_recorded" in [w["code"] for w in report["warnings"]]
    result = cli.run("records", "list", "--as", "archivist", check=False)
    assert result.returncode == 1 and "审计" in result.stderr and "Traceback" not in result.stderr


def test_an_archive_with_an_unkeyed_trail_is_upgraded_without_re_sealing_it(fresh_cli: Any) -> None:
    cli = fresh_cli()
    cli.run("init")
    # Back to the schema of the previous version, with a trail as it wrote it (plain SM3 hashes).
    _python(
        cli,
        """
import datetime as dt
from django.core.management import call_command
from django.db import connection
from medarchive.security import chain
call_command("migrate", "security", "0004", verbosity=0)
prev = chain.GENESIS
with connection.cursor() as cursor:
    cursor.execute("DELETE FROM security_audithead")
    cursor.execute("INSERT INTO security_audithead (id, seq, entry_hash) VALUES (1, 0, %s)", [prev])
    for seq in (1, 2, 3):
        entry = chain.ChainEntry(
            seq=seq, at=dt.datetime(2026, 1, seq, tzinfo=dt.UTC), actor_id=None, actor_name="system",
            action="department:manage", object_type="department", object_id=f"D{seq}", result="success",
            source="cli", details={}, algorithm="sm3", prev_hash=prev,
        )
        sealed = chain.seal(entry)
        cursor.execute(
            "INSERT INTO security_auditentry (seq, at, actor_id, actor_name, action, object_type, object_id,"
            " result, source, details, algorithm, prev_hash, entry_hash) VALUES"
            " (%s, %s, NULL, 'system', 'department:manage', 'department', %s, 'success', 'cli', '{}', 'sm3', %s, %s)",
            [seq, entry.at, f"D{seq}", prev, sealed],
        )
        cursor.execute("UPDATE security_audithead SET seq = %s, entry_hash = %s WHERE id = 1", [seq, sealed])
        prev = sealed
""",
    )
    os.remove(cli.data_dir / "audit-keys.json")  # the previous version had neither key nor checkpoints
    for path in _checkpoint_dir(cli).iterdir():
        path.unlink()
    _checkpoint_dir(cli).rmdir()
    summary = json.loads(cli.run("init", "--json").stdout)
    assert summary["audit_checkpoint"] == 3  # the switch-over anchored outside the database at once
    cli.run("department", "add", "BGS", "院办公室")
    cli.run("user", "add", "auditor", "--role", "auditor", "--password-stdin", input="Correct-Horse-42\n")
    code, report = _verify(cli)
    assert code == 0 and report["keyed_from"] == 4 and report["checkpoints_checked"] >= 1
    rows = json.loads(
        _python(
            cli,
            """
import json
from medarchive.security.models import AuditEntry
print(json.dumps(list(AuditEntry.objects.order_by("seq").values_list("seq", "key_id")[:5])))
""",
        )
    )
    assert [bool(key_id) for _seq, key_id in rows] == [False, False, False, True, True]
