"""A rejected upload, in Chromium, with and without JavaScript: every problem beside its field and in a
summary, never a success box for what was refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "Correct-Horse-42"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


def _archive(fresh_cli: Callable[[], Any]) -> Any:
    cli = fresh_cli()
    cli.run("init")
    cli.run("department", "add", "BGS", "院办公室")
    cli.run(
        "user", "add", "officer", "--role", "officer", "--department", "BGS", "--password-stdin", input=PASSWORD + "\n"
    )
    return cli


def _fill(page: Any, metadata: str) -> None:
    page.fill("#title", "关于测试的通知")
    page.select_option("#class_code", "WS")
    page.fill("#date", "2025-03-01")
    page.fill("#metadata", metadata)
    page.set_input_files("#files", files=[{"name": "通知.pdf", "mimeType": "application/pdf", "buffer": PDF}])


def _serious(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v.get("impact") in {"serious", "critical"}]


def test_a_refused_upload_shows_its_problems_beside_the_fields_and_no_success(
    fresh_cli: Callable[[], Any], browser: Any, serving: Any, log_in: Any
) -> None:
    from playwright.sync_api import expect

    cli = _archive(fresh_cli)
    with serving(cli) as base:
        for javascript in (True, False):
            context = browser.new_context(locale="zh-CN", java_script_enabled=javascript)
            page = context.new_page()
            page.goto(f"{base}/login/")
            log_in(page, PASSWORD)
            page.goto(f"{base}/records/new/")
            # The metadata is valid JSON, so the browser lets it through; the server refuses its value.
            _fill(page, '{"pages": "三页"}')
            if javascript:
                page.click("#upload-form button[type=submit]")
                summary = page.locator("#client-error")
            else:
                with page.expect_navigation():
                    page.click("#upload-form button[type=submit]")
                summary = page.locator("#error-summary")
            expect(summary).to_be_visible()
            expect(page.locator("#metadata-errors")).to_be_visible()
            expect(page.locator("#metadata")).to_have_attribute("aria-invalid", "true")
            expect(page.locator("#metadata")).to_have_attribute("aria-describedby", "metadata-errors")
            expect(page.locator(".flash.success:visible")).to_have_count(0)
            assert page.url.endswith("/records/new/"), page.url
            html = page.content()
            context.close()
            # axe runs in the page's JavaScript: check the server-rendered error page in a page that has some.
            checker = browser.new_context(locale="zh-CN")
            shown = checker.new_page()
            shown.goto(f"{base}/login/")
            shown.set_content(html)
            assert not _serious(shown), javascript
            checker.close()
        listed = cli.run("records", "list", "--as", "officer", "--json").stdout
        assert '"total": 0' in listed  # nothing half-written
