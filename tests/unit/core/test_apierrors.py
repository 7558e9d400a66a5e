"""Reading a JSON body: an object, UTF-8, and no NUL in any string (PostgreSQL cannot store one)."""

from __future__ import annotations

import pytest

from medarchive.core.apierrors import parse_object
from medarchive.core.errors import MedarchiveError


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        (b'{"title": "a\\u0000b"}', "control_characters", "title"),
        (b'{"metadata": {"pages": ["1", "\\u0000"]}}', "control_characters", "metadata.pages[1]"),
        (b'{"a\\u0000": 1}', "control_characters", "body"),
        (b"[1, 2]", "not_an_object", "body"),
        (b'{"title": ', "invalid_json", "body"),
        (b"\xff\xfe", "invalid_json", "body"),
    ],
)
def test_a_body_that_cannot_be_read_names_its_problem(raw: bytes, code: str, field: str) -> None:
    with pytest.raises(MedarchiveError) as caught:
        parse_object(raw)
    assert (caught.value.code, caught.value.field) == (code, field)


def test_text_with_tabs_and_chinese_is_read() -> None:
    assert parse_object('{"title": "出院\\t记录", "n": [1, {"x": null}]}'.encode()) == {
        "title": "出院\t记录",
        "n": [1, {"x": None}],
    }
