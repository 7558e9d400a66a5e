"""Every role of the demo hospital, in Chromium, through every link its navigation offers (and the first
record and submission those pages link to): no 5xx, no untranslated English in the Chinese UI, no
serious or critical axe-core violation.

The links come from the page itself, so a page added to the navigation is walked without editing this
file. Set MEDARCHIVE_SCREENSHOTS=/some/dir to keep a screenshot of every page for a human look.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Visible text, without what is data rather than UI: codes, file names, JSON, user input (translate="no").
_VISIBLE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest('[translate="no"], script, style, code, pre, .mono, select, textarea, datalist')) continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    out.push(node.textContent);
  }
  document.querySelectorAll('input[placeholder], [aria-label], [title]').forEach(el => {
    if (el.closest('[translate="no"]')) return;
    ['placeholder', 'aria-label', 'title'].forEach(a => el.getAttribute(a) && out.push(el.getAttribute(a)));
  });
  return out.join('\\n');
}"""
# Two English words in a row is a sentence fragment a translator missed ("Log out", "may not").
_ENGLISH_PHRASE = re.compile(r"\b[A-Za-z][a-z]+(?:[ -][a-z]{2,})+\b")
_ALLOWED = {"medarchive"}
_IMPACTS = {"serious", "critical"}
# The innermost elements that stick out on the right: what to fix when a page is too wide.
_TOO_WIDE = """() => Array.from(document.querySelectorAll('main *')).filter(el => {
  const right = el.getBoundingClientRect().right;
  return right > window.innerWidth + 1 && !Array.from(el.children).some(c => c.getBoundingClientRect().right >= right);
}).slice(0, 4).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + el.className + ': '
  + (el.textContent || '').trim().slice(0, 40))"""
_WORD = re.compile(r"[A-Za-z]{3}")  # a phrase, not a separator such as ", " (data has those)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _english_msgids() -> set[str]:
    """English UI strings the zh_Hans catalog translates: seeing one verbatim means it was not translated."""
    import polib

    import medarchive

    po = Path(medarchive.__file__).parent / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    return {
        e.msgid
        for e in polib.pofile(str(po))
        if e.translated() and " " in e.msgid and "%" not in e.msgid and e.msgstr != e.msgid and _WORD.search(e.msgid)
    }


def _check_page(
    page: Any, axe: Any, url: str, label: str, msgids: set[str], shots: Path | None, *, navigate: bool = True
) -> list[str]:
    problems = []
    response = page.goto(url) if navigate else None
    status = (response.status if response else 0) if navigate else 200
    if status >= 500 or status == 0:
        return [f"{label} {url}: HTTP {status}"]
    if status >= 400:
        problems.append(f"{label} {url}: HTTP {status} from a link the role was offered")
    if page.get_attribute("html", "lang") != "zh-CN":
        problems.append(f"{label} {url}: <html lang> is {page.get_attribute('html', 'lang')!r}")
    text = page.evaluate(_VISIBLE_TEXT)
    english = sorted({m.group(0) for m in _ENGLISH_PHRASE.finditer(text)} - _ALLOWED)
    if english:
        problems.append(f"{label} {url}: untranslated text {english[:8]}")
    verbatim = sorted(m for m in msgids if m in text)
    if verbatim:
        problems.append(f"{label} {url}: catalog strings shown untranslated {verbatim[:5]}")
    for violation in axe.run(page).response["violations"]:
        if violation.get("impact") in _IMPACTS:
            targets = [n.get("target") for n in violation.get("nodes", [])[:3]]
            problems.append(f"{label} {url}: axe {violation['impact']} {violation['id']}: {targets}")
    if shots is not None:
        name = re.sub(r"[^A-Za-z0-9]+", "_", urlparse(url).path).strip("_") or "dashboard"
        page.screenshot(path=str(shots / f"{label}-{name}.png"), full_page=True)
    return problems


def _nav_links(page: Any, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("header nav a, header a.who", "links => links.map(a => a.getAttribute('href'))")
    return [base + h for h in hrefs if h and h.startswith("/")]


def _sub_page_links(page: Any, base: str, url: str) -> list[str]:
    """Pages below a navigation page that it links to (a department's duties, the rules, an account's
    edit form), one of each kind: reached by a click, so walked too."""
    prefix = urlparse(url).path
    hrefs = page.eval_on_selector_all("main a", "links => links.map(a => a.getAttribute('href'))")
    found: dict[str, str] = {}
    for href in hrefs:
        path = urlparse(href or "").path
        is_file = "." in path.rsplit("/", 1)[-1]  # an export (export.csv): a download, not a page
        if path.startswith(prefix) and path != prefix and not is_file and not _UUID.search(path):
            found.setdefault(re.sub(r"/[^/]+/", "/X/", path[len(prefix) :]), base + path)
    return list(found.values())[:4]


def _first_detail_links(page: Any, base: str) -> list[str]:
    """One record and one submission page linked from the lists: the pages people open next."""
    hrefs = page.eval_on_selector_all("main a", "links => links.map(a => a.getAttribute('href'))")
    found: dict[str, str] = {}
    for href in hrefs:
        if href and _UUID.search(href) and "/files/" not in href:
            found.setdefault(_UUID.sub("ID", href), base + href)
    return list(found.values())[:2]


def test_every_role_walks_every_navigation_link_in_chinese(
    fresh_cli: Callable[[], Any], browser: Any, serving: Any, log_in: Any, tmp_path: Path
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    cli = fresh_cli()
    cli.run("demo", "--records", "24", "--no-serve")
    credentials = json.loads((cli.data_dir / "demo-credentials.json").read_text(encoding="utf-8"))
    assert len(credentials) == 9
    shots = Path(os.environ["MEDARCHIVE_SCREENSHOTS"]) if os.environ.get("MEDARCHIVE_SCREENSHOTS") else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    axe, msgids = Axe(), _english_msgids()
    problems: list[str] = []
    walked = 0
    with serving(cli) as base:
        for account in credentials:
            context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.goto(f"{base}/login/")
            log_in(page, account["password"], username=account["username"])
            label = account["username"]
            links = _nav_links(page, base)
            assert links, f"{label} has no navigation"
            seen: set[str] = set()
            for url in links:
                problems += _check_page(page, axe, url, label, msgids, shots)
                seen.add(url)
                for detail in _first_detail_links(page, base) + _sub_page_links(page, base, url):
                    if detail not in seen:
                        seen.add(detail)
                        problems += _check_page(page, axe, detail, label, msgids, shots)
            # At phone width every page still fits: no sideways scrolling (tables become cards).
            page.set_viewport_size({"width": 390, "height": 844})
            for url in links:
                page.goto(url)
                overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
                if overflow > 1:
                    culprits = page.evaluate(_TOO_WIDE)
                    problems.append(f"{label} {url}: {overflow}px wider than a 390px phone screen: {culprits}")
                if shots is not None and url.endswith("/records/"):
                    page.screenshot(path=str(shots / f"{label}-phone-records.png"), full_page=True)
            if account["role"] == "auditor":  # the chain verification and its result
                page.goto(f"{base}/audit/")
                page.click("form[action$='/audit/verify/'] button")
                expect(page.locator("main")).to_contain_text("审计链完整")
                problems += _check_page(page, axe, page.url, label, msgids, None, navigate=False)
            walked += len(seen)
            problems += [f"{label}: JavaScript error {e}" for e in errors]
            context.close()
    assert walked >= 40, walked  # the walk really went somewhere
    assert not problems, "\n".join(problems)
