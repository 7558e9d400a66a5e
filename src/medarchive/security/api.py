"""The audit trail, for auditors."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict

from medarchive.core.schemas import ERRORS
from medarchive.security.api_auth import actor_of
from medarchive.security.services import verify_audit

router = Router()


class ChainOut(Schema):
    model_config = ConfigDict(extra="allow")  # the report may say more than these

    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: str | None


@router.post("/verify", response={200: ChainOut, **ERRORS}, summary="Verify the audit hash chain")
def verify(request: HttpRequest) -> dict[str, Any]:
    return verify_audit(actor=actor_of(request)).as_dict()
