"""The DICOM C-STORE SCP: what a PACS or a modality sends becomes one record per study.

Per association: each C-STORE is checked (the account may file for the caller's department; a
Part 10 file is built from the dataset bytes as received: preamble, file meta, then the dataset
untouched), sealed into the spool (spool.py: encrypted, synced to disk) and only then answered
Success; the instances are gathered per study, and when the association ends (released, or
aborted after instances were confirmed) each study is captured as one record. What the sender
was told "Success" for is never thrown away: when that capture fails (database down, account
deactivated meanwhile) the association's folder stays in the spool and is captured again, with
backoff, by the retry thread (also at listener start and after the next association that was
captured). An instance we cannot file is answered with a failure status and an error comment.

Memory: pynetdicom gathers each C-STORE dataset in memory (its chunked mode would write it to a
plaintext temporary file instead, so it stays off). A dataset that grows past
`MEDARCHIVE_MAX_UPLOAD_BYTES` + `ABORT_SLACK` while arriving aborts the association, one up to
that is refused with 0xA700 before anything is copied, so an association holds at most about one
limit's worth of instance.

Who may send: the calling AE title decides the department (`calling_departments`); with a
`default_department` any caller is accepted, without one an unknown calling AE title is refused
at association time (A-ASSOCIATE-RJ, "calling AE title not recognised"). The called AE title
must be ours.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings as django_settings
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
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from medarchive.capture.dicom.capture import REJECTED, REPLAYED, StudyOutcome, capture
from medarchive.capture.dicom.extract import (
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    DicomProblem,
    Instance,
    read_instance,
)
from medarchive.capture.dicom.group import Gatherer, Member, Study, department_codes
from medarchive.capture.dicom.spool import AssociationSpool, Spool, Spooled, SpoolError
from medarchive.capture.services import IncomingFile
from medarchive.core import aliases
from medarchive.core.aliases import UnmappedDepartment
from medarchive.core.errors import MedarchiveError, PayloadTooLarge
from medarchive.core.services import active_department
from medarchive.security import context as audit_context
from medarchive.security.models import User
from medarchive.security.permissions import can
from medarchive.security.roles import Action

log = logging.getLogger(__name__)

SUCCESS = 0x0000
CONFLICT = 0xC001  # "cannot understand" family: the instance contradicts its study's other instances
ERROR_COMMENT_MAX = 64  # (0000,0902) is LO
STOP_WAIT_SECONDS = 60
RECHECK_SECONDS = 30.0  # how long an association trusts its last look at the account
RETRY_SECONDS = (30.0, 900.0)  # first and longest wait before capturing the spool's leftovers again
ABORT_SLACK = 1 << 20  # dataset bytes beyond the size limit before an arriving instance aborts its association

# Identifiers in C-FIND/C-MOVE logs would be patient data; we never log those.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False
# pynetdicom's chunked mode writes each received dataset to a temporary file in plaintext: never.
_config.STORE_RECV_CHUNKED_DATASET = False

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

    def as_dict(self) -> dict[str, str]:
        return {"calling_ae": self.calling_ae, "peer": self.peer, "department": self.department}

    @classmethod
    def from_dict(cls, value: Mapping[str, str]) -> Origin:
        return cls(value.get("calling_ae", ""), value.get("peer", ""), value.get("department", ""))


# What to do with an association's studies when it ends (runs in that association's thread). It
# raises when it cannot capture now: the studies then stay in the spool and are offered again.
Sink = Callable[[list[Study[IncomingFile]], Origin], list[StudyOutcome]]
# Why instances from this origin cannot be filed now (None: they can). Asked before answering Success,
# with the origin's department set to the instance's.
Gate = Callable[[Origin], str | None]
# The department an instance goes to: from its Institution (Department) Name through the archivist's
# aliases, else the origin's department; raises `UnmappedDepartment` when there is none.
Resolver = Callable[[str, str, Origin], str]


class CaptureDeferred(Exception):
    """The studies cannot be captured now (the account is inactive); the spool keeps them."""


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
    gatherer: Gatherer[Spooled] = field(default_factory=Gatherer)
    spool: AssociationSpool | None = None
    closed: bool = False
    checks: dict[str, tuple[float, str | None]] = field(default_factory=dict)  # department → when the gate said what
    # (InstitutionName, InstitutionalDepartmentName) → when it was resolved, and to what department (or why not)
    departments: dict[tuple[str, str], tuple[float, str | UnmappedDepartment]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spool_for(self, begin: Callable[[], AssociationSpool]) -> AssociationSpool:
        with self.lock:
            if self.closed:
                raise DicomProblem("the association has ended")
            if self.spool is None:
                self.spool = begin()
            return self.spool

    def add(self, member: Member[Spooled]) -> str | None:
        with self.lock:
            if self.closed:
                return "the association has ended"
            reason, replaced = self.gatherer.add(member, replace=True)
        if replaced is not None:
            replaced.discard()  # the sender's retry of the same instance: the newer copy is kept
        return reason

    def close(self) -> tuple[list[Study[Spooled]], AssociationSpool | None]:
        with self.lock:
            self.closed = True
            return self.gatherer.studies, self.spool


class StudyConflict(DicomProblem):
    """The instance contradicts the others of its study on this association."""

    code = "dicom_conflict"
    dimse_status = CONFLICT


class StoreScp:
    """A Storage SCP (all storage SOP classes pynetdicom knows, any transfer syntax) plus C-ECHO."""

    def __init__(
        self,
        settings: ScpSettings,
        *,
        sink: Sink | None = None,
        gate: Gate | None = None,
        resolver: Resolver | None = None,
        spool: Spool | None = None,
        retry_seconds: tuple[float, float] = RETRY_SECONDS,
    ) -> None:
        self.settings = settings
        self._sink = sink or capture_as(settings.username)
        self._gate = gate or account_gate(settings.username)
        self._resolver = resolver or department_of
        self.spool = spool or Spool.default()
        self._pending: dict[int, _Pending] = {}
        self._requested: set[int] = set()  # associations that got as far as an A-ASSOCIATE-RQ
        self._arriving: dict[int, int] = {}  # dataset bytes of the C-STORE now arriving, per association
        self._lock = threading.Lock()
        self._capture_lock = threading.Lock()  # one capture at a time: SQLite has one writer anyway
        self._retry_seconds = retry_seconds
        self._retry = threading.Condition()
        self._owed = False  # a capture failed: the spool holds leftovers to try again
        self._failures = 0  # captures that failed so far (an association's end may fail during a retry pass)
        self._retry_now = True  # at start: what an earlier listener left
        self._stopping = False
        self._retrier: threading.Thread | None = None
        self._ae = AE(ae_title=settings.ae_title)
        self._ae.require_called_aet = True
        if settings.default_department is None:
            self._ae.require_calling_aet = sorted(settings.calling_departments)
        for context in AllStoragePresentationContexts:
            self._ae.add_supported_context(cast(str, context.abstract_syntax), TRANSFER_SYNTAXES)
        self._ae.add_supported_context(Verification)
        self._server: ThreadedAssociationServer | None = None

    def start(self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None) -> tuple[str, int]:
        """Listen (in background threads); returns the address really bound (port 0 picks one).
        What an earlier listener left in the spool is captured in the background."""
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_PDU_RECV, self._on_pdu),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
        ]
        self._server = self._ae.start_server((host, port), block=False, evt_handlers=handlers, ssl_context=ssl_context)
        assert self._server is not None
        self._retrier = threading.Thread(target=self._retry_loop, name="dicom-spool-retry", daemon=True)
        self._retrier.start()
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def stop(self) -> None:
        """Stop listening; open associations are aborted and what they confirmed is captured (or
        stays in the spool for the next start)."""
        with self._retry:
            self._stopping = True
            self._retry.notify_all()
        with self._lock:  # accepted and not yet ended: they hold confirmed instances
            running = [a for a in self._ae.active_associations if id(a) in self._pending]
        self._ae.shutdown()
        for association in running:  # their end (and its capture) runs in their own thread
            association.join(timeout=STOP_WAIT_SECONDS)
        if self._retrier is not None:
            self._retrier.join(timeout=STOP_WAIT_SECONDS)
        with self._capture_lock:  # and one may be capturing from a connection-close event
            pass

    @property
    def owed(self) -> bool:
        """Whether a capture failed and its instances wait in the spool for a retry."""
        with self._retry:
            return self._owed

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

    def _on_pdu(self, event: evt.Event) -> None:
        """Count a C-STORE's dataset as it arrives: pynetdicom would gather any size in memory."""
        pdu = event.pdu
        if not isinstance(pdu, P_DATA_TF):
            return
        key = id(event.assoc)
        arriving = self._arriving.get(key, 0)
        for item in pdu.presentation_data_value_items:
            data = item.presentation_data_value or b""
            if not data or data[0] & 0x01:  # a command fragment
                continue
            arriving += len(data) - 1
            limit = django_settings.CONFIG.max_upload_bytes + ABORT_SLACK
            if arriving > limit:
                pending = self._pending.get(key)
                where = pending.origin if pending is not None else _peer(event)
                log.warning("aborting the association from %s: an instance of more than %d bytes", where, limit)
                self._arriving.pop(key, None)
                event.assoc.abort()
                return
            if data[0] & 0x02:  # the dataset's last fragment
                arriving = 0
        self._arriving[key] = arriving

    def _on_store(self, event: evt.Event) -> int | Dataset:
        pending = self._pending.get(id(event.assoc))
        if pending is None:
            return _failure(OUT_OF_RESOURCES, "association not accepted")
        origin = pending.origin
        _audit_source(origin)
        try:
            head, raw, instance = self._received(event, pending)
            department = self._department(instance, pending)
            refusal = self._refusal(pending, department)
            if refusal is not None:
                return _failure(OUT_OF_RESOURCES, refusal)
            spool = pending.spool_for(lambda: self.spool.begin(pending.origin.as_dict()))
            member = Member(instance, spool.add([head, raw]))
            reason = pending.add(member)
            if reason is not None:
                member.payload.discard()
                raise StudyConflict(reason)
        except UnmappedDepartment as exc:
            log.warning("refused C-STORE from %s: %s", origin, unmapped_text(exc))
            return _failure(OUT_OF_RESOURCES, UNMAPPED_COMMENT)
        except MedarchiveError as exc:
            log.warning("refused C-STORE from %s: %s", origin, exc.message)
            return _failure(_status(exc), exc.message)
        except Exception:
            log.exception("C-STORE from %s failed", origin)
            return _failure(OUT_OF_RESOURCES, "the archive could not store the instance")
        return SUCCESS

    def _department(self, instance: Instance, pending: _Pending) -> str:
        """The instance's department (see `Resolver`); asked again every RECHECK_SECONDS per name."""
        names = (instance.institution_name, instance.department_name)
        now = time.monotonic()
        known = pending.departments.get(names)
        if known is None or now - known[0] >= RECHECK_SECONDS:
            try:
                known = (now, self._resolver(*names, pending.origin))
            except UnmappedDepartment as exc:
                known = (now, exc)
            finally:
                _close_thread_connection()
            pending.departments[names] = known
        if isinstance(known[1], UnmappedDepartment):
            raise known[1]
        return known[1]

    def _refusal(self, pending: _Pending, department: str) -> str | None:
        """Why this association's instances for `department` cannot be filed now; asked again every
        RECHECK_SECONDS."""
        now = time.monotonic()
        checked = pending.checks.get(department)
        if checked is not None and now - checked[0] < RECHECK_SECONDS:
            return checked[1]
        origin = dataclasses.replace(pending.origin, department=department)
        try:
            refusal = self._gate(origin)
        except Exception:
            log.exception("cannot check the account for C-STOREs from %s", pending.origin)
            return "the archive cannot check its account now"
        finally:
            _close_thread_connection()  # the association's thread holds no connection between checks
        if refusal is not None:
            log.error("refusing C-STOREs from %s: %s", pending.origin, refusal)
        pending.checks[department] = (now, refusal)
        return refusal

    def _received(self, event: evt.Event, pending: _Pending) -> tuple[bytes, bytes, Instance]:
        """The instance as a Part 10 file (head, dataset as received), checked; sealed into the spool by
        the caller (nothing in plaintext on disk)."""
        request = cast(C_STORE, event.request)
        dataset = request.DataSet
        raw = dataset.getvalue() if isinstance(dataset, io.BytesIO) else b""  # no copy: BytesIO hands its buffer
        if not raw:
            raise DicomProblem("the C-STORE request carries no dataset")
        head = _part10_head(event, pending.origin.calling_ae)
        size, limit = len(head) + len(raw), django_settings.CONFIG.max_upload_bytes
        if size > limit:
            raise PayloadTooLarge(f"{size} bytes exceeds the limit of {limit}", field="file")
        instance = read_instance(cast(Any, _Joined(head, raw)))
        if instance.is_dicomdir:
            raise DicomProblem("a DICOMDIR is not a storable instance")
        if instance.sop_instance_uid != str(request.AffectedSOPInstanceUID or ""):
            raise DicomProblem("SOPInstanceUID differs from the request's Affected SOP Instance UID")
        return head, raw, instance

    def _on_end(self, event: evt.Event) -> None:
        with self._lock:
            pending = self._pending.pop(id(event.assoc), None)
            self._arriving.pop(id(event.assoc), None)
        if pending is None:
            return
        try:
            studies, spool = pending.close()
            if spool is None:
                return
            if not studies:  # every instance was refused or replaced
                spool.remove()
                return
            captured = self._deliver(studies, pending.origin, spool)
            with self._retry:
                if not captured:
                    self._owed = True  # the retry thread starts its backoff
                    self._failures += 1
                elif self._owed:
                    self._retry_now = True  # the archive works again: try the leftovers now
                self._retry.notify_all()
        finally:
            _close_thread_connection()  # the association's thread ends; its connection must not linger

    def _on_conn_close(self, event: evt.Event) -> None:
        with self._lock:
            requested = id(event.assoc) in self._requested
            self._requested.discard(id(event.assoc))
        if not requested:
            log.warning("connection from %s closed without an association request: not DICOM, aborted", _peer(event))
        self._on_end(event)

    # -- capture ------------------------------------------------------------------------

    def _deliver(self, studies: list[Study[Spooled]], origin: Origin, spool: AssociationSpool) -> bool:
        """Capture the studies; True when done (the spool folder goes), False when they stay spooled."""
        with self._capture_lock:
            incoming = [_incoming(study) for study in studies]
            failure: Exception | None = None
            try:
                self._sink(incoming, origin)
            except Exception as exc:
                failure = exc
            finally:
                for study in incoming:
                    for member in study.members:
                        if member.payload.stream is not None:
                            member.payload.stream.close()
            if failure is None:
                spool.remove()
                return True
            instances = sum(len(study.members) for study in studies)
            if isinstance(failure, CaptureDeferred):
                log.error("not captured now: %s", failure)
            else:
                log.error("capturing %d studies from %s failed", len(studies), origin, exc_info=failure)
            log.error(
                "%d instances from %s that were answered Success are NOT captured yet: kept encrypted in the "
                "spool (%s) and captured again later",
                instances,
                origin,
                spool.folder,
            )
            spool.release()
            return False

    def _retry_loop(self) -> None:
        """Capture the spool's leftovers: at start, after a failure with a growing wait, and at once
        after an association was captured again while some were owed."""
        first, longest = self._retry_seconds
        delay, due = first, None
        while True:
            with self._retry:
                while not self._stopping and not self._retry_now:
                    if self._owed and due is None:
                        due = time.monotonic() + delay
                    if due is not None and time.monotonic() >= due:
                        break
                    self._retry.wait(None if due is None else due - time.monotonic())
                if self._stopping:
                    return
                self._retry_now, due = False, None
                failures = self._failures
            try:
                left = self.retry_leftovers()
            except Exception:
                log.exception("capturing the DICOM spool's leftovers failed")
                left = 1
            finally:
                _close_thread_connection()
            with self._retry:
                self._owed = left > 0 or self._failures != failures
            delay = min(delay * 2, longest) if left else first

    def retry_leftovers(self) -> int:
        """Capture every association left in the spool that nobody holds; returns how many are
        still left because their capture failed again."""
        failed = 0
        for spool in self.spool.leftovers():
            if self._stopping:
                spool.release()
                break
            studies = _recovered(spool)
            if not studies:
                spool.remove()
                continue
            origin = Origin.from_dict(spool.origin)
            count = sum(len(study.members) for study in studies)
            log.warning("capturing %d instances from %s left in the spool (%s)", count, origin, spool.name)
            if not self._deliver(studies, origin, spool):
                failed += 1
        return failed


def account_gate(username: str) -> Gate:
    """The check before Success: the account is active and may create records in the department."""

    def gate(origin: Origin) -> str | None:
        actor = User.objects.filter(username=username, is_active=True).first()
        if actor is None:
            return "the archive account is not active"
        department = active_department(origin.department)
        if department is None:
            return f"department {origin.department} is not active"
        if not can(actor, Action.RECORD_CREATE, department_id=department.pk):
            return f"the archive account may not file for {origin.department}"
        return None

    return gate


UNMAPPED_COMMENT = "no department mapped for its InstitutionName: ask the archivist"


def department_of(institution: str, department: str, origin: Origin) -> str:
    """The instance's Institution(al Department) Name through the aliases, else the calling AE
    title's department (`--calling-ae`), else the listener's `--department`."""
    seen = department_codes(institution, department)
    try:
        return aliases.resolve(seen).department
    except UnmappedDepartment:
        if origin.department:  # the gate then checks it is active and the account may file for it
            return origin.department
        raise


def unmapped_text(exc: UnmappedDepartment) -> str:
    seen = "; ".join(exc.details.get("codes", [])) or "no InstitutionName"
    return (
        f"no department is mapped to {seen}: an archivist maps it "
        "(medarchive department alias add dicom-institution NAME DEPARTMENT [--system INSTITUTION])"
    )


def capture_as(username: str) -> Sink:
    """The sink that captures each study as a record, acting as the interface account `username`."""

    def sink(studies: list[Study[IncomingFile]], origin: Origin) -> list[StudyOutcome]:
        _audit_source(origin)
        actor = User.objects.filter(username=username, is_active=True).first()
        if actor is None:  # deactivated since the C-STOREs were answered: kept until it is active again
            raise CaptureDeferred(f"account {username!r} is not active: {len(studies)} studies from {origin}")
        # The same studies sent again on a later association land in the same submission.
        key = "dicom:association:" + hashlib.sha256("\n".join(sorted(s.key for s in studies)).encode()).hexdigest()
        departments: dict[str, str] = {}
        for study in studies:
            try:
                departments[study.uid] = department_of(
                    study.first("institution_name"), study.first("department_name"), origin
                )
            except UnmappedDepartment as exc:  # its alias was removed since the C-STOREs were answered
                raise CaptureDeferred(f"study {study.uid} from {origin}: {unmapped_text(exc)}") from None
        outcomes = capture(
            studies,
            actor=actor,
            department_code=origin.department,
            department_of=lambda study: departments[study.uid],
            source=str(origin),
            source_system=origin.calling_ae,
            submission_key=key,
            acknowledged=True,
        )
        for outcome in outcomes:
            _log_outcome(outcome, origin)
        refused = [o for o in outcomes if o.status == REJECTED]
        if refused:
            # The sender was told Success and may have deleted its copy: a study the door refused
            # (an internal error, the department or class withdrawn since the check before Success)
            # stays in the spool and is captured again later; the captured ones replay then.
            reasons = "; ".join(f"{o.study_uid}: {o.problem}" for o in refused)
            raise CaptureDeferred(f"{len(refused)} of {len(studies)} studies from {origin} refused: {reasons}")
        return outcomes

    return sink


def _incoming(study: Study[Spooled]) -> Study[IncomingFile]:
    """The study with each instance as a stream decrypted from the spool, one chunk at a time."""
    members = [
        Member(m.instance, IncomingFile(name=m.filename, stream=cast(Any, m.payload.reader()))) for m in study.members
    ]
    return Study(study.uid, members)


def _recovered(spool: AssociationSpool) -> list[Study[Spooled]]:
    """A leftover association's studies, read back from its spool folder. An instance that cannot be
    read back (damaged, its key gone) is set aside there and named in the log."""
    spool.clear_unconfirmed()
    gatherer: Gatherer[Spooled] = Gatherer()
    for entry in spool.instances():
        try:
            instance = read_instance(io.BytesIO(entry.read_all()))  # one instance in memory at a time
            reason, replaced = gatherer.add(Member(instance, entry), replace=True)
        except (SpoolError, DicomProblem, OSError) as exc:
            reason, replaced = str(getattr(exc, "message", exc)), None
        if replaced is not None:
            replaced.discard()
        if reason is not None:
            kept = spool.set_aside(entry)
            log.error("spooled instance %s cannot be captured (%s): set aside for a person to look at", kept, reason)
    return gatherer.studies


class _Joined(io.RawIOBase):
    """The Part 10 head and the dataset as one seekable read-only file, without joining (copying) them."""

    def __init__(self, *parts: bytes) -> None:
        super().__init__()
        self._parts = [memoryview(p) for p in parts]
        self._size = sum(len(p) for p in parts)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        done, start = 0, 0
        for part in self._parts:
            end = start + len(part)
            if self._position < end and done < len(view):
                offset = self._position - start
                taken = min(len(part) - offset, len(view) - done)
                view[done : done + taken] = part[offset : offset + taken]
                done += taken
                self._position += taken
            start = end
        return done


def _status(exc: MedarchiveError) -> int:
    if isinstance(exc, DicomProblem):
        return exc.dimse_status
    if isinstance(exc, PayloadTooLarge):
        return OUT_OF_RESOURCES
    return CANNOT_UNDERSTAND


def _part10_head(event: evt.Event, calling_ae: str) -> bytes:
    """Preamble + "DICM" + file meta: what goes before the dataset exactly as the peer encoded it."""
    meta = event.file_meta
    if calling_ae and len(calling_ae) <= 16 and calling_ae.isprintable() and "\\" not in calling_ae:
        meta.SourceApplicationEntityTitle = calling_ae
    return b"".join((b"\x00" * 128, b"DICM", encode_file_meta(meta)))


def _close_thread_connection() -> None:
    """A listener thread holds no database connection while it waits (it may wait for hours). Never
    inside a transaction: that connection is not this thread's to close (tests share theirs)."""
    if threading.current_thread() is not threading.main_thread() and not connection.in_atomic_block:
        connection.close()


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
