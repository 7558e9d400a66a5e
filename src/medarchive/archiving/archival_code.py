"""档号 (archival code) patterns per DA/T 13-2022 / DA/T 22-2015 (ARC-02). Pure logic.

A pattern is text with placeholders: {fonds} 全宗号, {class} 门类/类别代码, {year} 年度,
{retention} 保管期限代码, {org} 机构或问题代码, and exactly one {item:0Nd} 件号 (N digits,
zero-padded). Everything except the item number names the *lowest class*; item numbers
run 1, 2, 3 … without gaps inside it. Only these placeholders are accepted, so a pattern
from configuration cannot reach into Python objects the way str.format could.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import ValidationError
from medarchive.core.labels import Listed, label, with_labels

DEFAULT_PATTERN = "{fonds}-{class}·{year}·{retention}·{org}-{item:04d}"
FIELDS = ("fonds", "class", "year", "retention", "org")
_TOKEN = re.compile(r"\{(fonds|class|year|retention|org|item:0(\d)d)\}")
_ANY_BRACE = re.compile(r"[{}]")
# Values may not contain the separators, or codes would become ambiguous.
_VALUE = re.compile(r"^[0-9A-Za-z\u4e00-\u9fff_-]+$")


_PART_FIELDS = {"class": "class_code", "org": "organization"}


def _part_label(name: str) -> object:
    return label(_PART_FIELDS.get(name, name))


@dataclass(frozen=True)
class ArchivalCodePattern:
    text: str
    item_width: int

    @classmethod
    def parse(cls, text: str) -> ArchivalCodePattern:
        widths = [int(m.group(2)) for m in _TOKEN.finditer(text) if m.group(2)]
        if len(widths) != 1:
            raise ValidationError(
                _("The archival code pattern %(pattern)s needs exactly one {item:0Nd}."),
                code="bad_code_pattern",
                field="pattern",
                pattern=text,
            )
        leftover = _ANY_BRACE.search(_TOKEN.sub("", text))
        if leftover:
            raise ValidationError(
                _("The archival code pattern %(pattern)s has an unknown placeholder; use %(known)s and item."),
                code="bad_code_pattern",
                field="pattern",
                pattern=text,
                known=list(FIELDS),
            )
        if not 1 <= widths[0] <= 9:
            raise ValidationError(
                _("The item number in an archival code has 1 to 9 digits."), code="bad_code_pattern", field="pattern"
            )
        return cls(text=text, item_width=widths[0])

    def _fill(self, values: dict[str, str], item: str) -> str:
        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            return item if name.startswith("item") else values[name]

        return _TOKEN.sub(repl, self.text)

    def _check(self, values: dict[str, str]) -> dict[str, str]:
        missing = [f for f in FIELDS if f"{{{f}}}" in self.text and not values.get(f)]
        if missing:
            raise ValidationError(
                with_labels(
                    _("The archival code needs %(missing)s."), missing=Listed([_part_label(f) for f in missing])
                ),
                code="missing_mandatory",
                field=missing[0],
                missing=missing,
            )
        for name, value in values.items():
            if not _VALUE.match(value):
                raise ValidationError(
                    with_labels(
                        _("%(label)s %(value)s may hold only letters, digits, Chinese characters, _ and -."),
                        label=_part_label(name),
                    ),
                    code="bad_code_part",
                    field=name,
                    value=value,
                )
        return values

    def series(self, **values: str) -> str:
        """The lowest-class key that item numbers count within."""
        return self._fill(self._check(values), "#")

    def render(self, item: int, **values: str) -> str:
        if item < 1 or item >= 10**self.item_width:
            raise ValidationError(
                _("The item number %(item)s does not fit in %(width)s digits."),
                code="item_number_overflow",
                field="item",
                item=item,
                width=self.item_width,
            )
        return self._fill(self._check(values), f"{item:0{self.item_width}d}")

    def regex(self) -> re.Pattern[str]:
        """A regex that every code rendered from this pattern matches (used by 档号规范性检测)."""
        parts, pos = [], 0
        for match in _TOKEN.finditer(self.text):
            parts.append(re.escape(self.text[pos : match.start()]))
            name = match.group(1)
            parts.append(
                rf"(?P<item>\d{{{self.item_width}}})"
                if name.startswith("item")
                else rf"(?P<{name.replace('class', 'klass')}>[0-9A-Za-z\u4e00-\u9fff_-]+?)"
            )
            pos = match.end()
        parts.append(re.escape(self.text[pos:]))
        return re.compile("^" + "".join(parts) + "$")
