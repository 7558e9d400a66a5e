import unicodedata

import pytest

from medarchive.core.errors import ValidationError
from medarchive.core.filenames import clean_filename


def test_plain_chinese_name_is_kept() -> None:
    clean = clean_filename("出院小结.pdf")
    assert clean.name == "出院小结.pdf" and not clean.was_normalized


def test_non_nfc_name_is_stored_nfc_and_original_kept() -> None:
    decomposed = unicodedata.normalize("NFD", "résumé.pdf")
    clean = clean_filename(decomposed)
    assert clean.name == "résumé.pdf" and unicodedata.is_normalized("NFC", clean.name)
    assert clean.original == decomposed and clean.was_normalized


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("../etc/passwd", "'..'"),
        ("a/../b.pdf", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:\\x.pdf", "absolute"),
        ("dir/file.pdf", "separator"),
        ("bad\x00name.pdf", "control"),
        ("bell\x07.pdf", "control"),
        ("", "empty"),
        ("   ", "empty"),
        ("..", "'..'"),
        (" lead.pdf", "usable"),
    ],
)
def test_dangerous_names_are_refused_with_the_reason(raw: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as info:
        clean_filename(raw)
    assert info.value.field == "filename"


def test_dots_inside_a_name_are_fine() -> None:
    assert clean_filename("v1..2.pdf").name == "v1..2.pdf"


def test_overlong_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="longer"):
        clean_filename("档" * 256)
