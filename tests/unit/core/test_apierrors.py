"""Reading a JSON body: UTF-8 JSON, and an object."""

from __future__ import annotations

import pytest

from medarchive.core.apierrors import parse_object
from medarchive.core.errors import MedarchiveError


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        (b"[1, 2]", "not_an_object", "body"),
        (b'{"title": ', "invalid_json", "body"),
        (b"\xff\xfe", "invalid_json", "body"),
    ],
)
def test_a_body_that_cannot_be_read_names_its_problem(raw: bytes, code: str, field: str) -> None:
    with pytest.raises(MedarchiveError) as caught:
        parse_object(raw)
    assert (caught.value.code, caught.value.field) == (code, field)


def test_text_with_tabs_chinese_and_nul_is_read_the_schemas_judge_it() -> None:
    assert parse_object('{"title": "出院\\t记录", "n": [1, {"x": null}], "y": "\\u0000"}'.encode()) == {
        "title": "出院\t记录",
        "n": [1, {"x": None}],
        "y": "\x00",
    }
