"""A person's path through the web UI in a real browser: Debian's Chromium driven by playwright.

The server is the real `medarchive serve` in a subprocess on a free loopback port with its own data
directory; the browser talks to it over HTTP like anyone else. Nothing here uses the test database.
Never `playwright install`: the browser is the system's /usr/bin/chromium.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "Correct-Horse-42"
TITLE = "关于印发病案管理制度的通知"
FILENAME = "病案管理制度（2025年修订）.pdf"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def _archive_with_officer(fresh_cli: Callable[[], Any]) -> Any:
    cli = fresh_cli()
    cli.run("init")
    cli.run("department", "add", "BGS", "院办公室")
    cli.run(
        "user", "add", "officer", "--role", "officer", "--department", "BGS", "--password-stdin", input=PASSWORD + "\n"
    )
    return cli


# --- the tests --------------------------------------------------------------------------------------


def test_officer_logs_in_uploads_a_record_and_downloads_it(
    fresh_cli: Callable[[], Any], page: Any, serving: Any, log_in: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    cli = _archive_with_officer(fresh_cli)
    with serving(cli) as base:
        # Anonymous: the dashboard sends you to the login page, in Chinese by default.
        page.goto(f"{base}/")
        expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
        assert page.get_attribute("html", "lang") == "zh-CN"
        expect(page.locator("label[for=username]")).to_have_text("用户名")

        log_in(page, PASSWORD)
        expect(page).to_have_url(f"{base}/")
        expect(page.locator("h1")).to_have_text("工作台")
        expect(page.locator(".topbar .who")).to_contain_text("officer")
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

        # The upload form: the browser-side check stops an empty title before anything is sent.
        page.click("a.button.primary")  # 上传档案
        expect(page).to_have_url(f"{base}/records/new/")
        error = page.locator("#client-error")
        expect(error).to_be_hidden()
        page.click("#upload-form button[type=submit]")
        expect(error).to_be_visible()
        expect(error).to_contain_text(re.compile(r"请填写\s*[:：]\s*题名"))
        expect(error).to_contain_text("请至少选择一个文件。")
        expect(page).to_have_url(f"{base}/records/new/")  # not submitted

        page.fill("#title", TITLE)
        page.select_option("#class_code", "WS")
        expect(page.locator("#department")).to_have_value("BGS")  # the officer's own department
        page.fill("#date", "2025-03-01")
        page.set_input_files("#files", files=[{"name": FILENAME, "mimeType": "application/pdf", "buffer": PDF}])
        with page.expect_navigation():
            page.click("#upload-form button[type=submit]")

        # The record page: what was described, the file with its identified format.
        expect(page).to_have_url(re.compile(r"/records/[0-9a-f-]{36}/\?created=1$"))
        expect(page.locator("h1")).to_have_text(TITLE)
        expect(page.locator(".flash.success")).to_have_text("档案已收集。")
        row = page.locator("table tbody tr", has_text=FILENAME)
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(2)).to_contain_text("PDF")
        expect(page.locator("dl.meta")).to_contain_text("院办公室")
        expect(page.locator("dl.meta")).to_contain_text("2025-03-01")
        page.screenshot(path=str(tmp_path / "record.png"), full_page=True)

        # The file link downloads exactly the uploaded bytes, under its Chinese name.
        with page.expect_download() as info:
            row.get_by_role("link", name=FILENAME).click()
        download = info.value
        assert download.suggested_filename == FILENAME
        assert Path(download.path()).read_bytes() == PDF

        # The dashboard now counts and lists it.
        page.goto(f"{base}/")
        expect(page.locator("section.card ul.plain")).to_contain_text(TITLE)
        page.screenshot(path=str(tmp_path / "dashboard-after.png"), full_page=True)


def test_wrong_password_is_refused_and_repeated_failures_lock_the_account(
    fresh_cli: Callable[[], Any], page: Any, serving: Any, log_in: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    attempts = 3
    cli = _archive_with_officer(fresh_cli)
    cli.env["MEDARCHIVE_LOCKOUT_ATTEMPTS"] = str(attempts)
    with serving(cli) as base:
        page.goto(f"{base}/login/")
        alert = page.locator("p.flash.error[role=alert]")
        for _ in range(attempts - 1):
            log_in(page, "Wrong-Horse-41")
            expect(alert).to_have_text("用户名或密码错误。")
            expect(page).to_have_url(f"{base}/login/")
        log_in(page, "Wrong-Horse-41")  # the Nth failure locks the account
        expect(alert).to_contain_text("该账户已被锁定")

        # Locked: even the right password is refused, and nothing past the login page opens.
        log_in(page, PASSWORD)
        expect(alert).to_contain_text("该账户已被锁定")
        page.screenshot(path=str(tmp_path / "locked.png"), full_page=True)
        page.goto(f"{base}/records/new/")
        expect(page).to_have_url(re.compile(r"/login/\?next=/records/new/$"))

        # The language switch in the page header turns the same page English.
        with page.expect_navigation():
            page.select_option("#lang", "en")
        assert page.get_attribute("html", "lang") == "en"
        expect(page.locator("label[for=username]")).to_have_text("User name")
        log_in(page, PASSWORD)
        expect(alert).to_contain_text("this account is locked")


def test_pages_are_styled(fresh_cli: Callable[[], Any], page: Any, serving: Any, log_in: Any) -> None:
    from playwright.sync_api import expect

    cli = _archive_with_officer(fresh_cli)
    with serving(cli) as base:
        assert page.request.get(f"{base}/static/medarchive/app.css").status == 200
        page.goto(f"{base}/login/")
        expect(page.locator("header.topbar")).to_have_css("background-color", "rgb(11, 95, 138)")
