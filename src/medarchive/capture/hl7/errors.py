"""Why a message was refused, in the terms an HL7 sender understands. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medarchive.capture.hl7.parse import Header

# MSA-1 acknowledgment codes (HL7 table 0008, original mode).
ACCEPT, ERROR, REJECT = "AA", "AE", "AR"

# HL7 table 0357: message error condition codes carried in ERR-3 (ERR-1.4 before v2.5).
ERROR_CODES = {
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    104: "Value too long",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}


@dataclass(frozen=True)
class Location:
    """Where in the message the problem is: segment, its sequence (1 = first), field, component."""

    segment: str
    field: int = 0
    component: int = 0
    sequence: int = 1

    def __str__(self) -> str:
        text = self.segment
        if self.field:
            text += f"-{self.field}"
            if self.component:
                text += f".{self.component}"
        return text


class Hl7Error(Exception):
    """A message that cannot be captured. `ack` is AR (rejected: the envelope, the syntax, the
    character set) or AE (the content: a missing field, an unknown department, a bad document)."""

    def __init__(
        self,
        ack: str,
        message: str,
        *,
        location: Location | None = None,
        code: int = 207,
        header: Header | None = None,
    ) -> None:
        super().__init__(message)
        self.ack = ack
        self.message = message
        self.location = location
        self.code = code
        self.header = header


def rejected(message: str, *, location: Location | None = None, code: int = 207) -> Hl7Error:
    return Hl7Error(REJECT, message, location=location, code=code)


def error(message: str, *, location: Location | None = None, code: int = 207) -> Hl7Error:
    return Hl7Error(ERROR, message, location=location, code=code)
