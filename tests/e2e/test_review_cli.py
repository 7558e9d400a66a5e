"""`medarchive review` and `medarchive submissions` as an operator uses them (real subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _submitted(cli: Any, tmp_path: Path, n: int) -> list[str]:
    ids = []
    for i in range(n):
        source = tmp_path / f"通知{i}.pdf"
        source.write_bytes(b"%PDF-1.7\n" + f"notice {i} ".encode() * 80)
        args = ["--class", "WS", "--department", "BGS", "--title", f"通知{i}", "--date", "2025-04-01"]
        made = json.loads(cli.run("ingest", str(source), *args, "--as", "officer", "--json").stdout)
        record_id = made["records"][0]["id"] if "records" in made else made[0]["id"]
        cli.run("records", "submit", record_id, "--as", "officer")
        ids.append(record_id)
    return ids


def test_queue_accept_return_and_withdraw(cli: Any, tmp_path: Path) -> None:
    ids = _submitted(cli, tmp_path, 3)
    queue = json.loads(cli.run("review", "queue", "--as", "archivist", "--json").stdout)
    assert queue["total"] == 3 and {i["record_id"] for i in queue["items"]} == set(ids)
    assert all(i["review"] == "pending" and i["errors"] == 0 for i in queue["items"])

    refused = cli.run("review", "queue", "--as", "officer", check=False)
    assert refused.returncode == 3 and "您无权进行入口审核" in refused.stderr

    accepted = json.loads(cli.run("review", "accept", ids[0], ids[1], "--as", "archivist", "--json").stdout)
    assert [a["ok"] for a in accepted] == [True, True]
    again = cli.run("review", "accept", ids[0], "--as", "archivist", check=False)
    assert again.returncode == 1 and "已接收" in again.stdout

    no_comment = cli.run("review", "return", ids[2], "--as", "archivist", check=False)
    assert no_comment.returncode == 2 and "comment" in no_comment.stderr
    returned = json.loads(
        cli.run("review", "return", ids[2], "--comment", "请补充文号", "--as", "archivist", "--json").stdout
    )
    assert returned["review"] == "returned" and returned["comment"] == "请补充文号"
    withdrawn = json.loads(
        cli.run("review", "withdraw", ids[2], "--comment", "重复", "--as", "officer", "--json").stdout
    )
    assert withdrawn["review"] == "withdrawn"
    shown = json.loads(cli.run("records", "show", ids[2], "--as", "officer", "--json").stdout)
    assert shown["state"] == "withdrawn"
