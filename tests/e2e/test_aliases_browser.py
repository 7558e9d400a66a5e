"""The department code page in a real browser: the archivist finds it in the navigation, adds a
mapping (errors first, beside their fields), filters, edits and deletes it after a confirmation;
axe-core finds no serious or critical accessibility violation on any of its pages; an officer has no
link and is refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import PASSWORD, Cli

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def no_serious_violations(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v.get("impact") in {"serious", "critical"}]
    assert not serious, results.generate_report()


def test_an_archivist_keeps_the_department_codes(
    cli: Cli, page: Any, serving: Any, log_in: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with serving(cli) as base:
        page.goto(f"{base}/login/")
        log_in(page, PASSWORD, "archivist")
        page.get_by_role("link", name="部门代码映射").click()
        expect(page).to_have_url(re.compile(r"/departments/aliases/$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("部门代码映射")
        no_serious_violations(page)

        # Nothing filled in: every problem beside its field, in Chinese.
        page.select_option("#a-kind", "fhir-practice-setting")
        page.get_by_role("button", name="添加").click()
        expect(page.locator("#e-key")).to_have_text("此项必填。")
        expect(page.locator("#e-system")).to_have_text("此项必填。")
        expect(page.locator("#e-department")).to_have_text("此项必填。")
        expect(page.locator("#a-key")).to_have_attribute("aria-invalid", "true")
        no_serious_violations(page)
        page.screenshot(path=str(tmp_path / "aliases-errors.png"), full_page=True)

        page.fill("#a-system", "http://emr.example.cn/CodeSystem/dept")
        page.fill("#a-key", "0301")
        page.select_option("#a-department", "NK")
        page.fill("#a-note", "心血管内科（EMR 科室字典）")
        page.get_by_role("button", name="添加").click()
        expect(page.locator(".flash.success")).to_contain_text("已将 0301 映射到 NK 内科")
        page.select_option("#a-kind", "dicom-institution")
        page.fill("#a-key", "  放射科 ")
        page.fill("#a-system", "协和医院东院")
        page.select_option("#a-department", "BGS")
        page.get_by_role("button", name="添加").click()
        expect(page.locator("tbody tr")).to_have_count(2)
        page.screenshot(path=str(tmp_path / "department-aliases-zh.png"), full_page=True)

        # Filters: by source, by department, by text.
        page.locator("form.filters select[name=kind]").select_option("dicom-institution")
        page.get_by_role("button", name="筛选").click()
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody")).to_contain_text("放射科")
        page.goto(f"{base}/departments/aliases/?q=EMR")
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody")).to_contain_text("0301")

        # Edit: the department changes; the same key twice is refused beside the key.
        page.get_by_role("link", name="编辑 0301").click()
        no_serious_violations(page)
        page.select_option("#a-department", "BGS")
        page.get_by_role("button", name="保存").click()
        expect(page.locator("tbody")).to_contain_text("BGS 院办公室")
        page.get_by_role("link", name="编辑 放射科").click()
        page.select_option("#a-kind", "fhir-practice-setting")
        page.fill("#a-system", "http://emr.example.cn/CodeSystem/dept")
        page.fill("#a-key", "0301")
        page.get_by_role("button", name="保存").click()
        expect(page.locator("#e-key")).to_contain_text("已有映射")
        page.goto(f"{base}/departments/aliases/")

        # Delete: a confirmation page first, Cancel keeps it, Delete removes it.
        page.get_by_role("link", name="删除 放射科").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("删除部门代码映射")
        no_serious_violations(page)
        page.get_by_role("link", name="取消").click()
        expect(page.locator("tbody tr")).to_have_count(2)
        page.get_by_role("link", name="删除 放射科").click()
        page.get_by_role("button", name="删除").click()
        expect(page.locator(".flash.success")).to_contain_text("已删除")
        expect(page.locator("tbody tr")).to_have_count(1)

        # In English too (the user's choice).
        page.select_option("#lang", "en")
        expect(page.get_by_role("heading", level=1)).to_have_text("Department codes")
        page.select_option("#lang", "zh-hans")

        # An officer has no link and is refused the page.
        page.get_by_role("button", name="退出").click()
        log_in(page, PASSWORD, "officer")
        expect(page.get_by_role("link", name="部门代码映射")).to_have_count(0)
        refused = page.goto(f"{base}/departments/aliases/")
        assert refused is not None and refused.status == 403
    listed = cli.run("department", "alias", "list", "--as", "archivist").stdout
    assert "0301" in listed and "放射科" not in listed
