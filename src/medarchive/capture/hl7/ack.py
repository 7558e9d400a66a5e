"""Original-mode acknowledgments (ACK with MSA and, for a refusal, ERR). Pure.

The ACK uses the standard delimiters `|^~\\&` (it declares its own in MSH-2), answers in the
character set the message came in (MSH-18 echoed), and carries the reason twice: in MSA-3
(read by v2.3-era senders) and ERR-8 (v2.5+), with ERR-1 (before v2.5) and ERR-2/3/4 (v2.5+)
naming the field and the HL7 error code.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading

from medarchive.capture.hl7.errors import ACCEPT, ERROR_CODES, Hl7Error, Location
from medarchive.capture.hl7.parse import VERSIONS, Header

APPLICATION = "MEDARCHIVE"
DEFAULT_VERSION = "2.5"
_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
_counter = itertools.count(1)
_lock = threading.Lock()


def escape(text: str) -> str:
    """Text for a field of the ACK: delimiters escaped, line breaks and control characters flattened."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def next_control_id(now: dt.datetime) -> str:
    """A 20-character control ID for our ACKs, unique within this process."""
    with _lock:
        n = next(_counter) % 1_000_000
    return f"MA{now:%y%m%d%H%M%S}{n:06d}"


def build(
    header: Header | None,
    code: str,
    text: str = "",
    *,
    problem: Hl7Error | None = None,
    now: dt.datetime,
    control_id: str | None = None,
) -> bytes:
    """The ACK for a message (or for a frame that held no readable message, when `header` is None)."""
    h = header or Header()
    version = h.version if h.version in VERSIONS else DEFAULT_VERSION
    trigger = h.trigger if h.trigger.isalnum() else ""
    msh = [
        "MSH",
        "^~\\&",
        escape(h.receiving_application or APPLICATION),
        escape(h.receiving_facility),
        escape(h.sending_application),
        escape(h.sending_facility),
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        f"ACK^{trigger}^ACK" if trigger else "ACK",
        control_id or next_control_id(now),
        "P",
        version,
        "",
        "",
        "",
        "",
        "",
        escape(h.charset),
    ]
    segments = ["|".join(msh).rstrip("|"), "|".join(["MSA", code, escape(h.control_id), escape(text)]).rstrip("|")]
    if problem is not None and code != ACCEPT:
        segments.append(_err(problem))
    body = "\r".join(segments) + "\r"
    return body.encode(h.codec or "utf-8", "replace")


def _err(problem: Hl7Error) -> str:
    where = problem.location or Location("")
    name = ERROR_CODES.get(problem.code, ERROR_CODES[207])
    # ERR-1 (ELD, before v2.5): segment^sequence^field^code&text&table
    eld = f"{where.segment}^{where.sequence if where.segment else ''}^{where.field or ''}^{problem.code}&{name}&HL70357"
    # ERR-2 (ERL, v2.5+): segment^sequence^field^repetition^component
    erl = ""
    if where.segment:
        erl = f"{where.segment}^{where.sequence}"
        if where.field:
            erl += f"^{where.field}"
            if where.component:
                erl += f"^1^{where.component}"
    fields = ["ERR", eld, erl, f"{problem.code}^{name}^HL70357", "E", "", "", "", escape(problem.message)]
    return "|".join(fields)
