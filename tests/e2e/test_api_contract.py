"""The REST API keeps its OpenAPI contract: schemathesis against the real `medarchive serve`.

Every check (server errors, status codes, content types, response schemas and headers, positive and
negative data, methods, authentication) and every phase (examples, coverage, fuzzing, stateful) runs
against a fresh archive with a few records, on SQLite or on a throwaway PostgreSQL database. The
configuration is the repository's `schemathesis.toml`; zero failures is the only pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "schemathesis.toml"


def _ingest(cli: Any, tmp_path: Path, name: str, department: str, title: str) -> str:
    path = tmp_path / name
    path.write_bytes(b"%PDF-1.7\n" + title.encode() * 40 + b"\n%%EOF\n")
    out = cli.run(
        "ingest", str(path), "--class", "WS", "--department", department, "--title", title,
        "--date", "2025-03-01", "--as", "archivist", "--json",
    )  # fmt: skip
    return str(json.loads(out.stdout)["records"][0]["id"])


@pytest.mark.slow
def test_the_api_keeps_its_openapi_contract(cli: Any, serving: Any, tmp_path: Path) -> None:
    _ingest(cli, tmp_path, "notice.pdf", "BGS", "关于召开年度工作会议的通知")
    other_id = _ingest(cli, tmp_path, "summary.pdf", "NK", "内科年度工作总结")
    cli.run("records", "submit", other_id, "--as", "archivist")
    token = cli.run("token", "create", "archivist", "--name", "schemathesis").stdout.strip()
    auditor = cli.run("token", "create", "auditor", "--name", "schemathesis").stdout.strip()
    env = {
        **os.environ,
        "MEDARCHIVE_API_TOKEN": token,
        "MEDARCHIVE_AUDITOR_TOKEN": auditor,
        "NO_COLOR": "1",
    }
    with serving(cli) as base:
        command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color"]
        command += ["run", f"{base}/api/v1/openapi.json", "--report", "junit"]
        command += ["--report-dir", str(tmp_path / "schemathesis")]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=900,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-30_000:]
    summary = output[output.rfind("SUMMARY") :]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary  # every phase ran and passed (none skipped)
    assert "failures" not in summary.splitlines()[-1], summary
