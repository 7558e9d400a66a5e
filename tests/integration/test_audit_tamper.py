"""The audit trail against a database attacker (ADR 0013), on the real database (SQLite or PostgreSQL).

The attacker writes raw SQL. Where the triggers stop them, the test shows it; where an attacker
with DDL rights would drop the triggers, the test drops them, tampers, and puts them back, so
nothing that verify looks at gives it away except the chain, the head and the checkpoints.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import translation

from medarchive.access.services import read_content
from medarchive.core.errors import ConfigurationError, IntegrityFailure
from medarchive.security import audit, chain, tasks, trailcheck
from medarchive.security.checkpoints import CheckpointFile
from medarchive.security.guards import AUDIT_GUARDS, CHAIN_GUARDS
from medarchive.security.models import AuditEntry, AuditHead
from medarchive.security.roles import Action
from medarchive.security.services import checkpoint_audit, create_token, rotate_audit_key, verify_audit

HEAD = "security_audithead"
ENTRIES = "security_auditentry"

# --- the attacker ---------------------------------------------------------------------------------


def _sql(statement: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


@contextlib.contextmanager
def _without_guards() -> Iterator[None]:
    """An attacker with DDL rights: drop every audit trigger, tamper, re-create them as they were."""
    vendor = connection.vendor
    guards = AUDIT_GUARDS + CHAIN_GUARDS
    for guard in guards:
        for statement in getattr(guard, f"{vendor}_drop")():
            _sql(statement)
    yield
    for guard in guards:
        for statement in getattr(guard, f"{vendor}_create")():
            _sql(statement)


def _refused(statement: str, params: list[Any] | None = None) -> str:
    with pytest.raises(DatabaseError) as info, transaction.atomic():
        _sql(statement, params)
    return str(info.value)


def _entries() -> list[chain.ChainEntry]:
    head = audit.read_head()
    assert head is not None
    return list(trailcheck._entries(1, head.seq))


def _rechain(seal: Any, *, key_id: str) -> None:
    """Rewrite every entry (a different actor on each) and re-seal the chain with `seal`."""
    prev = chain.GENESIS
    for entry in _entries():
        forged = dataclasses.replace(entry, actor_name="mallory", prev_hash=prev, key_id=key_id)
        sealed = seal(forged)
        _sql(
            f"UPDATE {ENTRIES} SET actor_name = %s, prev_hash = %s, entry_hash = %s, key_id = %s WHERE seq = %s",
            ["mallory", prev, sealed, key_id, entry.seq],
        )
        prev = sealed
    _sql(f"UPDATE {HEAD} SET entry_hash = %s WHERE id = 1", [prev])


def _some_entries(make_record: Any, users: dict[str, Any], n: int = 3) -> int:
    for _ in range(n):
        record = make_record()
        b"".join(read_content(users["archivist"], record.pk).chunks)
    head = audit.read_head()
    assert head is not None
    return head.seq


# --- the keyed chain ------------------------------------------------------------------------------


def test_entries_are_sealed_with_the_audit_key_held_outside_the_database(
    users: dict[str, Any], make_record: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _some_entries(make_record, users, 1)
    ring = audit.ensure_ring()
    key_file = settings.CONFIG.audit_key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    rows = list(AuditEntry.objects.order_by("seq"))
    assert rows and {row.key_id for row in rows} == {ring.active_key_id}
    head = AuditHead.objects.get()
    assert head.keyed_from == 1 and head.seq == rows[-1].seq and head.entry_hash == rows[-1].entry_hash
    assert verify_audit(actor=users["auditor"]).ok
    secret = ring.active_key
    assert base64.b64encode(secret).decode() not in caplog.text and secret.hex() not in caplog.text
    with connection.cursor() as cursor:  # the key is nowhere in the database
        cursor.execute(f"SELECT * FROM {ENTRIES}")
        assert secret.hex() not in repr(cursor.fetchall())


def test_full_rechain_with_the_public_code_and_no_key_fails_at_seq_1(users: dict[str, Any], make_record: Any) -> None:
    _some_entries(make_record, users)
    with _without_guards():
        _rechain(chain.seal, key_id="")
    shutil.rmtree(settings.CONFIG.audit_checkpoint_dir, ignore_errors=True)  # the checkpoints do not matter here
    report = trailcheck.verify_chain()
    assert not report.ok and report.first_bad_seq == 1 and report.code == "entry_unkeyed"


def test_rechain_with_a_guessed_key_fails_at_seq_1(users: dict[str, Any], make_record: Any) -> None:
    _some_entries(make_record, users)
    guess = os.urandom(32)
    real_id = audit.ensure_ring().active_key_id
    with _without_guards():
        _rechain(lambda e: chain.seal(e, guess, keyed_from=1), key_id=real_id)
    report = trailcheck.verify_chain()
    assert not report.ok and report.first_bad_seq == 1 and report.code == "entry_altered"


def test_an_edited_entry_is_found_even_when_the_triggers_are_put_back(users: dict[str, Any], make_record: Any) -> None:
    _some_entries(make_record, users)
    with _without_guards():
        _sql(f"UPDATE {ENTRIES} SET object_id = %s WHERE seq = 3", ["elsewhere"])
    report = verify_audit(actor=users["auditor"])
    assert not report.ok and report.first_bad_seq == 3 and report.code == "entry_altered"
    assert report.checkpoint is None or not report.checkpoint_written  # no checkpoint of a broken chain


# --- the head -------------------------------------------------------------------------------------


def test_the_head_cannot_be_deleted_moved_back_or_moved_sideways(users: dict[str, Any], make_record: Any) -> None:
    last = _some_entries(make_record, users)
    earlier = AuditEntry.objects.get(seq=last - 2)
    assert "cannot be deleted" in _refused(f"DELETE FROM {HEAD}")
    assert "only advances" in _refused(
        f"UPDATE {HEAD} SET seq = %s, entry_hash = %s WHERE id = 1",
        [earlier.seq, earlier.entry_hash],
    )
    assert "only advances" in _refused(f"UPDATE {HEAD} SET entry_hash = %s WHERE id = 1", ["f" * 64])
    assert "only advances" in _refused(f"UPDATE {HEAD} SET seq = seq + 1 WHERE id = 1")
    assert "only advances" in _refused(f"UPDATE {HEAD} SET keyed_from = 99 WHERE id = 1")
    assert "cannot be re-created" in _refused(
        f"INSERT INTO {HEAD} (id, seq, entry_hash, keyed_from) VALUES (2, 0, %s, 1)",
        [chain.GENESIS],
    )
    entry = AuditEntry.objects.get(seq=last)
    columns = (
        "seq, at, actor_name, action, object_type, object_id, result, source, details, algorithm, prev_hash, "
        "entry_hash, key_id"
    )
    values = [last + 2, entry.at, "x", "x", "", "", "success", "", "{}", "sm3", "0" * 64, "0" * 64, ""]
    assert "must follow the chain head" in _refused(
        f"INSERT INTO {ENTRIES} ({columns}) VALUES ({', '.join(['%s'] * len(values))})",
        values,
    )
    assert "append-only" in _refused(f"DELETE FROM {ENTRIES} WHERE seq = %s", [last])
    assert trailcheck.verify_chain().ok


def test_truncate_the_tail_and_update_the_head_is_found_at_the_cut(
    users: dict[str, Any], make_record: Any, client: Client
) -> None:
    _, raw = create_token(users["auditor"], actor=None, name="audit")
    _some_entries(make_record, users)
    assert verify_audit(actor=users["auditor"]).checkpoint_written  # the auditor's check leaves a checkpoint
    last = _some_entries(make_record, users, 1)
    cut = last - 4
    kept = AuditEntry.objects.get(seq=cut - 1)
    with _without_guards():
        _sql(f"DELETE FROM {ENTRIES} WHERE seq >= %s", [cut])
        _sql(f"UPDATE {HEAD} SET seq = %s, entry_hash = %s WHERE id = 1", [kept.seq, kept.entry_hash])
    # Rows and head agree with each other now; the checkpoint outside the database does not.
    report = trailcheck.verify_chain()
    assert not report.ok and report.code == "checkpoint_beyond_tail" and report.first_bad_seq == cut
    assert f"#{cut - 1}" in (report.problem or "")
    body = client.post("/api/v1/audit/verify", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert body["ok"] is False and body["first_bad_seq"] == cut and body["code"] == "checkpoint_beyond_tail"
    assert body == report.as_dict()
    # The failed check is itself recorded, as entry #cut: the trail goes on, the checkpoint still disagrees.
    again = verify_audit(actor=users["auditor"])
    assert not again.ok and again.first_bad_seq == cut + 1 and not again.checkpoint_written


def test_a_head_moved_back_over_existing_entries_is_found(users: dict[str, Any], make_record: Any) -> None:
    last = _some_entries(make_record, users)
    back = AuditEntry.objects.get(seq=last - 3)
    with _without_guards():
        _sql(f"UPDATE {HEAD} SET seq = %s, entry_hash = %s WHERE id = 1", [back.seq, back.entry_hash])
    shutil.rmtree(settings.CONFIG.audit_checkpoint_dir, ignore_errors=True)
    report = trailcheck.verify_chain()
    assert not report.ok and report.code == "entries_beyond_head" and report.first_bad_seq == back.seq + 1


def test_deleting_the_head_is_tampering_and_audited_actions_then_fail_clearly(
    users: dict[str, Any], make_record: Any
) -> None:
    record = make_record()
    last = _some_entries(make_record, users)
    with _without_guards():
        _sql(f"DELETE FROM {HEAD}")
    report = verify_audit(actor=users["auditor"])
    assert not report.ok and report.code == "head_missing" and report.first_bad_seq == last + 1
    assert [w.code for w in report.warnings][-1] == "not_recorded"  # the report still reaches the auditor
    with pytest.raises(IntegrityFailure) as info:
        b"".join(read_content(users["archivist"], record.pk).chunks)
    assert info.value.code == "audit_head_missing" and "审计链头已丢失" in info.value.message
    with translation.override("en"):
        assert "head is missing" in info.value.message
    with pytest.raises(IntegrityFailure), transaction.atomic():
        audit.record_event(Action.AUDIT_READ, actor=users["auditor"])
    assert AuditEntry.objects.filter(seq__gt=last).count() == 0  # nothing written, no new chain started
    assert not AuditHead.objects.exists()
    # Putting a head back by hand is refused while entries exist.
    assert "cannot be re-created" in _refused(
        f"INSERT INTO {HEAD} (id, seq, entry_hash, keyed_from) VALUES (1, %s, %s, 1)",
        [last, AuditEntry.objects.get(seq=last).entry_hash],
    )


# --- checkpoints ----------------------------------------------------------------------------------


def test_without_checkpoints_verify_warns_instead_of_saying_ok(users: dict[str, Any], make_record: Any) -> None:
    _some_entries(make_record, users, 1)
    report = trailcheck.verify_chain()
    assert report.ok and [w.code for w in report.warnings] == ["no_checkpoints"]
    assert str(settings.CONFIG.audit_checkpoint_dir) in report.warnings[0].message
    assert report.as_dict()["warnings"][0]["code"] == "no_checkpoints"


def test_verify_writes_a_checkpoint_outside_the_database_and_checks_it_next_time(
    users: dict[str, Any], make_record: Any
) -> None:
    _some_entries(make_record, users, 1)
    first = verify_audit(actor=users["auditor"])
    assert first.ok and first.checkpoint_written and first.checkpoint is not None
    directory = settings.CONFIG.audit_checkpoint_dir
    assert directory.parent == settings.CONFIG.data_dir.parent and directory.name.endswith("-audit-checkpoints")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(CheckpointFile(directory).path.stat().st_mode) == 0o600
    second = verify_audit(actor=users["auditor"])
    assert second.ok and second.checkpoints_checked == 1 and not second.warnings
    assert second.as_dict()["checkpoint"]["signer"] == "unsigned"


def test_a_rewritten_checkpoint_file_is_found(users: dict[str, Any], make_record: Any) -> None:
    _some_entries(make_record, users)
    verify_audit(actor=users["auditor"])
    _some_entries(make_record, users, 1)
    verify_audit(actor=users["auditor"])
    path = CheckpointFile(settings.CONFIG.audit_checkpoint_dir).path
    lines = path.read_text().splitlines(keepends=True)
    doc = json.loads(lines[-1])
    doc["seq"] -= 3  # pretend the last checkpoint was earlier, to cover a tail cut
    path.write_text("".join(lines[:-1]) + json.dumps(doc) + "\n")
    report = trailcheck.verify_chain()
    assert not report.ok and report.code == "checkpoint_altered" and report.first_bad_seq is None
    path.write_text(lines[-1])  # drop the first line: the remaining one no longer links
    report = trailcheck.verify_chain()
    assert not report.ok and report.code == "checkpoint_link"


def test_the_worker_checks_increments_and_refuses_to_checkpoint_a_tampered_trail(
    users: dict[str, Any], make_record: Any
) -> None:
    _some_entries(make_record, users, 1)
    assert tasks.audit_checkpoint().startswith("checkpoint #")
    assert "unchanged" in tasks.audit_checkpoint()
    last = _some_entries(make_record, users, 1)
    assert tasks.audit_checkpoint() == f"checkpoint #{last} written"
    later = _some_entries(make_record, users, 1)
    with _without_guards():
        _sql(f"UPDATE {ENTRIES} SET result = 'denied' WHERE seq = %s", [later])
    with pytest.raises(IntegrityFailure) as info:
        tasks.audit_checkpoint()
    assert info.value.details["first_bad_seq"] == later
    lines = CheckpointFile(settings.CONFIG.audit_checkpoint_dir).path.read_text().splitlines()
    assert json.loads(lines[-1])["seq"] == last  # nothing written for the tampered state
    assert "security.audit_checkpoint" in {job.name for job in tasks.JOBS}


def test_the_checkpoint_command_is_incremental_and_audited(users: dict[str, Any], make_record: Any) -> None:
    _some_entries(make_record, users, 1)
    report = checkpoint_audit(actor=users["auditor"])
    assert report.ok and report.checkpoint_written
    entry = AuditEntry.objects.filter(action="audit:verify").latest("seq")
    assert entry.details["checkpoint"] == report.checkpoint.seq and entry.actor_name == "auditor"


# --- keys -----------------------------------------------------------------------------------------


def test_a_rotated_audit_key_seals_new_entries_and_old_ones_still_verify(
    users: dict[str, Any], make_record: Any, settings: Any, tmp_path: Path
) -> None:
    shutil.copy2(settings.CONFIG.audit_key_file, tmp_path / "audit-keys.json")
    settings.CONFIG = dataclasses.replace(settings.CONFIG, audit_key_file=tmp_path / "audit-keys.json")
    audit.forget_ring()
    old = audit.signing_ring().active_key_id
    _some_entries(make_record, users, 1)
    new, ids = rotate_audit_key(actor=users["sysadmin"])
    _some_entries(make_record, users, 1)
    assert new != old and set(ids) == {old, new}
    assert {old, new} <= set(AuditEntry.objects.values_list("key_id", flat=True))
    assert AuditEntry.objects.get(action="keys:rotate", object_id=new).key_id == new
    assert verify_audit(actor=users["auditor"]).ok
    audit.forget_ring()


def test_a_lost_audit_key_is_not_silently_replaced(
    users: dict[str, Any], make_record: Any, settings: Any, tmp_path: Path
) -> None:
    _some_entries(make_record, users, 1)
    settings.CONFIG = dataclasses.replace(settings.CONFIG, audit_key_file=tmp_path / "lost.json")
    audit.forget_ring()
    try:
        with pytest.raises(ConfigurationError) as info, transaction.atomic():
            audit.record_event(Action.AUDIT_READ, actor=users["auditor"])
        assert info.value.code == "audit_key_missing" and not (tmp_path / "lost.json").exists()
        report = trailcheck.verify_chain()
        assert not report.ok and report.code == "unknown_key" and report.first_bad_seq == 1
        assert "no_audit_key" in [w.code for w in report.warnings]
    finally:
        audit.forget_ring()


def test_an_audit_key_from_the_environment_is_used_and_cannot_be_rotated_here(
    users: dict[str, Any], settings: Any
) -> None:
    key = os.urandom(32)
    settings.CONFIG = dataclasses.replace(settings.CONFIG, audit_key=base64.b64encode(key).decode())
    audit.forget_ring()
    try:
        assert audit.signing_ring().active_key == key
        with pytest.raises(Exception, match="MEDARCHIVE_AUDIT_KEY"):
            rotate_audit_key(actor=users["sysadmin"])
    finally:
        audit.forget_ring()


def test_production_refuses_to_start_without_an_audit_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from medarchive import config

    monkeypatch.setenv("MEDARCHIVE_ENV", "production")
    monkeypatch.setenv("MEDARCHIVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MEDARCHIVE_SECRET_KEY", "s" * 50)
    monkeypatch.setenv("MEDARCHIVE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(ConfigurationError, match="MEDARCHIVE_AUDIT_KEY"):
        config.load()
    monkeypatch.setenv("MEDARCHIVE_AUDIT_KEY_FILE", str(tmp_path / "audit-keys.json"))
    loaded = config.load()
    assert loaded.audit_key_file == tmp_path / "audit-keys.json"
    monkeypatch.setenv("MEDARCHIVE_AUDIT_CHECKPOINT_DIR", str(tmp_path / "cp"))
    assert config.load().audit_checkpoint_dir == (tmp_path / "cp").resolve()
    assert "audit_key=" not in repr(config.load())


# --- an archive that had an unkeyed trail ---------------------------------------------------------


def _as_upgraded(n: int) -> list[chain.ChainEntry]:
    """Replace the trail by n unkeyed entries, as an older version wrote them, and a head that
    switches to the keyed chain after them (what migration 0005 does)."""
    template = AuditEntry.objects.order_by("seq").first()
    assert template is not None
    entries, prev = [], chain.GENESIS
    for seq in range(1, n + 1):
        entry = chain.ChainEntry(
            seq=seq,
            at=template.at,
            actor_id=None,
            actor_name="system",
            action="department:manage",
            object_type="department",
            object_id=str(seq),
            result="success",
            source="cli",
            details={},
            algorithm="sm3",
            prev_hash=prev,
        )
        entry = dataclasses.replace(entry, entry_hash=chain.seal(entry))
        entries.append(entry)
        prev = entry.entry_hash
    with _without_guards():
        _sql(f"DELETE FROM {ENTRIES}")
        for e in entries:
            AuditEntry.objects.create(**{**dataclasses.asdict(e)})
        _sql(f"UPDATE {HEAD} SET seq = %s, entry_hash = %s, keyed_from = %s WHERE id = 1", [n, prev, n + 1])
    return entries


def test_an_upgraded_trail_verifies_old_entries_by_the_old_rule_and_new_ones_keyed(
    users: dict[str, Any], make_record: Any
) -> None:
    _as_upgraded(4)
    assert trailcheck.write_checkpoint().checkpoint_written  # what `medarchive init` does after migrating
    _some_entries(make_record, users, 1)
    rows = list(AuditEntry.objects.order_by("seq"))
    assert [r.key_id == "" for r in rows[:5]] == [True, True, True, True, False]
    report = verify_audit(actor=users["auditor"])
    assert report.ok and report.chain.keyed_from == 5 and report.checkpoints_checked == 1


def test_passing_keyed_entries_off_as_old_unkeyed_ones_is_found(users: dict[str, Any], make_record: Any) -> None:
    _as_upgraded(2)
    trailcheck.write_checkpoint()
    last = _some_entries(make_record, users, 1)
    verify_audit(actor=users["auditor"])
    # Rewrite every entry with the public unkeyed rule and move the switch-over past the end.
    with _without_guards():
        _rechain(chain.seal, key_id="")
        _sql(f"UPDATE {HEAD} SET keyed_from = %s WHERE id = 1", [last + 2])
    report = trailcheck.verify_chain()
    assert not report.ok and report.first_bad_seq is not None and report.first_bad_seq <= 3
    assert report.code in {"checkpoint_switch_over", "checkpoint_mismatch"}


@pytest.mark.parametrize("value", ["not an ip", "10.0.0.1,10.0.0.2", "proxy.hospital.example"])
def test_a_trusted_proxy_must_be_one_address(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    from medarchive import config

    monkeypatch.setenv("MEDARCHIVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MEDARCHIVE_TRUSTED_PROXY", value)
    with pytest.raises(ConfigurationError, match="MEDARCHIVE_TRUSTED_PROXY must be one IP address"):
        config.load()
    monkeypatch.setenv("MEDARCHIVE_TRUSTED_PROXY", " 127.0.0.1 ")
    assert config.load().trusted_proxy == "127.0.0.1"
