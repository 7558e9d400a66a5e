"""The audit trail, for auditors."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from medarchive.core.schemas import ERRORS
from medarchive.security.api_auth import actor_of
from medarchive.security.services import verify_audit

router = Router()


class NoticeOut(Schema):
    code: str
    message: str


class CheckpointOut(Schema):
    seq: int
    at: str
    signer: str
    written: bool


class ChainOut(Schema):
    """Everything `VerifyReport.as_dict` says, so the API, the CLI and the web page agree."""

    ok: bool
    checked: int
    first_bad_seq: int | None
    code: str | None
    problem: str | None
    checkpoints_checked: int
    last_seq: int | None
    keyed_from: int | None
    warnings: list[NoticeOut]
    sealed_now: int = Field(description="audited reads sealed into the chain just before it was walked")
    unsealed: int = Field(description="audited reads written since, waiting for the sealer (ADR 0020)")
    oldest_unsealed: str | None = Field(None, description="when the oldest of those was written")
    checkpoint: CheckpointOut | None


@router.post("/verify", response={200: ChainOut, **ERRORS}, summary="Verify the audit hash chain")
def verify(request: HttpRequest) -> dict[str, Any]:
    return verify_audit(actor=actor_of(request)).as_dict()
