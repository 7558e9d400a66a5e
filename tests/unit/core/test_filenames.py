import unicodedata

import pytest
from django.utils import translation

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
    ("raw", "code", "english"),
    [
        ("../etc/passwd", "unsafe_filename", "'..'"),
        ("a/../b.pdf", "unsafe_filename", "'..'"),
        ("/etc/passwd", "unsafe_filename", "absolute"),
        ("C:\\x.pdf", "unsafe_filename", "absolute"),
        ("dir/file.pdf", "unsafe_filename", "separator"),
        ("bad\x00name.pdf", "control_characters", "bad\\x00name.pdf contains control"),
        ("bell\x07.pdf", "control_characters", "control"),
        ("", "empty_filename", "empty"),
        ("   ", "empty_filename", "empty"),
        ("..", "unsafe_filename", "'..'"),
        (" lead.pdf", "unsafe_filename", "usable"),
    ],
)
def test_dangerous_names_are_refused_with_the_reason(raw: str, code: str, english: str) -> None:
    with pytest.raises(ValidationError) as info:
        clean_filename(raw)
    assert (info.value.code, info.value.field) == (code, "filename")
    with translation.override("en"):
        assert english in info.value.message
    with translation.override("zh-hans"):
        assert info.value.message.startswith("文件名")


def test_dots_inside_a_name_are_fine() -> None:
    assert clean_filename("v1..2.pdf").name == "v1..2.pdf"


def test_overlong_name_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        clean_filename("档" * 256)
    assert info.value.code == "too_long" and info.value.message == "文件名不能超过 255 个字符。"
