"""`medarchive import` and `medarchive watch --once` as an operator runs them: real subprocesses, real exit codes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

Cli = Any  # the fixture type lives in conftest.py
PASSWORD = "Correct-Horse-42"

pytestmark = pytest.mark.slow


def _pdf(tag: str) -> bytes:
    return b"%PDF-1.7\n" + f"carrier document {tag} ".encode() * 40


def _interface_user(cli: Cli) -> str:
    cli.run("user", "add", "his", "--role", "interface", "--password-stdin", input=PASSWORD + "\n")
    return "his"


def _records(cli: Cli) -> dict[str, Any]:
    listed: dict[str, Any] = json.loads(cli.run("records", "list", "--as", "archivist", "--json").stdout)
    return listed


def test_import_accepts_the_good_rows_flags_the_bad_one_and_a_rerun_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    user = _interface_user(cli)
    carrier = tmp_path / "移交"
    (carrier / "病历").mkdir(parents=True)
    (carrier / "a.pdf").write_bytes(_pdf("a"))
    (carrier / "病历" / "b.pdf").write_bytes(_pdf("b"))
    (carrier / "c.pdf").write_bytes(_pdf("c"))
    manifest = (
        "题名,日期,门类,部门,文件,患者ID,患者姓名\n"
        "院办会议纪要,2025-03-01,文书,院办公室,a.pdf,,\n"
        "出院记录,2025/3/2,住院病案,内科,病历/b.pdf,P001,张三\n"
        "检验报告,20250303,BA-ZY,NK,c.pdf,P002,李四\n"
        "越界,2025-03-04,WS,BGS,../secret.pdf,,\n"
    )
    (carrier / "清单.csv").write_bytes(manifest.encode("gb18030"))

    first = cli.run("import", str(carrier), "--as", user, check=False)

    assert first.returncode == 1, first.stderr
    assert "row 5 ../secret.pdf: 不合格:" in first.stdout and "超出了载体范围" in first.stdout  # the configured zh-Hans
    assert "3 received (2 accepted automatically" in first.stdout and "1 不合格" in first.stdout
    listed = _records(cli)
    assert listed["total"] == 3
    assert {(i["title"], i["class"], i["department"]) for i in listed["items"]} >= {("出院记录", "BA-ZY", "NK")}

    again = cli.run("import", str(carrier / "清单.csv"), "--as", user, "--json", check=False)

    assert again.returncode == 1
    report = json.loads(again.stdout)
    assert (report["received"], report["replayed"], report["rejected"]) == (0, 3, 1)
    assert report["manifest"]["encoding"] == "gb18030" and report["manifest"]["rows"] == 4
    assert [item["status"] for item in report["items"]] == ["replayed", "replayed", "replayed", "rejected"]
    assert report["items"][3]["problem"]["code"] == "unsafe_path"
    assert _records(cli)["total"] == 3

    # The same files described otherwise (a corrected title) are 不合格, not "already imported".
    (carrier / "清单.csv").write_bytes(manifest.replace("院办会议纪要", "院长办公会纪要").encode("gb18030"))
    corrected = json.loads(cli.run("import", str(carrier), "--as", user, "--json", check=False).stdout)
    assert [item["status"] for item in corrected["items"]] == ["rejected", "replayed", "replayed", "rejected"]
    assert corrected["items"][0]["problem"]["code"] == "identifier_reused"
    assert _records(cli)["total"] == 3


def test_import_of_a_zip_carrier_and_of_an_unsafe_zip(cli: Cli, tmp_path: Path) -> None:
    user = _interface_user(cli)
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("manifest.csv", "title,date,class,department,file\n通知,2025-03-01,WS,BGS,docs/n.pdf\n")
        archive.writestr("docs/n.pdf", _pdf("zip"))
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("manifest.csv", "file\nn.pdf\n")
        archive.writestr("../../n.pdf", _pdf("evil"))

    ok = cli.run("import", str(good), "--as", user, "--json")
    refused = cli.run("import", str(evil), "--as", user, check=False)

    assert json.loads(ok.stdout)["received"] == 1
    assert refused.returncode == 2 and "超出了载体范围" in "".join(refused.stderr.split())
    assert _records(cli)["total"] == 1


def test_watch_once_captures_drops_and_moves_them(cli: Cli, tmp_path: Path) -> None:
    user = _interface_user(cli)
    watch = tmp_path / "watch"
    inbox = watch / "inbox"
    inbox.mkdir(parents=True)
    (watch / "defaults.json").write_text(json.dumps({"门类": "WS", "部门": "BGS"}), encoding="utf-8")
    (inbox / "纪要.pdf").write_bytes(_pdf("watched"))
    (inbox / "纪要.pdf.json").write_text(json.dumps({"题名": "党委会纪要", "日期": "2025-03-08"}), encoding="utf-8")
    (inbox / "undated.pdf").write_bytes(_pdf("undated"))
    cli.env["MEDARCHIVE_WATCH_DIR"] = str(watch)  # FOLDER defaults to the configured folder

    first = cli.run("watch", "--as", user, "--once", "--settle", "0", "--json", check=False)

    assert first.returncode == 1, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["received"], summary["rejected"]) == (1, 1)
    assert sorted(p.name for p in (watch / "done").iterdir()) == ["纪要.pdf", "纪要.pdf.json"]
    assert "code: required\nfield: date" in (watch / "failed" / "undated.pdf.error.txt").read_text(encoding="utf-8")
    assert [i["title"] for i in _records(cli)["items"]] == ["党委会纪要"]

    (inbox / "纪要 copy.pdf").write_bytes(_pdf("watched"))  # the same bytes, described otherwise
    (inbox / "纪要 copy.pdf.json").write_text(json.dumps({"题名": "副本", "日期": "2025-03-09"}), encoding="utf-8")
    second = cli.run("watch", str(watch), "--as", user, "--once", "--settle", "0", check=False)

    # Not "already imported": its description (title 副本, another date) would be dropped silently.
    assert second.returncode == 1 and "纪要 copy.pdf → failed/: 不合格:" in second.stdout
    error = (watch / "failed" / "纪要 copy.pdf.error.txt").read_text(encoding="utf-8")
    assert "code: identifier_reused" in error and "Z001-2025-00000001" in error
    assert _records(cli)["total"] == 1

    (inbox / "纪要.pdf").write_bytes(_pdf("watched"))  # the very same drop again: already in
    (inbox / "纪要.pdf.json").write_text(json.dumps({"题名": "党委会纪要", "日期": "2025-03-08"}), encoding="utf-8")
    third = cli.run("watch", str(watch), "--as", user, "--once", "--settle", "0")
    assert "纪要.pdf → done/: already imported as" in third.stdout
    assert _records(cli)["total"] == 1


def test_watch_without_a_folder_says_so(cli: Cli) -> None:
    result = cli.run("watch", "--as", "officer", "--once", check=False)
    assert result.returncode == 2 and "MEDARCHIVE_WATCH_DIR" in result.stderr
