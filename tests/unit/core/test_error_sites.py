"""Every domain error the package builds has a stable, specific code and a catalog template whose
placeholders its details fill. Read from the source (AST), so a new raise site is checked the day
it is written, whether or not a test ever reaches it."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import medarchive

PACKAGE = Path(medarchive.__file__).resolve().parent
ERRORS = PACKAGE / "core" / "errors.py"
CODE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Class defaults that say nothing about the problem: a site must name its own code.
GENERIC = {"invalid", "validation_error", "conflict", "not_found", "integrity_failure"}
LAZY = {"gettext_lazy", "pgettext_lazy", "ngettext_lazy"}

# Modules whose errors are not yet catalogued: protocol code (HL7 ERR, FHIR OperationOutcome, DICOM
# status comments may stay English), its adapters, and the inputs (API, views, CLI) owned elsewhere.
# Shrink this list as they move to codes; the test fails for an entry that has nothing left to allow.
NOT_YET: dict[str, str] = {
    "capture/dicom/extract.py": "DICOM: status comments",
    "capture/dicom/importer.py": "DICOM",
    "capture/dicom/scp.py": "DICOM",
    "config.py": "configuration: read by operators at start-up, before any language applies",
    "security/auditkeys.py": "the audit key ring: read at start-up, like config.py",
    "security/tasks.py": "the worker's audit checkpoint job: its failure goes to the job log",
}


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts and p != ERRORS)


def _error_classes() -> set[str]:
    """Names of MedarchiveError and every subclass defined anywhere in the package."""
    trees = [ast.parse(ERRORS.read_text(encoding="utf-8"))] + [ast.parse(p.read_text("utf-8")) for p in _sources()]
    known = {"MedarchiveError"}
    grew = True
    while grew:
        grew = False
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in known:
                    bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                    if bases & known:
                        known.add(node.name)
                        grew = True
    return known - {"Problems"}  # Problems takes problems, not a message


def _coded_classes() -> set[str]:
    """Error classes that set a specific `code` of their own (`class MethodNotAllowed: code = "method_not_allowed"`):
    raising them needs no `code=`."""
    coded: set[str] = set()
    for path in [ERRORS, *_sources()]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "code" for t in item.targets)
                        and isinstance(item.value, ast.Constant)
                        and item.value.value not in GENERIC
                    ):
                        coded.add(node.name)
    return coded


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _in_scope(tree: ast.Module, classes: set[str]) -> set[str]:
    """The error classes a module can call by name: imported from medarchive, or defined in it
    (a module's own `ValidationError` may be Django's)."""
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name in classes}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("medarchive"):
            names |= {alias.asname or alias.name for alias in node.names if alias.name in classes}
    return names


def _lazy_aliases(tree: ast.Module) -> set[str]:
    """Local names bound to a lazy gettext (`from django.utils.translation import gettext_lazy as _`)."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "django.utils.translation"
        for alias in node.names
        if alias.name in LAZY
    }


@dataclass
class Site:
    where: str
    problems: list[str]


def _template(arg: ast.expr, lazy: set[str]) -> tuple[str | None, set[str], str]:
    """(literal msgid or None, placeholders filled by with_labels, problem with the template or '')."""
    if isinstance(arg, ast.Call) and _name(arg.func) == "with_labels" and arg.args:
        text, _filled, problem = _template(arg.args[0], lazy)
        return text, {k.arg for k in arg.keywords if k.arg}, problem
    if isinstance(arg, ast.Call) and _name(arg.func) in lazy:
        first = arg.args[0] if arg.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value, set(), ""
        return None, set(), "the msgid is not a literal"
    if isinstance(arg, ast.Call) and _name(arg.func) in {"_", "gettext"}:
        return None, set(), "the template is translated when raised (use gettext_lazy)"
    if isinstance(arg, ast.JoinedStr | ast.BinOp) or (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        return None, set(), "the message is a plain string, not a catalog template"
    return None, set(), ""  # a name or attribute: a template chosen elsewhere (see its table's own test)


def check_call(node: ast.Call, lazy: set[str], coded: frozenset[str] = frozenset()) -> list[str]:
    """What is wrong with one construction of a domain error (empty: nothing)."""
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    problems = []
    code = keywords.get("code")
    if code is None and _name(node.func) not in coded:
        problems.append("no code=")
    elif isinstance(code, ast.Constant) and (
        not (isinstance(code.value, str) and CODE.match(code.value)) or code.value in GENERIC
    ):
        problems.append(f"code {code.value!r} is not a specific snake_case code")
    if not node.args:
        return [*problems, "no message"]
    text, filled, problem = _template(node.args[0], lazy)
    if problem:
        problems.append(problem)
    if text is not None:
        details = set(keywords) - {"code", "field"}
        if any(k.arg is None for k in node.keywords):
            details |= set(PLACEHOLDER.findall(text))  # **details: cannot tell; trust them
        missing = set(PLACEHOLDER.findall(text)) - details - filled
        if missing:
            problems.append(f"placeholders {sorted(missing)} have no detail")
    return problems


def scan() -> dict[str, list[Site]]:
    classes = _error_classes()
    coded = frozenset(_coded_classes())
    found: dict[str, list[Site]] = {}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lazy, local = _lazy_aliases(tree), _in_scope(tree, classes)
        module = str(path.relative_to(PACKAGE))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in local:
                problems = check_call(node, lazy, coded)
                if problems:
                    found.setdefault(module, []).append(Site(f"{module}:{node.lineno}", problems))
    return found


def test_the_scanner_sees_the_raise_sites() -> None:
    """Guards the scan itself: it must find the known error classes and many calls."""
    classes = _error_classes()
    assert {"ValidationError", "NotFound", "PermissionDenied", "DuplicateSubmission"} <= classes
    calls = 0
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        local = _in_scope(tree, classes)
        calls += sum(1 for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n.func) in local)
    assert calls > 250
    assert "ValidationError" not in _in_scope(ast.parse((PACKAGE / "security" / "passwords.py").read_text()), classes)


def test_every_domain_error_has_a_specific_code_and_a_filled_catalog_template() -> None:
    found = scan()
    bad = [
        f"{site.where}: {', '.join(site.problems)}"
        for module, sites in found.items()
        if module not in NOT_YET
        for site in sites
    ]
    assert not bad, "\n".join(bad)


def test_the_allow_list_only_holds_modules_that_still_need_it() -> None:
    found = scan()
    clean = sorted(module for module in NOT_YET if module not in found)
    assert not clean, f"these modules are clean now: remove them from NOT_YET: {clean}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("ValidationError(f'bad {y}', code='bad_y', field='y')", "plain string"),
        ("NotFound('gone', code='gone')", "plain string"),
        ("ValidationError(_('%(y)s is bad.'), field='y', y=1)", "no code="),
        ("ValidationError(_('%(y)s is bad.'), code='invalid', y=1)", "not a specific"),
        ("ValidationError(_('%(y)s is bad.'), code='bad_y')", "placeholders ['y'] have no detail"),
        ("ValidationError(gettext('Bad.'), code='bad')", "translated when raised"),
        ("ValidationError(with_labels(_('%(label)s is bad by %(n)s.'), label=x), code='bad')", "['n']"),
    ],
)
def test_the_check_catches_each_kind_of_mistake(source: str, expected: str) -> None:
    call = ast.parse(source).body[0].value  # type: ignore[attr-defined]
    assert any(expected in problem for problem in check_call(call, {"_"})), check_call(call, {"_"})


def test_a_good_site_passes_the_check() -> None:
    source = "ValidationError(with_labels(_('%(label)s is longer than %(limit)s.'), label=x), code='too_long', limit=3)"
    assert check_call(ast.parse(source).body[0].value, {"_"}) == []  # type: ignore[attr-defined]


def test_tables_of_templates_fill_their_placeholders() -> None:
    """Templates picked from a table (the scan cannot follow them) are checked here."""
    from medarchive.archiving import metadata
    from medarchive.core import ids

    for what, (template, code) in ids._NOT_FOUND.items():
        assert set(PLACEHOLDER.findall(str(template))) == {what} and CODE.match(code), what
        exc = ids.not_found(what, "x-1")
        assert exc.code == code and "x-1" in exc.message
    for kind, (template, code, key) in metadata._BOUNDS.items():
        assert set(PLACEHOLDER.findall(str(template))) == {"label", key} and CODE.match(code), kind
