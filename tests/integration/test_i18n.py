"""The translation catalogs: compiled and in step with their sources, complete for the UI, and switchable.

The UI's msgids are English and the default language is Simplified Chinese, so every English msgid needs a
zh_Hans translation; the models' verbose names are Chinese msgids, translated in the `en` catalog.
After changing a translatable string (no location comments: they churn on every edit and make merges conflict):
`cd src/medarchive && django-admin makemessages -l zh_Hans -l en --no-location --no-wrap --no-obsolete`,
translate, then `django-admin compilemessages` and commit the .po and the .mo files.
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise

import medarchive

PACKAGE = Path(medarchive.__file__).resolve().parent
LOCALE = PACKAGE / "locale"
LANGS = ("zh_Hans", "en")
TEMPLATES = sorted(PACKAGE.glob("**/templates/**/*.html"))
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|\{\d*\}|\{\{\s*\w+\s*\}\}")


# --- a small .po reader (no third-party dependency) -------------------------------------------------


@dataclass
class Entry:
    msgid: str
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.msgctxt}\x04{self.msgid}" if self.msgctxt is not None else self.msgid

    @property
    def translated(self) -> bool:
        return "fuzzy" not in self.flags and bool(self.msgstr) and all(self.msgstr)


def _unquote(text: str) -> str:
    value = ast.literal_eval(text)
    assert isinstance(value, str), text
    return value


def read_po(path: Path) -> dict[str, Entry]:
    """Entries by key (context + msgid), without the header and without obsolete `#~` entries."""
    entries: dict[str, Entry] = {}
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        flags: set[str] = set()
        fields: dict[str, list[str]] = {}
        current: str | None = None
        for raw in block.splitlines():
            line = raw.strip()
            if line.startswith("#,"):
                flags |= {f.strip() for f in line[2:].split(",")}
            elif line.startswith("#") or not line:
                continue
            elif line.startswith('"'):
                assert current is not None, f"{path}: continuation line without a keyword: {line}"
                fields[current].append(_unquote(line))
            else:
                keyword, _, rest = line.partition(" ")
                current = keyword
                fields[current] = [_unquote(rest)]
        if "msgid" not in fields:
            continue
        msgid = "".join(fields["msgid"])
        if msgid == "":
            continue  # header
        plural = "".join(fields["msgid_plural"]) if "msgid_plural" in fields else None
        if plural is None:
            msgstr = ["".join(fields.get("msgstr", []))]
        else:
            msgstr = ["".join(v) for k, v in sorted(fields.items()) if k.startswith("msgstr[")]
        ctx = "".join(fields["msgctxt"]) if "msgctxt" in fields else None
        entry = Entry(msgid=msgid, msgid_plural=plural, msgctxt=ctx, msgstr=msgstr, flags=flags)
        assert entry.key not in entries, f"{path}: duplicate msgid {msgid!r}"
        entries[entry.key] = entry
    return entries


def read_header(path: Path) -> dict[str, str]:
    match = re.search(r'^msgid ""\nmsgstr ""\n((?:".*"\n)+)', path.read_text(encoding="utf-8"), re.M)
    assert match, f"{path}: no header"
    text = "".join(_unquote(line) for line in match.group(1).splitlines())
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "django.po"


def mo_catalog(lang: str) -> dict[Any, str]:
    with (LOCALE / lang / "LC_MESSAGES" / "django.mo").open("rb") as handle:
        return dict(gettext.GNUTranslations(handle)._catalog)  # type: ignore[attr-defined]


def _placeholders(text: str) -> set[str]:
    return {m.group(0).replace(" ", "") for m in PLACEHOLDER.finditer(text)}


# --- (a) the catalogs compile, and the committed .mo matches its .po ---------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_po_and_mo_are_committed(lang: str) -> None:
    assert po_path(lang).is_file(), f"missing {po_path(lang)}"
    assert (LOCALE / lang / "LC_MESSAGES" / "django.mo").is_file(), f"{lang}: run `django-admin compilemessages`"


@pytest.mark.parametrize("lang", LANGS)
def test_mo_is_consistent_with_po(lang: str) -> None:
    """The compiled catalog says exactly what the .po says (mtimes mean nothing in a git clone)."""
    expected: dict[Any, str] = {}
    for entry in read_po(po_path(lang)).values():
        if not entry.translated:
            continue  # msgfmt leaves out untranslated and fuzzy entries: gettext falls back to the msgid
        if entry.msgid_plural is None:
            expected[entry.key] = entry.msgstr[0]
        else:
            expected.update({(entry.key, i): s for i, s in enumerate(entry.msgstr)})
    compiled = {k: v for k, v in mo_catalog(lang).items() if k != ""}
    stale = {
        k: (expected.get(k), compiled.get(k))
        for k in expected.keys() | compiled.keys()
        if expected.get(k) != compiled.get(k)
    }
    assert not stale, (
        f"{lang}: django.mo is out of date with django.po (run `django-admin compilemessages` "
        f"in src/medarchive): {stale}"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_po_passes_msgfmt_check(lang: str, tmp_path: Path) -> None:
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.skip("msgfmt (gettext) is not installed: the .po/.mo consistency test still ran")
    result = subprocess.run(
        [msgfmt, "--check", "-o", str(tmp_path / "django.mo"), str(po_path(lang))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_their_placeholders(lang: str) -> None:
    for entry in read_po(po_path(lang)).values():
        for msgstr in entry.msgstr:
            if not msgstr:
                continue
            source = entry.msgid if entry.msgid_plural is None else entry.msgid_plural
            assert _placeholders(msgstr) == _placeholders(source), (lang, entry.msgid, msgstr)


def test_plural_forms_headers() -> None:
    assert read_header(po_path("zh_Hans"))["Plural-Forms"].replace(" ", "") == "nplurals=1;plural=0;"
    assert read_header(po_path("en"))["Plural-Forms"].replace(" ", "") == "nplurals=2;plural=(n!=1);"
    for lang in LANGS:
        assert read_header(po_path(lang))["Content-Type"] == "text/plain; charset=UTF-8"


# --- (c) every UI string is translated --------------------------------------------------------------

_TRANS = re.compile(
    r"""\{%\s*(?:trans|translate)\s+(?P<q>["'])(?P<msgid>.*?)(?P=q)"""
    r"""(?:\s+context\s+(?P<cq>["'])(?P<ctx>.*?)(?P=cq))?[^%]*%\}""",
    re.S,
)
_BLOCKTRANS = re.compile(
    r"\{%\s*(?:blocktrans|blocktranslate)\b(?P<opts>[^%]*)%\}(?P<body>.*?)"
    r"\{%\s*(?:endblocktrans|endblocktranslate)\s*%\}",
    re.S,
)
_CONTEXT_OPT = re.compile(r"""\bcontext\s+(["'])(.*?)\1""")


def _blocktrans_msgid(text: str, *, trimmed: bool) -> str:
    """The msgid Django derives from a blocktrans body: `{{ x }}` becomes `%(x)s`, a bare % is doubled."""
    if trimmed:
        text = " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    out = re.split(r"(\{\{\s*\w+\s*\}\})", text)
    return "".join(
        f"%({re.sub(r'[{} ]', '', part)})s" if part.startswith("{{") else part.replace("%", "%%") for part in out
    )


def template_msgids() -> dict[str, tuple[str | None, str, str | None]]:
    """msgid -> (context, where, plural msgid) for every literal string in the templates."""
    found: dict[str, tuple[str | None, str, str | None]] = {}
    for path in TEMPLATES:
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(PACKAGE))
        for m in _TRANS.finditer(text):
            found[m.group("msgid")] = (m.group("ctx"), where, None)
        for m in _BLOCKTRANS.finditer(text):
            opts = m.group("opts")
            ctx = _CONTEXT_OPT.search(opts)
            singular, _, plural = m.group("body").partition("{% plural %}")
            trimmed = "trimmed" in opts.split()
            msgid = _blocktrans_msgid(singular, trimmed=trimmed)
            found[msgid] = (
                ctx.group(2) if ctx else None,
                where,
                _blocktrans_msgid(plural, trimmed=trimmed) if plural else None,
            )
    return found


def _is_english(msgid: str) -> bool:
    """English text has words with lowercase letters ("To", "Archive and assign 档号"); "MIME媒体类型" or
    "档号" is Chinese."""
    return bool(re.search(r"[A-Za-z][a-z]+", re.sub(r"%\(\w+\)[sdif]", "", msgid)))


def _is_chinese(msgid: str) -> bool:
    return not _is_english(msgid) and bool(CJK.search(msgid))


def test_the_template_scanner_finds_the_strings() -> None:
    """Guards the regexes: if they stop matching, the completeness test below would pass vacuously."""
    found = template_msgids()
    assert len(TEMPLATES) >= 5 and len(found) >= 40
    assert "User name" in found and "Log in" in found
    assert found["%(counter)s record"][2] == "%(counter)s records"
    assert "Page %(n)s of %(total)s" in found


def test_every_template_string_has_a_chinese_translation() -> None:
    entries = read_po(po_path("zh_Hans"))
    missing = []
    for msgid, (ctx, where, plural) in sorted(template_msgids().items()):
        entry = entries.get(f"{ctx}\x04{msgid}" if ctx else msgid)
        if entry is None or (plural is not None and entry.msgid_plural != plural):
            missing.append(f"{where}: {msgid!r} is not in the zh_Hans catalog")
        elif _is_english(msgid) and not entry.translated:
            missing.append(f"{where}: {msgid!r} has no zh_Hans translation")
    assert not missing, "\n".join(missing)


def _python_msgids() -> dict[str, str]:
    """Literal msgids of gettext calls in the package's Python code (what makemessages extracts)."""
    names = {"_", "gettext", "gettext_lazy", "gettext_noop", "pgettext", "pgettext_lazy", "ngettext", "ngettext_lazy"}
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            index = 1 if name in {"pgettext", "pgettext_lazy"} else 0
            if (
                name in names
                and len(node.args) > index
                and isinstance(node.args[index], ast.Constant)
                and isinstance(node.args[index].value, str)
            ):
                found[node.args[index].value] = f"{path.relative_to(PACKAGE)}:{node.lineno}"
    return found


def test_every_python_msgid_is_translated_where_it_needs_to_be() -> None:
    """English msgids need Chinese; Chinese ones (verbose names, choices) need English."""
    zh, en = read_po(po_path("zh_Hans")), read_po(po_path("en"))
    msgids = _python_msgids()
    assert "Wrong user name or password." in msgids and "题名" in msgids  # the scanner works
    missing = []
    for msgid, where in sorted(msgids.items()):
        if _is_english(msgid) and not (msgid in zh and zh[msgid].translated):
            missing.append(f"{where}: {msgid!r} has no zh_Hans translation")
        if _is_chinese(msgid) and not (msgid in en and en[msgid].translated):
            missing.append(f"{where}: {msgid!r} has no en translation")
    assert not missing, "\n".join(missing)


def test_lifecycle_button_labels_are_translated() -> None:
    """record_detail.html renders these with {% trans label %}: makemessages cannot see them."""
    from medarchive.access.views import _STEPS

    with translation.override("zh-hans"):
        for _step, _action, label, _state in _STEPS:
            assert not re.search(r"[A-Za-z]", translation.gettext(label)), label
    with translation.override("en"):
        for _step, _action, label, _state in _STEPS:
            assert not CJK.search(translation.gettext(label)), label


def test_english_ui_has_no_chinese_field_labels() -> None:
    """At run time, through the compiled catalog: every label marked for translation comes out English."""
    checked = 0
    with translation.override("en"):
        for model in apps.get_models():
            if not model.__module__.startswith("medarchive."):
                continue
            labels = [("verbose_name", model._meta.verbose_name)]
            for f in model._meta.get_fields():
                labels.append((f.name, getattr(f, "verbose_name", "")))
                labels += [(f.name, choice) for _value, choice in getattr(f, "choices", None) or ()]
            for where, label in labels:
                if isinstance(label, Promise):  # marked with gettext_lazy
                    checked += 1
                    assert not CJK.search(str(label)), f"{model.__name__}.{where}: {label}"
        from medarchive.security.passwords import CharacterClassValidator

        assert not CJK.search(CharacterClassValidator().get_help_text())
    assert checked >= 40
    with translation.override("zh-hans"):
        from medarchive.archiving.models import RecordState

        assert str(RecordState.ARCHIVED.label) == "已归档"


# --- (b) the login page in either language ----------------------------------------------------------


@pytest.mark.django_db
def test_login_page_is_chinese_by_default(client: Client) -> None:
    html = client.get("/login/").content.decode()
    assert '<html lang="zh-CN">' in html
    assert "用户名" in html and "密码" in html and "登录" in html
    assert "User name" not in html


@pytest.mark.django_db
def test_login_page_is_english_with_the_language_cookie(client: Client, settings: Any) -> None:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get("/login/").content.decode()
    assert '<html lang="en">' in html
    assert "User name" in html and "Log in" in html
    assert "用户名" not in html


@pytest.mark.django_db
def test_set_language_switches_to_english_and_back(client: Client) -> None:
    response = client.post(reverse("set_language"), {"language": "en", "next": "/login/"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    html = client.get("/login/").content.decode()
    assert '<html lang="en">' in html and "User name" in html
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/login/"})
    html = client.get("/login/").content.decode()
    assert '<html lang="zh-CN">' in html and "用户名" in html


@pytest.mark.django_db
def test_wrong_password_message_is_translated(client: Client, users: dict[str, Any]) -> None:
    response = client.post("/login/", {"username": "officer", "password": "wrong-password-1"})
    assert response.status_code == 401 and "用户名或密码错误" in response.content.decode()


@pytest.mark.django_db
def test_the_browser_language_header_does_not_override_the_configured_language(client: Client) -> None:
    response = client.get("/login/", headers={"accept-language": "en-US,en;q=0.9"})
    html = response.content.decode()
    assert '<html lang="zh-CN">' in html and "用户名" in html
    assert response["Content-Language"] == "zh-hans"
    assert "Cookie" in response["Vary"]


@pytest.mark.django_db
def test_an_unknown_language_cookie_falls_back_to_the_configured_language(client: Client, settings: Any) -> None:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "xx-klingon"
    assert '<html lang="zh-CN">' in client.get("/login/").content.decode()
