"""Fixity checks on demand (the scheduled ones run in the worker)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema

from medarchive.core.schemas import ERRORS, MAX_INT, StrictInt, absent
from medarchive.preservation.services import verify_fixity
from medarchive.security.api_auth import actor_of

router = Router()


class FixityIn(Schema):
    record_id: UUID = absent(description="one record's files; omit for every stored copy")
    sample: StrictInt = absent(ge=1, le=MAX_INT, description="check this many copies chosen at random")


class FixityProblemOut(Schema):
    address: str
    files: list[str]
    problems: list[str]


class FixityOut(Schema):
    ok: bool
    checked: int
    failed: list[FixityProblemOut]


@router.post("/fixity", response={200: FixityOut, **ERRORS}, summary="Decrypt and re-hash stored copies")
def fixity(request: HttpRequest, body: FixityIn) -> dict[str, Any]:
    report = verify_fixity(actor=actor_of(request), record_id=body.record_id, sample=body.sample)
    return report.as_dict()
