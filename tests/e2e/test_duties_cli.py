"""`medarchive duties` as an operator uses it: real subprocesses on a fresh archive, real exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _json(cli: Any, *args: str) -> Any:
    return json.loads(cli.run(*args, "--json").stdout)


def _inpatient_record(cli: Any, tmp_path: Path, visit: str) -> str:
    pdf = tmp_path / f"{visit}.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + f"discharge summary {visit} ".encode() * 80 + b"\n%%EOF\n")
    ingested = _json(
        cli,
        "ingest",
        str(pdf),
        "--class",
        "BA-ZY",
        "--department",
        "BGS",
        "--title",
        f"住院病案 {visit}",
        "--date",
        "2025-03-02",
        "--meta",
        f"visit_number={visit}",
        "--meta",
        "patient_id=P0001",
        "--meta",
        "patient_name=张三",
        "--as",
        "officer",
    )
    record_id = str(ingested["records"][0]["id"])
    cli.run("records", "submit", record_id, "--as", "officer")
    return record_id


def test_event_record_status_and_reminders(cli: Any, tmp_path: Path) -> None:
    defaults = _json(cli, "duties", "rules", "list", "--as", "archivist")
    assert {r["kind"] for r in defaults} == {"event", "record", "periodic"}

    event = ("duties", "event", "discharge", "--as", "archivist", "--department", "BGS", "--at", "2025-03-01T09:00")
    [first] = _json(cli, *event, "--subject", "ZY-1")
    assert (first["due_on"], first["status"]) == ("2025-03-08", "missing")
    [again] = _json(cli, *event, "--subject", "ZY-1")
    assert again["id"] == first["id"], "a repeated discharge opens nothing new"
    _json(cli, *event, "--subject", "ZY-2")

    record_id = _inpatient_record(cli, tmp_path, "ZY-1")
    rows = _json(cli, "duties", "obligations", "--as", "officer", "--department", "BGS", "--period", "2025-03")
    by_subject = {r["subject_key"]: r for r in rows}
    assert by_subject["ZY-1"]["status"] == "late" and by_subject["ZY-1"]["record_id"] == record_id
    assert by_subject["ZY-2"]["status"] == "missing"
    viewed = _json(cli, "duties", "obligations", "--as", "viewer", "--department", "BGS", "--period", "2025-03")
    assert {(r["subject_key"], r["subject_label"]) for r in viewed} == {("***", "***")}, "no patient rights"

    # Another department's key: its own obligation, never NK's.
    [nk] = _json(cli, "duties", "event", "discharge", "--as", "archivist", "--department", "NK", "--subject", "ZY-9")
    [bgs] = _json(cli, "duties", "event", "discharge", "--as", "officer", "--department", "BGS", "--subject", "ZY-9")
    assert (nk["department"], bgs["department"]) == ("NK", "BGS") and nk["id"] != bgs["id"]

    status = _json(cli, "duties", "status", "--as", "officer", "--period", "2025-03")
    assert [d["code"] for d in status["departments"]] == ["BGS"], "an officer sees their own department"
    assert status["total"] | {} == {
        "expected": 2,
        "received": 1,
        "on_time": 0,
        "late": 1,
        "missing": 1,
        "pending": 0,
        "score": 0.0,
    }
    table = cli.run("duties", "status", "--as", "archivist", "--period", "2025-03").stdout
    assert "院办公室" in table and "0%" in table

    first_run = _json(cli, "duties", "remind")
    assert first_run["obligations_reminded"] >= 1 and first_run["notifications"] >= 1
    second_run = _json(cli, "duties", "remind")
    assert second_run["obligations_reminded"] == 0 and second_run["notifications"] == 0


def test_rule_commands_and_bad_input(cli: Any) -> None:
    added = _json(
        cli,
        "duties",
        "rules",
        "add",
        "--as",
        "archivist",
        "--name",
        "每季度人事档案",
        "--kind",
        "periodic",
        "--class",
        "RS",
        "--period",
        "quarter",
        "--due-day",
        "15",
        "--min-count",
        "2",
    )
    assert (added["period"], added["min_count"], added["department"]) == ("quarter", 2, None)
    cli.run("duties", "rules", "disable", "每季度人事档案", "--as", "archivist")
    assert not next(r for r in _json(cli, "duties", "rules", "list", "--as", "archivist") if r["id"] == added["id"])[
        "active"
    ]
    cli.run("duties", "rules", "remove", str(added["id"]), "--as", "archivist")

    def refused(*args: str) -> tuple[int, str]:
        result = cli.run(*args, check=False)
        return result.returncode, "".join(result.stderr.split())  # rich wraps long lines

    base = ("duties", "rules", "add", "--as", "archivist", "--kind", "event", "--event", "discharge")
    code, err = refused(*base, "--name", "x", "--class", "ZZ", "--match-key", "visit_number", "--due-days", "3")
    assert code == 2 and "门类代码ZZ不存在" in err
    code, err = refused(*base, "--name", "x", "--class", "BA-ZY", "--match-key", "visit_number", "--due-days", "0")
    assert code == 2 and "归档期限须为触发后1到366天，而不是0天" in err
    code, err = refused(
        *base, "--name", "x", "--class", "BA-ZY", "--match-key", "visit_number", "--department", "XX", "--due-days", "3"
    )
    assert code == 2 and "部门XX不存在" in err
    code, err = refused(
        *base, "--name", "出院病案7日内归档", "--class", "BA-ZY", "--match-key", "visit_number", "--due-days", "3"
    )
    assert code == 5 and "已有名为出院病案7日内归档的职责规则" in err
    code, err = refused(
        "duties", "rules", "add", "--as", "officer", "--name", "y", "--kind", "event", "--class", "BA-ZY"
    )
    assert code == 3 and "您无权管理部门归档职责" in err
    code, err = refused("duties", "rules", "remove", "出院病案7日内归档", "--as", "nobody")
    assert code == 3
    code, err = refused("duties", "status", "--as", "officer", "--department", "NK")
    assert code == 3 and "您无权查看部门NK的归档职责" in err
    code, err = refused("duties", "status", "--as", "archivist", "--period", "2025-13")
    assert code == 2 and "没有13月" in err
    code, err = refused(
        "duties",
        "event",
        "discharge",
        "--as",
        "archivist",
        "--department",
        "BGS",
        "--subject",
        "Z",
        "--at",
        "yesterday",
    )
    assert code == 2 and "--at" in err
    code, err = refused(
        "duties",
        "rules",
        "add",
        "--as",
        "archivist",
        "--name",
        "z",
        "--kind",
        "record",
        "--class",
        "KJ-SB",
        "--trigger-filter",
        "[]",
    )
    assert code == 2 and "mustbeaJSONobject" in err
