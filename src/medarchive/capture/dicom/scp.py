"""The DICOM C-STORE SCP: what a PACS or a modality sends becomes one record per study.

Per association: each C-STORE is checked (a Part 10 file is built from the dataset bytes as
received: preamble, file meta, then the dataset untouched), encrypted into staging and answered;
the instances are gathered per study, and when the association ends (released, or aborted after
instances were confirmed) each study is captured as one record. What the sender was told
"success" for is therefore never thrown away; an instance we cannot file is answered with a
failure status and an error comment instead.

Who may send: the calling AE title decides the department (`calling_departments`); with a
`default_department` any caller is accepted, without one an unknown calling AE title is refused
at association time (A-ASSOCIATE-RJ, "calling AE title not recognised"). The called AE title
must be ours.
"""

from __future__ import annotations

import hashlib
import io
import logging
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import connection
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode_file_meta
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from medarchive.capture.dicom.capture import REJECTED, REPLAYED, StudyOutcome, capture
from medarchive.capture.dicom.extract import CANNOT_UNDERSTAND, OUT_OF_RESOURCES, DicomProblem, read_instance
from medarchive.capture.dicom.group import Gatherer, Member, Study
from medarchive.capture.services import IncomingFile, prestage
from medarchive.core.errors import MedarchiveError, PayloadTooLarge
from medarchive.security import context as audit_context
from medarchive.security.models import User

log = logging.getLogger(__name__)

SUCCESS = 0x0000
CONFLICT = 0xC001  # "cannot understand" family: the instance contradicts its study's other instances
ERROR_COMMENT_MAX = 64  # (0000,0902) is LO
STOP_WAIT_SECONDS = 60

# Identifiers in C-FIND/C-MOVE logs would be patient data; we never log those.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False

# Pixel data is never decoded here, so every transfer syntax is accepted and kept as sent. Where a
# sender offers several for one context the first we list wins (pynetdicom picks in our order):
# uncompressed first, so we never make a sender compress (perhaps lossily) for us; a sender that
# holds compressed originals offers them on their own and they are kept compressed.
_UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian]
TRANSFER_SYNTAXES = _UNCOMPRESSED + [ts for ts in ALL_TRANSFER_SYNTAXES if ts not in _UNCOMPRESSED]


@dataclass(frozen=True)
class Origin:
    """Who sent an association's studies, and where they go."""

    calling_ae: str
    peer: str  # address:port
    department: str

    def __str__(self) -> str:
        return f"{self.calling_ae} ({self.peer})"


# What to do with an association's studies when it ends (runs in that association's thread).
Sink = Callable[[list[Study[IncomingFile]], Origin], list[StudyOutcome]]


@dataclass(frozen=True)
class ScpSettings:
    ae_title: str
    username: str  # the interface account the studies are captured as
    default_department: str | None = None
    calling_departments: Mapping[str, str] = field(default_factory=dict)

    def department_for(self, calling_ae: str) -> str | None:
        return self.calling_departments.get(calling_ae.strip(), self.default_department)


@dataclass
class _Pending:
    """One association's instances, until it ends."""

    origin: Origin
    gatherer: Gatherer[IncomingFile] = field(default_factory=Gatherer)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, member: Member[IncomingFile]) -> str | None:
        with self.lock:
            if self.closed:
                return "the association has ended"
            reason, replaced = self.gatherer.add(member, replace=True)
        if replaced is not None:
            replaced.discard()  # the sender's retry of the same instance: the newer copy is kept
        return reason

    def close(self) -> list[Study[IncomingFile]]:
        with self.lock:
            self.closed = True
            return self.gatherer.studies


class StudyConflict(DicomProblem):
    """The instance contradicts the others of its study on this association."""

    code = "dicom_conflict"
    dimse_status = CONFLICT


class StoreScp:
    """A Storage SCP (all storage SOP classes pynetdicom knows, any transfer syntax) plus C-ECHO."""

    def __init__(self, settings: ScpSettings, *, sink: Sink | None = None) -> None:
        self.settings = settings
        self._sink = sink or capture_as(settings.username)
        self._pending: dict[int, _Pending] = {}
        self._requested: set[int] = set()  # associations that got as far as an A-ASSOCIATE-RQ
        self._lock = threading.Lock()
        self._capture_lock = threading.Lock()  # one capture at a time: SQLite has one writer anyway
        self._ae = AE(ae_title=settings.ae_title)
        self._ae.require_called_aet = True
        if settings.default_department is None:
            self._ae.require_calling_aet = sorted(settings.calling_departments)
        for context in AllStoragePresentationContexts:
            self._ae.add_supported_context(cast(str, context.abstract_syntax), TRANSFER_SYNTAXES)
        self._ae.add_supported_context(Verification)
        self._server: ThreadedAssociationServer | None = None

    def start(self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None) -> tuple[str, int]:
        """Listen (in background threads); returns the address really bound (port 0 picks one)."""
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
        ]
        self._server = self._ae.start_server((host, port), block=False, evt_handlers=handlers, ssl_context=ssl_context)
        assert self._server is not None
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def stop(self) -> None:
        """Stop listening; open associations are aborted and what they confirmed is captured."""
        with self._lock:  # accepted and not yet ended: they hold confirmed instances
            running = [a for a in self._ae.active_associations if id(a) in self._pending]
        self._ae.shutdown()
        for association in running:  # their end (and its capture) runs in their own thread
            association.join(timeout=STOP_WAIT_SECONDS)
        with self._capture_lock:  # and one may be capturing from a connection-close event
            pass

    # -- association events -------------------------------------------------------------

    def _on_requested(self, event: evt.Event) -> None:
        with self._lock:
            self._requested.add(id(event.assoc))

    def _on_accepted(self, event: evt.Event) -> None:
        calling = _calling_ae(event.assoc)
        department = self.settings.department_for(calling)
        if department is None:  # not reachable with require_calling_aet; kept as a guard
            log.warning("association from %s (%s): no department for this calling AE title", calling, _peer(event))
            event.assoc.abort()
            return
        with self._lock:
            self._pending[id(event.assoc)] = _Pending(Origin(calling, _peer(event), department))

    def _on_rejected(self, event: evt.Event) -> None:
        calling = _calling_ae(event.assoc)
        called = _printable(getattr(event.assoc.requestor.primitive, "called_ae_title", ""))
        if called != self.settings.ae_title:
            why = f"called AE title {called!r} is not ours ({self.settings.ae_title!r})"
        elif self.settings.department_for(calling) is None:
            why = (
                f"calling AE title {calling!r} has no department "
                "(map it with --calling-ae AE=DEPT or give --department)"
            )
        else:
            why = "too many associations or no acceptable presentation context"
        log.warning("refused association from %s (%s): %s", calling, _peer(event), why)

    def _on_store(self, event: evt.Event) -> int | Dataset:
        pending = self._pending.get(id(event.assoc))
        if pending is None:
            return _failure(OUT_OF_RESOURCES, "association not accepted")
        origin = pending.origin
        _audit_source(origin)
        try:
            member = _staged_member(event, origin.calling_ae)
            reason = pending.add(member)
            if reason is not None:
                member.payload.discard()
                raise StudyConflict(reason)
        except MedarchiveError as exc:
            log.warning("refused C-STORE from %s: %s", origin, exc.message)
            return _failure(_status(exc), exc.message)
        except Exception:
            log.exception("C-STORE from %s failed", origin)
            return _failure(OUT_OF_RESOURCES, "the archive could not store the instance")
        return SUCCESS

    def _on_end(self, event: evt.Event) -> None:
        with self._lock:
            pending = self._pending.pop(id(event.assoc), None)
        if pending is None:
            return
        studies = pending.close()
        if studies:
            self._deliver(studies, pending.origin)

    def _on_conn_close(self, event: evt.Event) -> None:
        with self._lock:
            requested = id(event.assoc) in self._requested
            self._requested.discard(id(event.assoc))
        if not requested:
            log.warning("connection from %s closed without an association request: not DICOM, aborted", _peer(event))
        self._on_end(event)

    # -- capture ------------------------------------------------------------------------

    def _deliver(self, studies: list[Study[IncomingFile]], origin: Origin) -> None:
        with self._capture_lock:
            try:
                self._sink(studies, origin)
            except Exception:
                log.exception("capturing %d studies from %s failed", len(studies), origin)
                _discard(studies)
            finally:
                if threading.current_thread() is not threading.main_thread():
                    connection.close()  # the association's thread ends; its connection must not linger


def capture_as(username: str) -> Sink:
    """The sink that captures each study as a record, acting as the interface account `username`."""

    def sink(studies: list[Study[IncomingFile]], origin: Origin) -> list[StudyOutcome]:
        _audit_source(origin)
        actor = User.objects.filter(username=username, is_active=True).first()
        if actor is None:
            log.error("account %r is not active: %d studies from %s not captured", username, len(studies), origin)
            _discard(studies)
            return []
        # The same studies sent again on a later association land in the same submission.
        key = "dicom:association:" + hashlib.sha256("\n".join(sorted(s.key for s in studies)).encode()).hexdigest()
        outcomes = capture(
            studies,
            actor=actor,
            department_code=origin.department,
            source=str(origin),
            source_system=origin.calling_ae,
            submission_key=key,
        )
        for outcome in outcomes:
            _log_outcome(outcome, origin)
        return outcomes

    return sink


def _staged_member(event: evt.Event, calling_ae: str) -> Member[IncomingFile]:
    """The instance as a Part 10 file, checked and encrypted into staging (nothing in plaintext on disk)."""
    data = _part10(event, calling_ae)
    instance = read_instance(io.BytesIO(data))
    if instance.is_dicomdir:
        raise DicomProblem("a DICOMDIR is not a storable instance")
    if instance.sop_instance_uid != str(cast(C_STORE, event.request).AffectedSOPInstanceUID or ""):
        raise DicomProblem("SOPInstanceUID differs from the request's Affected SOP Instance UID")
    member = Member(instance, IncomingFile(name=f"{instance.sop_instance_uid}.dcm", stream=io.BytesIO(data)))
    prestage(member.payload)
    return member


def _status(exc: MedarchiveError) -> int:
    if isinstance(exc, DicomProblem):
        return exc.dimse_status
    if isinstance(exc, PayloadTooLarge):
        return OUT_OF_RESOURCES
    return CANNOT_UNDERSTAND


def _part10(event: evt.Event, calling_ae: str) -> bytes:
    """Preamble + "DICM" + file meta + the dataset exactly as the peer encoded it."""
    dataset = cast(C_STORE, event.request).DataSet
    raw = dataset.getvalue() if isinstance(dataset, io.BytesIO) else b""
    if not raw:
        raise DicomProblem("the C-STORE request carries no dataset")
    meta = event.file_meta
    if calling_ae and len(calling_ae) <= 16 and calling_ae.isprintable() and "\\" not in calling_ae:
        meta.SourceApplicationEntityTitle = calling_ae
    return b"".join((b"\x00" * 128, b"DICM", encode_file_meta(meta), raw))


def _failure(status: int, comment: str) -> Dataset:
    response = Dataset()
    response.Status = status
    response.ErrorComment = comment.encode("ascii", "replace").decode("ascii")[:ERROR_COMMENT_MAX]
    return response


def _calling_ae(assoc: Association) -> str:
    return _printable(assoc.requestor.ae_title)


def _printable(value: Any) -> str:
    """An AE title as the peer sent it, safe for a log line (it is the peer's choice of bytes)."""
    text = str(value or "").strip()
    return "".join(ch if ch.isascii() and ch.isprintable() else "?" for ch in text)[:16]


def _peer(event: evt.Event) -> str:
    address = getattr(event.assoc.requestor, "address", "") or ""
    port = getattr(event.assoc.requestor, "port", None)
    return f"{address}:{port}" if port else str(address)


def _audit_source(origin: Origin) -> None:
    audit_context.source.set(origin.peer.rpartition(":")[0] or origin.peer)


def _discard(studies: list[Study[IncomingFile]]) -> None:
    for study in studies:
        for member in study.members:
            member.payload.discard()


def _log_outcome(outcome: StudyOutcome, where: Origin) -> None:
    number = outcome.record.electronic_no if outcome.record is not None else "-"
    if outcome.status == REJECTED:
        log.error("study %s from %s not captured: %s", outcome.study_uid, where, outcome.problem)
    elif outcome.status == REPLAYED:
        log.info("study %s from %s was already captured as %s", outcome.study_uid, where, number)
    else:
        log.info(
            "study %s from %s captured as %s: %d instances, review %s",
            outcome.study_uid,
            where,
            number,
            outcome.instances,
            outcome.review,
        )
