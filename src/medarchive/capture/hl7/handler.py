"""One MLLP frame → parse → the archive → the ACK. Runs in a listener worker thread.

Records go through `capture.intake.receive` only (the door guarantees all or nothing per record);
ADT^A03 discharges go to `duties.services.record_event`. Nothing raises out of `Handler.__call__`:
every outcome is an ACK, and every refusal is logged with its reason but never a patient's name.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.utils import timezone

from medarchive.capture.duties.services import record_event
from medarchive.capture.hl7 import ack
from medarchive.capture.hl7.errors import ACCEPT, ERROR, REJECT, Hl7Error, Location, error
from medarchive.capture.hl7.framing import Broken
from medarchive.capture.hl7.mapping import idempotency_key, to_discharge, to_item
from medarchive.capture.hl7.parse import Header, Message, parse, peek_header
from medarchive.capture.intake import IdentifierReused, receive
from medarchive.capture.models import Channel, ReviewState
from medarchive.core import clock
from medarchive.core.errors import MedarchiveError, PermissionDenied
from medarchive.security import audit, context
from medarchive.security.models import User

log = logging.getLogger("medarchive.capture.hl7")

# A core error's field → the HL7 field the value came from (for ERR-2 / ERR-1).
FIELD_LOCATIONS = {
    "department": Location("PV1", 10),
    "title": Location("TXA", 2),
    "date": Location("TXA", 4),
    "files": Location("OBX", 5),
    "idempotency_key": Location("MSH", 10),
    "metadata.patient_id": Location("PID", 3),
    "metadata.patient_name": Location("PID", 5),
    "metadata.birth_date": Location("PID", 7),
    "metadata.gender": Location("PID", 8),
    "metadata.visit_number": Location("PV1", 19),
    "metadata.admission_date": Location("PV1", 44),
    "metadata.discharge_date": Location("PV1", 45),
    "metadata.message_control_id": Location("MSH", 10),
    "metadata.document_type": Location("TXA", 2),
    "metadata.external_id": Location("TXA", 12),
}


@dataclass
class Handler:
    """Callable per frame: `handler(frame_bytes, peer) -> ack_bytes`. `user_id` is the interface account."""

    user_id: Any

    def __call__(self, raw: bytes, peer: str) -> bytes:
        context.source.set(f"hl7 {peer}")
        _refresh_connections()
        message: Message | None = None
        try:
            message = parse(raw)
            actor = self._actor()
            return self._archive(message, actor, peer)
        except Hl7Error as exc:
            return self._refuse(exc, exc.header or (message.header if message else None), peer, message)
        except Exception:
            # A bug or a database outage: nothing was half-written (each record is one transaction);
            # the sender may retry and a record that did commit answers as a replay.
            log.exception("hl7: %s: internal error handling a message", peer)
            _refresh_connections()
            header = message.header if message else peek_header(raw)
            problem = error("internal error: the message was not archived; retry later", code=207)
            return ack.build(header, ERROR, problem.message, problem=problem, now=_now())

    def reject(self, broken: Broken, peer: str) -> bytes:
        """The answer to a frame that never became a message (truncated, unstarted, too large)."""
        problem = Hl7Error(REJECT, broken.reason, location=Location("MSH"), code=100)
        return self._refuse(problem, peek_header(broken.partial), peer, None)

    def _actor(self) -> User:
        # Looked up per message so that disabling the account takes effect at once.
        user = User.objects.filter(pk=self.user_id, is_active=True).first()
        if user is None:
            raise error("the interface account of this listener is disabled; nothing was archived", code=207)
        return user

    def _archive(self, message: Message, actor: User, peer: str) -> bytes:
        header = message.header
        if header.message_type == "ADT":
            return self._discharge(message, actor, peer)
        item = to_item(message)
        result = receive([item], actor=actor, channel=Channel.HL7, source=header.source, key=idempotency_key(message))
        outcome = result.outcomes[0]
        if isinstance(outcome.error, IdentifierReused):
            # Not a retry: a sender whose control-ID counter restarted, or a new document under an old
            # ID. AE so the sender's operator sees it; the message is not lost on our side silently.
            raise error(
                f"MSH-10 {header.control_id} from {header.source} was already used for record "
                f"{outcome.error.details.get('record', '')} with other content; not archived: "
                "send this document with a new control ID",
                location=Location("MSH", 10),
                code=205,
            )
        if outcome.error is not None:
            raise self._from_core(outcome.error, actor)
        assert outcome.record is not None
        number = outcome.record.electronic_no
        if outcome.replayed:
            text = f"duplicate MSH-10 {header.control_id}: already received as {number}; not archived again"
        else:
            intake = outcome.intake
            state = "accepted" if intake is not None and intake.state == ReviewState.ACCEPTED else "in review"
            text = f"received as {number} ({state})"
            if intake is not None and (intake.errors or intake.warnings):
                text += f": {intake.errors} error(s), {intake.warnings} warning(s) at the door"
        log.info("hl7: %s: %s %s AA %s", peer, header.kind, header.control_id, text)
        return ack.build(header, ACCEPT, text, now=_now())

    def _discharge(self, message: Message, actor: User, peer: str) -> bytes:
        header = message.header
        event = to_discharge(message)
        if event.kind is None:
            said, done = "visit end recorded", "patient class is not inpatient, no duty started"
        else:
            try:
                obligations = record_event(
                    event.kind,
                    department_code=event.department_code,
                    subject_key=event.subject_key,
                    subject_label=event.subject_label,
                    occurred_at=event.occurred_at,
                    actor=actor,
                    source=event.source,
                )
            except MedarchiveError as exc:
                raise self._from_core(exc, actor) from None
            due = sorted({o.due_on for o in obligations if o.fulfilled_at is None})
            said = "discharge recorded"
            done = (
                f"record due by {due[0].isoformat()}"
                if due
                else ("duty already met by a received record" if obligations else "no duty rule applies")
            )
        # The sender gets its visit number back; the log does not (a visit number identifies a patient).
        log.info("hl7: %s: %s %s AA %s: %s", peer, header.kind, header.control_id, said, done)
        return ack.build(header, ACCEPT, f"{said} for {event.subject_label}: {done}", now=_now())

    def _from_core(self, exc: MedarchiveError, actor: User) -> Hl7Error:
        if isinstance(exc, PermissionDenied):
            audit.record_refusal(exc)
        where = FIELD_LOCATIONS.get(exc.field or "") or FIELD_LOCATIONS.get((exc.field or "").split("[", 1)[0])
        code = 207 if isinstance(exc, PermissionDenied) else 102
        return error(exc.message, location=where, code=code)

    def _refuse(self, exc: Hl7Error, header: Header | None, peer: str, message: Message | None) -> bytes:
        reason = _redact(exc.message, message)
        kind = header.kind if header else "?"
        control = header.control_id if header else "?"
        where = f" at {exc.location}" if exc.location and exc.location.segment else ""
        log.warning("hl7: %s: %s %s %s%s: %s", peer, kind, control, exc.ack, where, reason)
        return ack.build(header, exc.ack, reason, problem=exc, now=_now())


def _redact(text: str, message: Message | None) -> str:
    """Core messages may quote a value; a patient's name or identifiers (patient id, visit number)
    never reach a log or an ACK."""
    if message is None or message.patient is None:
        return text
    visit_number = message.visit.visit_number if message.visit is not None else ""
    for value in (message.patient.name, message.patient.id, visit_number):
        if value and len(value) >= 3:
            text = text.replace(value, "***")
    return text


def _refresh_connections() -> None:
    """Like Django's per-request `close_old_connections`: drop a connection the database closed, that
    errored, or that outlived CONN_MAX_AGE, so a worker thread reuses a healthy one. A connection
    inside a transaction someone else opened (a test) is left alone."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def close_connections() -> None:
    """Run by each worker thread as it stops."""
    connections.close_all()


def _now() -> dt.datetime:
    return timezone.localtime(clock.now())
