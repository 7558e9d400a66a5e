"""Every web page × every role: no 5xx anywhere, the navigation offers exactly what a role may open,
and a refusal or a missing page is the styled page in the user's language.

The pages come from the URL resolver, so a page added later is walked here without editing this
file — unless it takes an argument nobody knows how to fill, and then this test says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from medarchive.web.navigation import ENTRIES, entries_for

pytestmark = pytest.mark.django_db

ROLES = ["sysadmin", "secadmin", "auditor", "archivist", "officer", "clinician", "researcher", "viewer", "interface"]
NOT_PAGES = {"logout", "set_language", "login"}  # POST-only redirects, or the page everyone reaches anonymously


def _patterns(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for item in (resolver or get_resolver()).url_patterns:
        route = prefix + str(item.pattern)
        if isinstance(item, URLResolver):
            if route.startswith(("api/", "fhir/")):
                continue  # machine interfaces: their own contract tests
            yield from _patterns(item, route)
        elif item.name:
            yield route, item


@pytest.fixture
def site(users: dict[str, Any], make_record: Callable[..., Any]) -> dict[str, Any]:
    """One of everything a page can be about: a record, a submission, a token, a rule, an account."""
    from medarchive.capture.duties.models import DutyRule
    from medarchive.capture.intake import Item, receive
    from medarchive.capture.models import Channel
    from medarchive.capture.services import Description, IncomingFile
    from medarchive.security.services import add_user, create_token

    users["interface"] = add_user("his", actor=None, role="interface", password="Correct-Horse-42")
    record = make_record()
    outcome = receive(
        [
            Item(
                Description(class_code="WS", department_code="BGS", title="关于测试的通知", date="2025-03-01"),
                [IncomingFile(name="a.pdf", stream=__import__("io").BytesIO(b"%PDF-1.7\n" + b"x" * 300))],
            )
        ],
        actor=users["officer"],
        channel=Channel.WEB,
    )
    token, _raw = create_token(users["interface"], actor=None, name="HIS")
    rule = DutyRule.objects.first()
    from medarchive.core.aliases import add_alias

    alias = add_alias("hl7-facility", "ZYY", "BGS", actor=users["archivist"])
    return {
        "alias": alias,
        "record": record,
        "submission": outcome.submission,
        "token": token,
        "rule": rule,
        "account": users["viewer"],
    }


def _kwargs(name: str, route: str, site: dict[str, Any]) -> dict[str, Any]:
    """Arguments for a URL pattern; a new converter or argument name must be taught here."""
    samples: dict[str, Any] = {
        "record_id": site["record"].pk,
        "submission_id": site["submission"].pk,
        "sequence": 1,
        "step": "archive" if name == "record-transition" else "accept",
        "user_id": site["account"].pk,
        "token_id": site["token"].pk,
        "code": "BGS",
        "rule_id": site["rule"].pk if site["rule"] else 1,
        "op": "disable",
        "alias_id": site["alias"].pk,
    }
    wanted = re.findall(r"<(?:\w+:)?(\w+)>", route)
    unknown = [w for w in wanted if w not in samples]
    assert not unknown, f"{name} ({route}) takes {unknown}: add a sample value to _kwargs so every role walks it"
    return {w: samples[w] for w in wanted}


def _pages(site: dict[str, Any]) -> list[tuple[str, str]]:
    pages = []
    for route, pattern in _patterns():
        if pattern.name in NOT_PAGES:
            continue
        pages.append((pattern.name, reverse(pattern.name, kwargs=_kwargs(pattern.name, route, site))))
    assert len(pages) >= 25, pages
    return pages


def _client(user: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _nav_links(html: str) -> list[str]:
    nav = re.search(r'<nav aria-label="[^"]*">(.*?)</nav>', html, re.S)
    assert nav, "the page has no main navigation"
    return re.findall(r'href="([^"]+)"', nav.group(1))


@pytest.mark.parametrize("role", ROLES)
def test_every_page_for_every_role_answers_without_a_server_error(role: str, site: dict[str, Any]) -> None:
    client = _client(site["record"] and _user(role, site))
    failures = []
    for name, url in _pages(site):
        response = client.get(url)
        if response.streaming:  # a download: read it to the end, as a browser would, so its file closes
            b"".join(response.streaming_content)  # type: ignore[arg-type]
        status = response.status_code
        if status >= 500:
            failures.append(f"{name} {url}: {status}")
            continue
        if status in (403, 404, 405):
            body = response.content.decode()
            if 'class="card error-page"' not in body or "<nav" not in body:
                failures.append(f"{name} {url}: {status} is not the styled error page")
    assert not failures, "\n".join(failures)


def _user(role: str, site: dict[str, Any]) -> Any:
    from medarchive.security.models import User

    return User.objects.get(username="his" if role == "interface" else role)


@pytest.mark.parametrize("role", ROLES)
def test_the_navigation_offers_exactly_the_pages_a_role_may_open(role: str, site: dict[str, Any]) -> None:
    user = _user(role, site)
    client = _client(user)
    html = client.get("/").content.decode()
    offered = [link for link in _nav_links(html) if not link.startswith("/duties/notifications")]
    expected = [entry.url for entry in entries_for(user)]
    assert offered == expected
    for url in offered:
        response = client.get(url)
        assert response.status_code == 200, f"{role}: the navigation offers {url}, which answers {response.status_code}"
    for entry in ENTRIES:
        if entry.url not in offered and entry.url != "/":
            assert client.get(entry.url).status_code in (403, 404), f"{role} may open {entry.url} but is not offered it"


def test_each_administrator_sees_only_their_part() -> None:
    """三员分立: the system, security and audit pages never mix in one role's navigation."""
    from medarchive.security.models import User
    from medarchive.security.roles import Role

    groups = {}
    for role in (Role.SYSADMIN, Role.SECADMIN, Role.AUDITOR):
        user = User(username=role.value, role=role.value, is_active=True)
        groups[role] = {e.group for e in entries_for(user)} - {"work"}
    assert groups[Role.SYSADMIN] == {"system"}
    assert groups[Role.SECADMIN] == {"system", "security"}  # API tokens: security may kill a leaked one
    assert groups[Role.AUDITOR] == {"audit"}
    auditor = User(username="a", role=Role.AUDITOR.value, is_active=True)
    assert [e.url_name for e in entries_for(auditor)] == ["dashboard", "audit-trail"]


def test_anonymous_visitors_are_sent_to_the_login_page(site: dict[str, Any]) -> None:
    client = Client(raise_request_exception=False)
    for name, url in _pages(site):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), (name, url)


# --- error pages × languages --------------------------------------------------------------------------

ERRORS = {
    403: ("/system/storage/", "archivist", {"zh-hans": "无权", "en": "Not allowed"}),
    404: ("/no-such-page/", "archivist", {"zh-hans": "页面不存在", "en": "Page not found"}),
    405: ("/review/accept/", "archivist", {"zh-hans": "此处不能这样操作", "en": "Not possible here"}),
}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("status", sorted(ERRORS))
def test_error_pages_are_styled_and_in_the_users_language(
    status: int, language: str, users: dict[str, Any], settings: Any
) -> None:
    url, who, titles = ERRORS[status]
    client = _client(users[who])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == status
    assert f'<html lang="{"zh-CN" if language == "zh-hans" else "en"}">' in html
    assert titles[language] in html
    assert "<nav" in html and 'href="/"' in html  # the layout, with a way back
    if language == "zh-hans":
        assert not re.search(r"\b(may not|Not allowed|Page not found)\b", html)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_an_unexpected_error_is_the_styled_500_page(
    language: str, users: dict[str, Any], settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from medarchive.access import views

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(views.queries, "list_records", broken)
    client = _client(users["archivist"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get("/records/")
    html = response.content.decode()
    assert response.status_code == 500
    assert ("出错了" if language == "zh-hans" else "Something went wrong") in html
    assert "a bug" not in html and "Traceback" not in html
    # The page names a reference; the log has it beside the traceback.
    reference = re.search(r'class="mono">([0-9a-f]{8})<', html)
    assert reference is not None, html
    logged = [r for r in caplog.records if reference.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info is not None and "a bug" in str(logged[0].exc_info[1])


def test_a_refusal_that_escapes_a_view_is_audited_and_styled(users: dict[str, Any]) -> None:
    from medarchive.security.models import AuditEntry

    client = _client(users["auditor"])
    response = client.get("/records/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "auditor (auditor) may not" not in html  # no developer string
    denied = AuditEntry.objects.filter(action="record:list", result="denied", actor_name="auditor")
    assert denied.exists()


def test_the_record_list_tells_identical_titles_apart_for_those_allowed(
    users: dict[str, Any], make_record: Callable[..., Any]
) -> None:
    """Two 出院记录 of one department: the archive and the department see whose and which visit;
    a reader without the patient right sees that they differ only by masked values."""
    for name, visit in (("张某某", "ZY0001"), ("李某某", "ZY0002")):
        make_record(
            class_code="BA-ZY",
            title="出院记录",
            retention="MR30",
            metadata={"patient_name": name, "visit_number": visit, "discharge_date": "2025-02-27"},
        )
    archivist = _client(users["archivist"]).get("/records/").content.decode()
    assert "张某某" in archivist and "ZY0002" in archivist and "出院日期" in archivist
    officer = _client(users["officer"]).get("/records/").content.decode()  # BGS: their own department
    assert "李某某" in officer
    viewer = _client(users["viewer"]).get("/records/").content.decode()
    assert "出院记录" in viewer and "张某某" not in viewer and "ZY0001" not in viewer
    assert "***" in viewer and "2025-02-27" in viewer  # masked identifiers; the date still tells them apart


def test_the_upload_form_without_javascript_lists_every_problem_beside_its_field(users: dict[str, Any]) -> None:
    from medarchive.archiving.models import Record

    client = _client(users["officer"])
    response = client.post(
        "/records/new/",
        {"title": "", "class_code": "XX", "department": "BGS", "date": "2025-02-30", "metadata": "[1, 2]"},
    )
    html = response.content.decode()
    assert response.status_code == 422
    for field in ("title", "class_code", "date", "metadata"):
        assert f'id="{field}-errors"' in html, field
        assert f'aria-describedby="{field}-errors"' in html, field
    assert 'id="error-summary"' in html and "请修改以下" in html
    assert not Record.objects.exists()
