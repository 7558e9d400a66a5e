"""Fixity checks on demand (the scheduled ones run in the worker)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema

from medarchive.core.schemas import ERRORS
from medarchive.preservation.services import verify_fixity
from medarchive.security.api_auth import actor_of

router = Router()


class FixityIn(Schema):
    record_id: UUID | None = None
    sample: int | None = None


@router.post("/fixity", response={200: dict[str, Any], **ERRORS}, summary="Decrypt and re-hash stored copies")
def fixity(request: HttpRequest, body: FixityIn) -> dict[str, Any]:
    report = verify_fixity(actor=actor_of(request), record_id=body.record_id, sample=body.sample)
    return report.as_dict()
