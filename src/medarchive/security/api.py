"""The audit trail, for auditors."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from medarchive.core.schemas import ERRORS
from medarchive.security.api_auth import actor_of
from medarchive.security.services import verify_audit

router = Router()


@router.post("/verify", response={200: dict[str, Any], **ERRORS}, summary="Verify the audit hash chain")
def verify(request: HttpRequest) -> dict[str, Any]:
    return verify_audit(actor=actor_of(request)).as_dict()
