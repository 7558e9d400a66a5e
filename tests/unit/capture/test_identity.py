"""The same message or another one: the content digest and the keys derived from it."""

from __future__ import annotations

import datetime as dt

from medarchive.capture.identity import content_digest, derived_key, same_files

DESCRIPTION = {"class_code": "WS", "title": "通知", "date": dt.date(2025, 3, 1), "metadata": {"b": 1, "a": "甲"}}
FILES = [("a.pdf", "main", "1" * 64)]


def test_the_same_description_and_files_give_the_same_digest_whatever_the_key_order() -> None:
    reordered = {"metadata": {"a": "甲", "b": 1}, "date": "2025-03-01", "title": "通知", "class_code": "WS"}
    assert content_digest(DESCRIPTION, FILES) == content_digest(reordered, FILES)
    assert len(content_digest(DESCRIPTION, FILES)) == 64


def test_any_difference_in_description_or_files_changes_the_digest() -> None:
    base = content_digest(DESCRIPTION, FILES)
    assert content_digest({**DESCRIPTION, "title": "通知 2"}, FILES) != base
    assert content_digest({**DESCRIPTION, "metadata": {"a": "乙", "b": 1}}, FILES) != base
    assert content_digest(DESCRIPTION, [("b.pdf", "main", "1" * 64)]) != base
    assert content_digest(DESCRIPTION, [("a.pdf", "main", "2" * 64)]) != base
    assert content_digest(DESCRIPTION, [*FILES, ("b.pdf", "main", "2" * 64)]) != base
    two = [("a.pdf", "main", "1" * 64), ("b.pdf", "main", "2" * 64)]
    assert content_digest(DESCRIPTION, two) != content_digest(DESCRIPTION, two[::-1])  # order is content


def test_files_only_ignores_the_description() -> None:
    assert content_digest(None, FILES) == content_digest(None, list(FILES))
    assert content_digest(None, FILES) != content_digest(DESCRIPTION, FILES)


def test_same_files_compares_digests_in_any_order() -> None:
    assert same_files(["b", "a"], ["a", "b"]) and not same_files(["a"], ["a", "a"]) and not same_files(["a"], ["b"])


def test_a_derived_key_stays_within_the_limit_and_is_stable() -> None:
    digest = "f" * 64
    assert derived_key("hl7:HIS:1", digest) == "hl7:HIS:1~" + "f" * 16
    long = "dicom:" + "1" * 190
    derived = derived_key(long, digest)
    assert len(derived) <= 200 and derived == derived_key(long, digest) and derived.endswith("~" + "f" * 16)
    assert derived_key(long, "e" * 64) != derived
