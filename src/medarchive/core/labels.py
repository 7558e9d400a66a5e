"""Names people read in error messages: field labels, and a way to put a lazy label into a template.

An error's details must stay plain JSON values (they are stored in submission reports and
sent to API clients), yet a label such as 题名 / Title must be read in the language active
when the message is shown, not when the error was raised. `with_labels` fills some
placeholders of a catalog template lazily and leaves the others for the error's details:

    ValidationError(with_labels(gettext_lazy("%(label)s is required."), label=FIELD_LABELS["title"]),
                    code="required", field="title")
"""

from __future__ import annotations

import re
from typing import Any, cast

from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")

# The description (著录) of a record, by input field: the models' verbose names (one msgid each).
FIELD_LABELS: dict[str, Promise] = {
    "class_code": _("门类"),
    "department": _("部门"),
    "title": _("题名"),
    "responsible": _("责任者"),
    "date": _("日期"),
    "year": _("年度"),
    "doc_number": _("文号"),
    "security_level": _("密级"),
    "retention": _("保管期限"),
    "open_status": _("开放标识"),
    "organization": _("机构或问题"),
    "metadata": _("扩展元数据"),
    "files": _("电子文件"),
    "idempotency_key": _("Idempotency key"),
    "fonds": _("全宗号"),
    "item": _("件号"),
}


def label(field: str) -> Promise | str:
    """The label of an input field; the name itself for a field without one (e.g. a metadata key)."""
    return FIELD_LABELS.get(field, field)


def with_labels(template: str | Promise, **labels: Any) -> Promise:
    """`template` with these placeholders filled when the message is read; the others are kept
    for the error's details (a `%` in a label is then doubled so the second fill keeps it)."""

    def render() -> str:
        text = str(template)
        rest = set(_PLACEHOLDER.findall(text)) - labels.keys()

        def fill(match: re.Match[str]) -> str:
            if match.group(1) not in labels:
                return match.group(0)
            shown = str(labels[match.group(1)])
            return shown.replace("%", "%%") if rest else shown

        return _PLACEHOLDER.sub(fill, text)

    return cast(Promise, lazy(render, str)())


class Listed:
    """Labels or values read as one list when the message is read: 题名、日期 / Title, Date, or
    (alternatives) 草稿或已提交 / draft or submitted."""

    def __init__(self, items: list[Any], *, alternatives: bool = False) -> None:
        self.items = items
        self.alternatives = alternatives

    def __str__(self) -> str:
        separator = _(" or ") if self.alternatives else _(", ")
        return str(separator).join(str(item) for item in self.items)
