"""Studies → records, through the one door every connector uses (`capture.intake.receive`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medarchive.archiving.models import Record
from medarchive.capture import identity
from medarchive.capture.dicom.group import Study
from medarchive.capture.intake import Item, receive
from medarchive.capture.models import Channel, Intake
from medarchive.capture.services import IncomingFile
from medarchive.core import clock
from medarchive.core.errors import MedarchiveError
from medarchive.security.models import User

RECEIVED, REPLAYED, REJECTED = "received", "replayed", "rejected"


@dataclass
class StudyOutcome:
    study_uid: str
    key: str
    instances: int
    status: str  # received | replayed | rejected (不合格)
    record: Record | None = None
    review: str = ""  # ReviewState: "accepted" when auto-accepted, "pending" waits for the archivist
    errors: int = 0  # quality findings that keep it in the review queue
    warnings: int = 0
    problem: str = ""
    error: MedarchiveError | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "study_uid": self.study_uid,
            "key": self.key,
            "instances": self.instances,
            "status": self.status,
        }
        if self.record is not None:
            out |= {"record_id": str(self.record.pk), "electronic_no": self.record.electronic_no}
        if self.review:
            out |= {"review": self.review, "errors": self.errors, "warnings": self.warnings}
        if self.problem:
            out["problem"] = self.problem
        return out


def capture(
    studies: list[Study[IncomingFile]],
    *,
    actor: User,
    department_code: str,
    source: str,
    source_system: str = "",
    submission_key: str | None = None,
    department_of: Callable[[Study[IncomingFile]], str] | None = None,
    acknowledged: bool = False,
) -> list[StudyOutcome]:
    """Capture each study as one record whose files are its instances, byte for byte, filed under
    `department_of(study)` when given (the SCP: from its InstitutionName), else `department_code`.

    A study is identified by its key (its StudyInstanceUID and SOPInstanceUIDs) and the digest of
    its instances' bytes: the same instances sent again answer "replayed" (a re-run import, a PACS
    resending); the same UIDs with other bytes are refused (import), or, when the sender was already
    answered Success (`acknowledged`), kept as a new record held in the review queue with the finding
    `identifier_reused`. The description is not part of the identity: it depends on who relayed
    the study (the calling AE decides the department) and on the day it arrived."""
    today = clock.today()
    items = [
        Item(
            description=study.description(
                department_of(study) if department_of else department_code, today, source_system=source_system
            ),
            files=[member.payload for member in study.ordered()],
            key=study.key,
            label=f"StudyInstanceUID {study.uid}",
            identity=identity.FILES,
            acknowledged=acknowledged,
        )
        for study in studies
    ]
    result = receive(items, actor=actor, channel=Channel.DICOM, source=source, key=submission_key)
    outcomes = []
    for study, item in zip(studies, result.outcomes, strict=True):
        outcome = StudyOutcome(study.uid, study.key, len(study.members), item.status, record=item.record)
        if item.error is not None:
            outcome.problem = item.error.message
            outcome.error = item.error
        if item.intake is not None:
            _review(outcome, item.intake)
        outcomes.append(outcome)
    return outcomes


def _review(outcome: StudyOutcome, intake: Intake | None) -> None:
    if intake is not None:
        outcome.review = str(intake.state)
        outcome.errors, outcome.warnings = intake.errors, intake.warnings
