"""The door in a real browser: drag-and-drop submission with progress, review queue with bulk accept,
return with a comment, the department's returned-items inbox and withdrawal."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "Correct-Horse-42"


def _pdf(n: int) -> bytes:
    return b"%PDF-1.7\n" + f"notice {n} ".encode() * 300 + b"\n%%EOF\n"


def _archive(fresh_cli: Callable[[], Any]) -> Any:
    cli = fresh_cli()
    cli.run("init")
    cli.run("department", "add", "BGS", "院办公室")
    for name, role, dept in (("officer", "officer", ["--department", "BGS"]), ("archivist", "archivist", [])):
        cli.run("user", "add", name, "--role", role, *dept, "--password-stdin", input=PASSWORD + "\n")
    return cli


def _log_out(page: Any) -> None:
    with page.expect_navigation():
        page.click(".topbar form[action='/logout/'] button")


def _drop(page: Any, selector: str, name: str, data: bytes) -> None:
    """Drop a file on an element the way a browser does (a DataTransfer carrying a File)."""
    transfer = page.evaluate_handle(
        """([name, bytes]) => { const dt = new DataTransfer();
             dt.items.add(new File([new Uint8Array(bytes)], name, {type: "application/pdf"})); return dt; }""",
        [name, list(data)],
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_submit_review_return_and_withdraw(fresh_cli: Callable[[], Any], page: Any, serving: Any, log_in: Any) -> None:
    from playwright.sync_api import expect

    cli = _archive(fresh_cli)
    with serving(cli) as base:
        # The department submits two files, each its own record: one chosen, one dragged in.
        page.goto(f"{base}/login/")
        log_in(page, PASSWORD, "officer")
        page.goto(f"{base}/records/new/")
        page.check("input[name=mode][value=each]")
        page.select_option("#class_code", "WS")
        page.fill("#date", "2025-03-01")
        page.set_input_files("#files", files=[{"name": "通知一.pdf", "mimeType": "application/pdf", "buffer": _pdf(1)}])
        _drop(page, "#dropzone", "通知二.pdf", _pdf(2))
        expect(page.locator("#file-list li")).to_have_count(2)
        page.click("#upload-form button[type=submit]")
        result = page.locator("#result")
        expect(result).to_be_visible()
        expect(result.locator("a")).to_have_count(2)
        expect(page.locator("#progress")).to_have_attribute("value", "100")
        expect(result).to_contain_text("通知一.pdf")
        expect(result).to_contain_text("通知二.pdf")
        # The department has no review queue.
        expect(page.locator(".topbar nav")).not_to_contain_text("审核队列")
        _log_out(page)

        # The archive accepts one in bulk and returns the other with a comment.
        log_in(page, PASSWORD, "archivist")
        page.click(".topbar nav >> text=审核队列")
        rows = page.locator("table.queue tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first.locator(".ok-note")).to_have_text("全部检查通过。")
        first_title = rows.first.locator("td").nth(1).locator("a").inner_text()
        rows.first.locator("input[name=record]").check()
        with page.expect_navigation():
            page.click("#bulk-accept")
        expect(page.locator(".flash.success")).to_contain_text("已接收 1 件")
        expect(rows).to_have_count(1)
        with page.expect_navigation():
            rows.first.locator("td").nth(1).locator("a").click()
        expect(page.locator("#door h2")).to_contain_text("待审核")
        page.fill("#return-comment", "请补充文号后重新提交")
        with page.expect_navigation():
            page.click(".review-return button")
        expect(page.locator(".flash.success")).to_contain_text("已退回")
        expect(page.locator("#door .comment")).to_contain_text("请补充文号后重新提交")
        page.goto(f"{base}/review/")
        expect(page.locator(".card")).to_contain_text("这里没有待办的内容")
        _log_out(page)

        # The department sees what came back and withdraws it; the record stays, withdrawn.
        log_in(page, PASSWORD, "officer")
        page.click(".topbar nav >> text=退回件")
        returned = page.locator("section.returned")
        expect(returned).to_have_count(1)
        expect(returned).to_contain_text("请补充文号后重新提交")
        assert first_title not in returned.inner_text()
        with page.expect_navigation():
            returned.locator("a.button").click()
        page.click("#door details summary")
        page.fill("#withdraw-reason", "与已归档文件重复")
        with page.expect_navigation():
            page.click(".review-withdraw button")
        expect(page.locator("dl.meta")).to_contain_text("已撤回")
        expect(page).to_have_url(re.compile(r"/records/[0-9a-f-]{36}/$"))
        page.goto(f"{base}/returned/")
        expect(page.locator("main")).to_contain_text("没有退回给您的内容")
