"""Domain errors: stable codes, messages rendered in the active language, every problem kept."""

from __future__ import annotations

import pytest
from django.utils import translation
from django.utils.translation import gettext_lazy

from medarchive.core.errors import Collector, MedarchiveError, NotFound, PermissionDenied, Problems, ValidationError


def test_a_lazy_template_is_rendered_in_the_active_language_with_its_details() -> None:
    exc = ValidationError(gettext_lazy("Wrong user name or password."), code="bad_login", field="password")
    with translation.override("zh-hans"):
        assert exc.message == "用户名或密码错误。"
        assert str(exc) == "用户名或密码错误。"
    with translation.override("en"):
        assert exc.message == "Wrong user name or password."
    assert exc.code == "bad_login" and exc.status == 422


def test_placeholders_come_from_the_details_and_lists_read_as_lists() -> None:
    exc = ValidationError(gettext_lazy("%(item)s is missing"), code="missing", item=["题名", "日期"])
    assert exc.message == "题名、日期 is missing"
    broken = ValidationError(gettext_lazy("%(nothing)s is missing"), code="missing")
    assert broken.message == "%(nothing)s is missing"  # a missing detail never turns into a crash


def test_a_plain_string_is_shown_as_it_is() -> None:
    exc = NotFound("record 42 does not exist %(x)s")
    assert exc.message == "record 42 does not exist %(x)s" and exc.code == "not_found"
    exc.message = "prefixed: " + exc.message
    assert str(exc) == "prefixed: record 42 does not exist %(x)s"


def test_the_problem_body_has_one_shape_and_keeps_actor_ids_private() -> None:
    exc = PermissionDenied("no", action="record:archive", actor_id=7)
    assert exc.as_problem() == {
        "code": "permission_denied",
        "message": "no",
        "field": "",
        "details": {"action": "record:archive"},
    }
    assert MedarchiveError("x").as_problem() == {"code": "invalid", "message": "x", "field": ""}


def test_a_collector_reports_every_problem_at_once() -> None:
    collector = Collector()
    with collector.check():
        raise ValidationError("title is required", code="required", field="title")
    with collector.check():
        raise ValidationError("bad date", code="bad_date", field="date")
    with collector.check():
        pass
    with pytest.raises(Problems) as caught:
        collector.raise_if_any()
    problems = caught.value
    assert problems.code == "required" and problems.field == "title"
    assert problems.by_field() == {"title": ["title is required"], "date": ["bad date"]}
    assert [e["field"] for e in problems.as_problem()["errors"]] == ["title", "date"]


def test_a_collector_lets_other_errors_through_and_one_problem_stays_itself() -> None:
    collector = Collector()
    with pytest.raises(NotFound), collector.check():
        raise NotFound("gone")
    with collector.check():
        raise ValidationError("one", code="one")
    with pytest.raises(ValidationError) as caught:
        collector.raise_if_any()
    assert not isinstance(caught.value, Problems) and caught.value.code == "one"
    Collector().raise_if_any()  # nothing collected: nothing raised
    with pytest.raises(ValueError, match="at least one"):
        Problems([])
