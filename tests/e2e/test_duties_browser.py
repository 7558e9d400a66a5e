"""The duty dashboard in a real browser: an officer sees expected / received / late / missing and the
chart, drills into the department, reads the reminder; the archivist adds a rule in the form."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "Correct-Horse-42"


def _archive(fresh_cli: Callable[[], Any], tmp_path: Path) -> Any:
    """BGS owes three inpatient records for March 2025: one came late, two are missing."""
    cli = fresh_cli()
    cli.run("init")
    cli.run("department", "add", "BGS", "院办公室")
    cli.run("department", "add", "NK", "内科")
    for name, role, dept in (
        ("officer", "officer", ["--department", "BGS"]),
        ("viewer", "viewer", ["--department", "BGS"]),
        ("archivist", "archivist", []),
    ):
        cli.run("user", "add", name, "--role", role, *dept, "--password-stdin", input=PASSWORD + "\n")
    for visit in ("ZY-1", "ZY-2", "ZY-3"):
        cli.run(
            "duties", "event", "discharge", "--as", "archivist", "--department", "BGS", "--subject", visit,
            "--label", f"患者李四 {visit}", "--at", "2025-03-01T09:00",
        )  # fmt: skip
    pdf = tmp_path / "ZY-1.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + b"discharge summary ZY-1 " * 80 + b"\n%%EOF\n")
    ingested = cli.run(
        "ingest", str(pdf), "--class", "BA-ZY", "--department", "BGS", "--title", "住院病案 ZY-1",
        "--date", "2025-03-02", "--meta", "visit_number=ZY-1", "--meta", "patient_id=P1",
        "--meta", "patient_name=李四", "--as", "officer", "--json",
    )  # fmt: skip
    cli.run("records", "submit", json.loads(ingested.stdout)["records"][0]["id"], "--as", "officer")
    cli.run("duties", "remind")
    return cli


def test_officer_reads_the_dashboard_and_archivist_adds_a_rule(
    fresh_cli: Callable[[], Any], page: Any, serving: Any, log_in: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    cli = _archive(fresh_cli, tmp_path)
    with serving(cli) as base:
        page.goto(f"{base}/duties/")
        expect(page).to_have_url(re.compile(r"/login/\?next=/duties/$"))
        log_in(page, PASSWORD, "officer")

        # The dashboard for March 2025: the officer's own department only, figures and the chart.
        page.goto(f"{base}/duties/?period=2025-03")
        tiles = page.locator("section.tiles")
        expect(tiles.locator(".tile").nth(0).locator(".n")).to_have_text("3")  # expected
        expect(tiles.locator(".tile.on_time .n")).to_have_text("0")
        expect(tiles.locator(".tile.late .n")).to_have_text("1")
        expect(tiles.locator(".tile.missing .n")).to_have_text("2")
        expect(tiles.locator(".tile.pending .n")).to_have_text("0")
        chart = page.locator("svg.duty-chart")
        expect(chart).to_be_visible()
        expect(chart.locator("g.bar")).to_have_count(1)
        expect(chart.locator("rect.s-late")).to_have_count(1)
        expect(chart.locator("rect.s-missing")).to_have_count(1)
        assert float(chart.locator("rect.s-missing").get_attribute("width") or 0) > float(
            chart.locator("rect.s-late").get_attribute("width") or 0
        ), "two missing draw longer than one late"
        expect(page.locator("table.duties-table tbody tr")).to_have_count(1)
        expect(page.locator("table.duties-table tbody")).not_to_contain_text("内科")
        page.screenshot(path=str(tmp_path / "duties-dashboard.png"), full_page=True)

        # A bad period is explained, not a crash.
        page.goto(f"{base}/duties/?period=2025-13")
        expect(page.locator("p.flash.error[role=alert]")).to_contain_text("2025-13")

        # Drill down into the department, then to what is missing.
        page.goto(f"{base}/duties/?period=2025-03")
        page.get_by_role("link", name="院办公室").click()
        expect(page).to_have_url(re.compile(r"/duties/department/BGS/\?period=2025-03$"))
        rows = page.locator("table.duties-table tbody tr")
        expect(rows).to_have_count(3)
        expect(page.locator("tr[data-status=late]")).to_contain_text("ZY-1")
        page.locator("a.tile.missing").click()
        expect(rows).to_have_count(2)
        expect(page.locator("table.duties-table tbody")).not_to_contain_text("ZY-1")
        expect(page.locator("table.duties-table tbody")).to_contain_text("患者李四 ZY-2")
        page.screenshot(path=str(tmp_path / "duties-department.png"), full_page=True)

        # The reminder the worker created is in the officer's notifications.
        page.goto(f"{base}/duties/notifications/")
        reminder = page.locator("li.card.unread")
        expect(reminder).to_have_count(1)
        expect(reminder).to_contain_text("ZY-2")
        reminder.get_by_role("button").click()
        expect(page.locator("li.card.unread")).to_have_count(0)

        # The officer reads the rules but has no form to change them.
        page.goto(f"{base}/duties/rules/")
        expect(page.locator("table.duties-table")).to_contain_text("出院病案7日内归档")
        expect(page.locator("form.form")).to_have_count(0)

        page.click(".topbar form[action='/logout/'] button")
        page.goto(f"{base}/login/?next=/duties/rules/")
        log_in(page, PASSWORD, "archivist")

        # The archivist adds a rule; a nonsensical deadline is refused with the field marked.
        page.fill("#r-name", "门诊病案3日内归档")
        page.select_option("#r-kind", "event")
        page.select_option("#r-class", "BA-MZ")
        page.fill("#r-event", "visit_closed")
        page.fill("#r-key", "visit_number")
        page.fill("#r-days", "0")
        page.fill("#r-remind", "三")
        page.click("form.form button.primary")
        # Every problem at once: in the summary at the top and beside its field, in Chinese.
        summary = page.locator("#error-summary")
        expect(summary).to_contain_text("而不是 0 天")
        expect(summary.locator("li")).to_have_count(2)
        expect(page.locator("#r-days-errors")).to_contain_text("而不是 0 天")
        expect(page.locator("#r-days")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#r-remind-errors")).to_be_visible()
        expect(page.locator("#r-remind")).to_have_attribute("aria-invalid", "true")
        page.fill("#r-remind", "3")
        page.fill("#r-days", "3")
        page.click("form.form button.primary")
        expect(page).to_have_url(f"{base}/duties/rules/")
        expect(page.locator("table.duties-table")).to_contain_text("门诊病案3日内归档")

        # The archivist sees every department.
        page.goto(f"{base}/duties/?period=2025-03")
        expect(page.locator("table.duties-table tbody tr")).to_have_count(2)

        page.click(".topbar form[action='/logout/'] button")
        page.goto(f"{base}/login/?next=/duties/department/BGS/%3Fperiod%3D2025-03")
        log_in(page, PASSWORD, "viewer")
        page.goto(f"{base}/duties/department/BGS/?period=2025-03")
        # A viewer has no patient rights: neither the label nor the visit number (a personal identifier).
        expect(page.locator("table.duties-table tbody tr")).to_have_count(3)
        expect(page.locator("table.duties-table tbody")).to_contain_text("***")
        expect(page.locator("table.duties-table tbody")).not_to_contain_text("ZY-")
        expect(page.locator("table.duties-table tbody")).not_to_contain_text("李四")
