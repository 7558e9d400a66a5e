import pytest
from django.utils import translation

from medarchive.archiving.archival_code import DEFAULT_PATTERN, ArchivalCodePattern
from medarchive.core.errors import ValidationError

VALUES = {"fonds": "Z109", "class": "WS", "year": "2011", "retention": "Y", "org": "办公室"}


def test_default_pattern_renders_the_da_t_13_example() -> None:
    pattern = ArchivalCodePattern.parse(DEFAULT_PATTERN)
    assert pattern.render(1, **VALUES) == "Z109-WS·2011·Y·办公室-0001"


def test_item_numbers_are_zero_padded_and_regex_matches() -> None:
    pattern = ArchivalCodePattern.parse(DEFAULT_PATTERN)
    code = pattern.render(37, **{**VALUES, "class": "KJ-SB"})
    assert code == "Z109-KJ-SB·2011·Y·办公室-0037"
    match = pattern.regex().match(code)
    assert match and match["item"] == "0037" and match["klass"] == "KJ-SB"


def test_series_excludes_the_item_number() -> None:
    pattern = ArchivalCodePattern.parse(DEFAULT_PATTERN)
    assert pattern.series(**VALUES) == "Z109-WS·2011·Y·办公室-#"
    assert pattern.series(**VALUES) != pattern.series(**{**VALUES, "year": "2012"})


@pytest.mark.parametrize(
    "bad",
    [
        "{fonds}-{class}",
        "{fonds}-{item:04d}-{item:04d}",
        "{fonds.__class__}-{item:04d}",
        "{fonds}-{bogus}-{item:04d}",
        "{fonds}-{item:00d}",
    ],
)
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        ArchivalCodePattern.parse(bad)


def test_values_with_separators_or_missing_are_refused() -> None:
    pattern = ArchivalCodePattern.parse(DEFAULT_PATTERN)
    with pytest.raises(ValidationError) as caught:
        pattern.render(1, **{**VALUES, "org": "办公·室"})
    assert (caught.value.code, caught.value.field) == ("bad_code_part", "org")
    assert caught.value.message == "机构或问题 办公·室 只能包含字母、数字、汉字、_ 和 -。"
    with pytest.raises(ValidationError) as caught:
        pattern.render(1, **{**VALUES, "year": ""})
    assert (caught.value.code, caught.value.field) == ("missing_mandatory", "year")
    with translation.override("en"):
        assert caught.value.message == "The archival code needs Year."


def test_item_number_must_fit_its_width() -> None:
    pattern = ArchivalCodePattern.parse("{fonds}-{item:02d}")
    assert pattern.render(99, fonds="Z1") == "Z1-99"
    with pytest.raises(ValidationError) as caught:
        pattern.render(100, fonds="Z1")
    assert caught.value.code == "item_number_overflow" and caught.value.details == {"item": 100, "width": 2}
    with pytest.raises(ValidationError):
        pattern.render(0, fonds="Z1")
