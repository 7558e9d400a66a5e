"""`medarchive demo` builds a usable demo hospital and refuses to touch a real archive."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.slow


def test_demo_builds_records_users_and_real_files(fresh_cli: Any) -> None:
    cli = fresh_cli()
    built = cli.run("demo", "--records", "24", "--no-serve").stdout
    # The duty history's discharges that were archived (on time or late) arrive as records of their own.
    on_time, late = (int(n) for n in re.search(r"按时 (\d+)，逾期 (\d+)", built).groups())  # type: ignore[union-attr]
    credentials = json.loads((cli.data_dir / "demo-credentials.json").read_text(encoding="utf-8"))
    assert (cli.data_dir / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
    assert {c["role"] for c in credentials} == {
        "sysadmin",
        "secadmin",
        "auditor",
        "archivist",
        "officer",
        "clinician",
        "researcher",
        "viewer",
        "interface",
    }
    listed = json.loads(cli.run("records", "list", "--as", "archivist", "--json", "--page-size", "100").stdout)
    # 24, one file sent twice (the door flags it as a duplicate) and the received discharges
    assert listed["total"] == 25 + on_time + late
    states = {item["state"] for item in listed["items"]}
    assert {"draft", "submitted", "accepted", "archived"} <= states
    # Everything came through the door: some wait in the review queue, some were returned.
    queue = json.loads(cli.run("review", "queue", "--as", "archivist", "--json").stdout)
    returned = json.loads(cli.run("review", "queue", "--state", "returned", "--as", "archivist", "--json").stdout)
    assert queue["total"] >= 1 and returned["total"] >= 1
    classes = {item["class"] for item in listed["items"]}
    assert {"WS", "BA-ZY", "KU"} <= classes
    formats = set()
    for item in listed["items"][-12:]:  # the newest are the duty history's discharge summaries (PDF)
        shown = json.loads(cli.run("records", "show", item["id"], "--as", "archivist", "--json").stdout)
        formats |= {f["format_name"] for f in shown["files"]}
    assert "PDF" in formats and len(formats) >= 2
    assert json.loads(cli.run("fixity", "verify", "--json").stdout)["ok"] is True
    # Completeness monitoring has a history to show at once: discharges on time, late, missing, not yet due.
    # (the history reaches back three months, so in the first quarter it spans two years)
    total = {"on_time": 0, "late": 0, "missing": 0}
    today = dt.datetime.now(tz=ZoneInfo("Asia/Shanghai")).date()
    for year in {today.year, (today - dt.timedelta(days=100)).year}:
        found = json.loads(cli.run("duties", "status", "--as", "archivist", "--period", str(year), "--json").stdout)
        for key in total:
            total[key] += found["total"][key]
    assert all(total.values()), total
    again = cli.run("demo", "--no-serve")
    assert "already built" in again.stdout


def test_demo_refuses_a_data_directory_holding_a_real_archive(cli: Any) -> None:
    result = cli.run("demo", "--no-serve", check=False)
    assert result.returncode == 2 and "not a demo" in result.stderr
