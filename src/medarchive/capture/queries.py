"""Reading the door: the review queue, the returned-items inbox, submissions and their registers.

Every list starts from `visible_to(actor)` and is audited like any list of records (SEC-04).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from medarchive.access.queries import MAX_PAGE_SIZE, audit_listing, check_page
from medarchive.archiving.models import Record
from medarchive.capture.models import Intake, ReviewState, Submission
from medarchive.core.errors import ValidationError
from medarchive.core.ids import not_found, parse_uuid
from medarchive.security.models import User
from medarchive.security.permissions import can, require, visible_to
from medarchive.security.roles import Action


@dataclass(frozen=True)
class IntakePage:
    items: list[Intake]
    total: int
    page: int
    pages: int
    page_size: int


def _visible_intakes(actor: User, action: Action) -> QuerySet[Intake]:
    return Intake.objects.filter(record__in=_records(actor, action)).select_related(
        "record", "record__archive_class", "record__department", "submission"
    )


def _records(actor: User, action: Action) -> Any:
    return Record.objects.filter(visible_to(actor, action)).values("pk")


def _page(qs: QuerySet[Intake], page: int, page_size: int) -> tuple[list[Intake], int, int, int]:
    check_page(page, page_size)
    paginator = Paginator(qs, page_size)
    number = min(page, max(paginator.num_pages, 1))
    return list(paginator.page(number).object_list), paginator.count, number, paginator.num_pages


def review_queue(
    actor: User,
    *,
    state: str = ReviewState.PENDING,
    class_code: str = "",
    department_code: str = "",
    channel: str = "",
    errors_only: bool = False,
    page: int = 1,
    page_size: int = 25,
) -> IntakePage:
    """What waits at the door, oldest first (the archive works first in, first out)."""
    require(actor, Action.RECORD_REVIEW)
    if state not in ReviewState.values:
        raise ValidationError(
            _("The review state must be one of %(choices)s (not %(value)s)."),
            code="invalid_choice",
            field="state",
            value=state,
            choices=list(ReviewState.values),
        )
    qs = _visible_intakes(actor, Action.RECORD_REVIEW).filter(state=state)
    if class_code:
        qs = qs.filter(record__archive_class__code=class_code)
    if department_code:
        qs = qs.filter(record__department__code=department_code)
    if channel:
        qs = qs.filter(submission__channel=channel)
    if errors_only:
        qs = qs.filter(errors__gt=0)
    items, total, number, pages = _page(qs.order_by("pk"), page, page_size)
    filters = {"queue": state, "class": class_code, "department": department_code, "channel": channel}
    audit_listing(actor, [i.record for i in items], filters={k: v for k, v in filters.items() if v}, page=number)
    return IntakePage(items, total, number, pages, page_size)


def returned_inbox(actor: User, *, page: int = 1, page_size: int = 25) -> IntakePage:
    """What the archive sent back to the actor's department (all departments for the archive)."""
    _require_submitter(actor)
    qs = _visible_intakes(actor, Action.RECORD_LIST).filter(state=ReviewState.RETURNED).order_by("-reviewed_at", "pk")
    items, total, number, pages = _page(qs, page, page_size)
    audit_listing(actor, [i.record for i in items], filters={"inbox": "returned"}, page=number)
    return IntakePage(items, total, number, pages, page_size)


def submissions(actor: User, *, page: int = 1, page_size: int = 25) -> tuple[list[Submission], int, int, int]:
    """The actor's own submissions; the archive sees everyone's. A register names records: audited as a list."""
    _require_submitter(actor)
    qs = _submissions_for(actor)
    paginator = Paginator(qs.order_by("-created_at", "pk"), min(max(page_size, 1), MAX_PAGE_SIZE))
    number = min(max(page, 1), max(paginator.num_pages, 1))
    items = list(paginator.page(number).object_list)
    _audit_registers(actor, items, filters={"submissions": "list"})
    return items, paginator.count, number, paginator.num_pages


def get_submission(actor: User, submission_id: Any) -> Submission:
    _require_submitter(actor)
    found = _submissions_for(actor).filter(pk=parse_uuid(submission_id, what="submission")).first()
    if found is None:
        raise not_found("submission", submission_id)
    _audit_registers(actor, [found], filters={"submission": str(found.pk)})
    return found


def _require_submitter(actor: User) -> None:
    """Submissions and returned items concern those who submit (and the archive, who reviews)."""
    if not can(actor, Action.RECORD_REVIEW):
        require(actor, Action.RECORD_CREATE)


def _audit_registers(actor: User, shown: list[Submission], *, filters: dict[str, str]) -> None:
    ids = {i["record_id"] for s in shown for i in (s.report or {}).get("items", []) if i.get("record_id")}
    audit_listing(actor, list(Record.objects.filter(pk__in=ids)), filters=filters)


def _submissions_for(actor: User) -> QuerySet[Submission]:
    """The actor's own submissions; the archive (who reviews) sees everyone's."""
    return Submission.objects.all() if can(actor, Action.RECORD_REVIEW) else Submission.objects.filter(created_by=actor)
