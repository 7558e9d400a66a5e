"""The CLI as an operator uses it: a fresh data directory, real subprocesses, real exit codes."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest

Cli = Any  # the fixture type lives in conftest.py

pytestmark = pytest.mark.slow


def _ingest(cli: Cli, *paths: Path, title: str = "院长办公会纪要", extra: tuple[str, ...] = ()) -> dict[str, Any]:
    result = cli.run(
        "ingest",
        *map(str, paths),
        "--class",
        "WS",
        "--department",
        "BGS",
        "--title",
        title,
        "--date",
        "2025-04-01",
        "--as",
        "officer",
        "--json",
        *extra,
    )
    return json.loads(result.stdout)


def test_init_is_idempotent_and_creates_the_data_directory(fresh_cli: Any) -> None:
    cli = fresh_cli()
    first = json.loads(cli.run("init", "--json").stdout)
    second = json.loads(cli.run("init", "--json").stdout)
    assert first == second and first["fonds"] == "Z001"
    assert (cli.data_dir / "keys.json").stat().st_mode & 0o777 == 0o600
    if "DATABASE_URL" not in cli.env:
        assert (cli.data_dir / "medarchive.sqlite3").exists()


def test_ingest_list_show_get_round_trip(cli: Cli, tmp_path: Path) -> None:
    body = b"%PDF-1.7\n" + secrets.token_bytes(50_000)
    source = tmp_path / "纪要.pdf"
    source.write_bytes(body)
    out = _ingest(cli, source, extra=("--meta", "pages=3", "--meta", "keywords=会议,纪要"))
    assert out["ingested"] == 1
    record = out["records"][0]
    listed = json.loads(cli.run("records", "list", "--as", "officer", "--json").stdout)
    assert listed["total"] == 1 and listed["items"][0]["id"] == record["id"]
    shown = json.loads(cli.run("records", "show", record["id"], "--as", "officer", "--json").stdout)
    assert shown["metadata"] == {"pages": 3, "keywords": ["会议", "纪要"]}
    assert shown["files"][0]["format_name"] == "PDF" and shown["files"][0]["size"] == len(body)
    target = tmp_path / "out.pdf"
    cli.run("content", "get", record["id"], "--out", str(target), "--as", "officer")
    assert target.read_bytes() == body


def test_directory_ingest_is_one_record_per_file_and_rerun_skips(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(3):
        (folder / f"文件{i}.pdf").write_bytes(b"%PDF-1.7 " + secrets.token_bytes(1000))
    first = _ingest(cli, folder)
    again = _ingest(cli, folder)
    assert first["ingested"] == 3 and again == {**again, "ingested": 0, "skipped": 3}
    assert json.loads(cli.run("records", "list", "--as", "officer", "--json").stdout)["total"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--class", "NOPE"], "门类代码NOPE不存在"),  # the CLI speaks the configured language (zh-Hans)
        (["--department", "XX"], "部门XX不存在"),
        (["--date", "2025-02-31"], "日期2025-02-31不是YYYY-MM-DD格式的日期"),
        (["--meta", "pages=lots"], "页数应为整数"),
        (["--meta", "novalue"], "KEY=VALUE"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(cli: Cli, tmp_path: Path, args: list[str], message: str) -> None:
    source = tmp_path / "a.pdf"
    source.write_bytes(b"%PDF-1.7 x")
    base = {"--class": "WS", "--department": "BGS", "--title": "t", "--date": "2025-01-01"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in base:
            base[flag] = value
    extra = [a for pair in zip(args[::2], args[1::2], strict=True) if pair[0] not in base for a in pair]
    flat = [x for kv in base.items() for x in kv]
    result = cli.run("ingest", str(source), *flat, *extra, "--as", "officer", check=False)
    assert result.returncode != 0
    assert message in "".join(result.stderr.split())  # rich wraps long lines
    assert json.loads(cli.run("records", "list", "--as", "officer", "--json").stdout)["total"] == 0


def test_every_problem_of_a_description_is_named_at_once(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "a.pdf"
    source.write_bytes(b"%PDF-1.7 x")
    result = cli.run(
        "ingest", str(source), "--class", "NOPE", "--department", "XX", "--title", "t", "--date", "2025-02-31",
        "--as", "officer", check=False,
    )  # fmt: skip
    said = "".join(result.stderr.split())
    assert result.returncode == 2
    for message in ("门类代码NOPE不存在", "部门XX不存在", "日期2025-02-31不是YYYY-MM-DD格式的日期"):
        assert message in said, result.stderr
    assert result.stderr.count("error:") == 3


def test_empty_file_and_unknown_user_are_refused(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    result = cli.run(
        "ingest",
        str(empty),
        "--class",
        "WS",
        "--department",
        "BGS",
        "--title",
        "t",
        "--date",
        "2025-01-01",
        "--as",
        "officer",
        check=False,
    )
    assert result.returncode == 2 and "empty" in result.stderr
    result = cli.run("records", "list", "--as", "ghost", check=False)
    assert result.returncode == 3 and "ghost" in result.stderr


def test_viewer_cannot_read_content_and_the_refusal_is_audited(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "a.pdf"
    source.write_bytes(b"%PDF-1.7 secret")
    record = _ingest(cli, source)["records"][0]
    result = cli.run("content", "get", record["id"], "--out", str(tmp_path / "x"), "--as", "viewer", check=False)
    assert result.returncode == 3 and "您无权查阅档案文件" in result.stderr
    assert not (tmp_path / "x").exists()


def test_fixity_and_audit_verify_detect_tampering(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "病历.pdf"
    source.write_bytes(b"%PDF-1.7 " + secrets.token_bytes(10_000))
    _ingest(cli, source)
    assert json.loads(cli.run("fixity", "verify", "--json").stdout)["ok"] is True
    assert json.loads(cli.run("audit", "verify", "--as", "auditor", "--json").stdout)["ok"] is True

    blob = next(p for p in (cli.data_dir / "blobs").rglob("*") if p.is_file() and len(p.name) == 64)
    data = bytearray(blob.read_bytes())
    data[-40] ^= 0xFF
    blob.write_bytes(bytes(data))
    result = cli.run("fixity", "verify", check=False)
    assert result.returncode == 1 and "病历.pdf" in result.stderr

    if "DATABASE_URL" in cli.env:
        import psycopg

        with psycopg.connect(cli.env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("DROP TRIGGER audit_append_only_update ON security_auditentry")
            conn.execute("UPDATE security_auditentry SET actor_name = 'mallory' WHERE seq = 3")
    else:
        with sqlite3.connect(cli.data_dir / "medarchive.sqlite3") as conn:
            conn.execute("DROP TRIGGER audit_append_only_update")
            conn.execute("UPDATE security_auditentry SET actor_name = 'mallory' WHERE seq = 3")
    result = cli.run("audit", "verify", "--as", "auditor", "--json", check=False)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["first_bad_seq"] == 3 and report["code"] == "entry_altered" and "#3" in report["problem"]


def test_no_plaintext_under_the_data_directory(cli: Cli, tmp_path: Path) -> None:
    marker = b"PLAINTEXT-" + secrets.token_hex(12).encode()
    source = tmp_path / "明文.txt"
    source.write_bytes(marker + secrets.token_bytes(100_000) + marker)
    _ingest(cli, source)
    for root, _dirs, files in os.walk(cli.data_dir):
        for name in files:
            assert marker not in Path(root, name).read_bytes(), os.path.join(root, name)


def test_keys_rotate_keeps_content_readable(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "a.pdf"
    body = b"%PDF-1.7 " + secrets.token_bytes(3000)
    source.write_bytes(body)
    record = _ingest(cli, source)["records"][0]
    rotated = json.loads(cli.run("keys", "rotate", "--json").stdout)
    assert rotated["rewrapped"] == 1 and rotated["active_key"]
    cli.run("content", "get", record["id"], "--out", str(tmp_path / "b.pdf"), "--as", "officer")
    assert (tmp_path / "b.pdf").read_bytes() == body
    assert json.loads(cli.run("fixity", "verify", "--json").stdout)["ok"] is True


def test_worker_once_runs_the_scheduled_jobs(cli: Cli) -> None:
    out = cli.run("worker", "--once").stdout
    assert "preservation.fixity_sample" in out and "preservation.recover_writes" in out


def test_volumes_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    ids = []
    for name in ("合同.pdf", "验收.pdf"):
        (tmp_path / name).write_bytes(b"%PDF-1.7 " + secrets.token_bytes(500))
        out = cli.run(
            "ingest",
            str(tmp_path / name),
            "--class",
            "KJ-SB",
            "--department",
            "BGS",
            "--title",
            name,
            "--date",
            "2024-05-05",
            "--as",
            "archivist",
            "--json",
        )
        record_id = json.loads(out.stdout)["records"][0]["id"]
        cli.run("records", "submit", record_id, "--as", "archivist")
        cli.run("records", "accept", record_id, "--as", "archivist")
        ids.append(record_id)
    volume = json.loads(
        cli.run(
            "volumes",
            "create",
            "--class",
            "KJ",
            "--department",
            "BGS",
            "--title",
            "监护仪采购",
            "--year",
            "2024",
            "--as",
            "archivist",
            "--json",
        ).stdout
    )
    cli.run("volumes", "add", volume["id"], *ids, "--as", "archivist")
    archived = json.loads(cli.run("volumes", "archive", volume["id"], "--as", "archivist", "--json").stdout)
    assert archived["archival_code"] == "Z001-KJ·2024·D30-0001" and archived["item_count"] == "2"
    bad = cli.run("volumes", "archive", volume["id"], "--as", "archivist", check=False)
    assert bad.returncode == 5 and "已经归档" in bad.stderr


def test_odd_ids_and_markup_in_data_do_not_crash_the_cli(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "[red]扫描.pdf"
    source.write_bytes(b"%PDF-1.7 markup")
    record = _ingest(cli, source, title="含[/]方括号的题名")["records"][0]
    shown = cli.run("records", "show", record["id"], "--as", "officer")
    assert "含[/]方括号的题名" in shown.stdout and "[red]扫描.pdf" in shown.stdout
    assert "[/]" in cli.run("records", "list", "--as", "officer").stdout  # rendered, not parsed as markup
    for args in (["records", "submit", "not-a-uuid"], ["records", "show", "nope"]):
        result = cli.run(*args, "--as", "officer", check=False)
        assert result.returncode == 4 and "不存在" in result.stderr
    result = cli.run("fixity", "verify", "--record", "x", check=False)
    assert result.returncode == 4
