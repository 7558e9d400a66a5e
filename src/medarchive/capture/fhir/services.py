"""FHIR capture over the one door (`capture.intake.receive`), and the Binaries that wait for it.

Single DocumentReference: checked (parse.py, then the database checks here), the bytes staged
once (encrypted + hashed), then `receive` writes the record in its own transaction.

Transaction Bundle, all or nothing:
1. every entry is parsed and checked before anything is written (parse.py + `_plan`);
2. every file is staged (encrypted) outside the database transaction;
3. one outer `transaction.atomic()` wraps `receive`: each record is a savepoint inside it;
   if any item is refused (a race the checks could not see), the whole transaction rolls back
   and the sealed objects of blobs whose rows were rolled back are deleted (`preservation.withdraw`),
   so nothing of the bundle stays — not a record, a submission, an audit row or a file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy

from medarchive.archiving import metadata as metadata_schema
from medarchive.archiving.models import Component, Record, RecordState
from medarchive.archiving.services import active_class
from medarchive.capture.fhir import parse
from medarchive.capture.fhir.models import AttachmentDigest, PendingBinary
from medarchive.capture.fhir.outcome import (
    BUSINESS_RULE,
    CODE_INVALID,
    DUPLICATE,
    INVALID,
    REQUIRED,
    THROTTLED,
    VALUE,
    FhirError,
    Issue,
    from_domain,
)
from medarchive.capture.formats import ContentSample, identify
from medarchive.capture.intake import IdentifierReused, Item, ItemOutcome, receive
from medarchive.capture.models import Channel, Intake
from medarchive.capture.services import Description, IncomingFile, prestage
from medarchive.core import aliases, clock
from medarchive.core.errors import Conflict, IntegrityFailure, MedarchiveError, NotFound, ValidationError
from medarchive.core.ids import parse_uuid
from medarchive.core.models import Department
from medarchive.core.services import active_department
from medarchive.preservation import services as preservation
from medarchive.preservation.blobstore import StagedBlob
from medarchive.preservation.models import PreservationEvent
from medarchive.security import audit
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action

log = logging.getLogger(__name__)

INLINE_CAP = 16 * 1024 * 1024  # base64 in JSON is held in memory (~4x per request): bigger files go as a raw Binary
BINARY_TTL = dt.timedelta(hours=24)
PURGE_GRACE = dt.timedelta(hours=1)  # an expired Binary is refused at once, deleted an hour later
MAX_PENDING_PER_CALLER = 1000
_KEY_LIMIT = 200
# Where a capture-service error's `field` lives in a DocumentReference.
_FIELD_PATHS = {
    "class": "category",
    "department": "context.practiceSetting",
    "date": "date",
    "title": "description",
    "responsible": "author",
    "security_level": "securityLabel",
    "files": "content",
    "file": "content",
    "idempotency_key": "masterIdentifier",
}


def inline_limit() -> int:
    """Largest attachment accepted as base64 inside JSON."""
    return min(settings.CONFIG.max_upload_bytes, INLINE_CAP)


def body_limit() -> int:
    """Largest JSON body: one inline attachment at the limit, in base64, plus the resource around it."""
    return inline_limit() * 4 // 3 + 4 + 1024 * 1024


def local_tz() -> dt.tzinfo:
    return ZoneInfo(settings.TIME_ZONE)


def expression_of(exc: MedarchiveError, base: str) -> str:
    name = (exc.field or "").split("[", 1)[0]
    if name.startswith("metadata"):
        return f"{base}.subject" if "patient" in name else base
    return f"{base}.{_FIELD_PATHS[name]}" if name in _FIELD_PATHS else base


# --- Binary ----------------------------------------------------------------------------------------


class _Tap:
    """Reads through a stream, keeping the head for identification and the SHA-1."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.sample = ContentSample()
        self.sha1 = hashlib.sha1(usedforsecurity=False)

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.sample.feed(data)
        self.sha1.update(data)
        return data


def store_binary(stream: IO[bytes], content_type: str, *, actor: User, source: str = "") -> PendingBinary:
    """Seal a Binary until a DocumentReference takes it. The content streams: raw uploads of any
    size up to the archive's upload limit never sit in memory."""
    require(actor, Action.RECORD_CREATE)
    if not content_type:
        raise FhirError.of(422, REQUIRED, "Binary.contentType is required", "Binary.contentType")
    pending = PendingBinary.objects.filter(created_by=actor, record__isnull=True, expires_at__gt=clock.now()).count()
    if pending >= MAX_PENDING_PER_CALLER:
        raise FhirError.of(
            429, THROTTLED, f"{pending} Binaries are waiting for their DocumentReference; post those first"
        )
    store = preservation.blob_store()
    tap = _Tap(stream)
    staged = store.stage(tap, max_bytes=settings.CONFIG.max_upload_bytes)  # type: ignore[arg-type]
    try:
        fmt = identify(tap.sample.head)
        issues: list[Issue] = []
        parse.check_content(
            parse.AttachmentDraft("Binary", content_type, ""),
            size=staged.size,
            sha1=tap.sha1.hexdigest(),
            mime=fmt.mime,
            format_name=fmt.name,
            limit=settings.CONFIG.max_upload_bytes,
            issues=issues,
        )
        if issues:
            raise FhirError(422, issues)
        return _keep(staged, content_type, fmt.mime, fmt.name, tap.sha1.hexdigest(), actor=actor, source=source)
    finally:
        staged.discard()  # a no-op once committed


def _keep(
    staged: StagedBlob, content_type: str, mime: str, format_name: str, sha1: str, *, actor: User, source: str
) -> PendingBinary:
    binary_id = uuid.uuid4()
    store = preservation.blob_store()
    # An address of its own: HMAC over a 28-byte input can never equal a content address
    # (HMAC over a 32-byte SHA-256), so a record's blob and a Binary never share an object.
    address = store.address_for(b"fhir-binary\x00" + binary_id.bytes)
    with transaction.atomic():
        row = PendingBinary.objects.create(
            id=binary_id,
            created_by=actor,
            expires_at=clock.now() + BINARY_TTL,
            content_type=content_type[:100],
            mime_type=mime,
            format_name=format_name,
            size=staged.size,
            sha1=sha1,
            sha256=staged.sha256,
            address=address,
            suite=str(staged.suite),
            key_id=staged.key_id,
            wrapped_key=staged.wrapped_key,
        )
        audit.record_event(
            Action.RECORD_CREATE,
            actor=actor,
            object_type="fhir-binary",
            object_id=str(binary_id),
            details={"size": staged.size, "sha256": staged.sha256, "format": mime, "source": source[:200]},
        )
    # Row first, object second: a crash in between leaves a row the purge job deletes, never an
    # object nobody knows about.
    try:
        if not dataclasses.replace(staged, address=address).commit():
            raise Conflict(
                gettext_lazy("A Binary with this id already exists: send the Binary again."),
                code="binary_id_taken",
                field="id",
            )
    except BaseException:
        PendingBinary.objects.filter(pk=binary_id).delete()
        raise
    PendingBinary.objects.filter(pk=binary_id).update(stored=True)
    row.stored = True
    return row


class _ChunkReader:
    """A readable stream over decrypted chunks (a pending Binary re-staged into a record)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def _take_binary(
    reference: str, att: parse.AttachmentDraft, *, actor: User, issues: list[Issue]
) -> PendingBinary | None:
    """Claim a pending Binary of this caller for one capture (released if the capture fails)."""
    raw_id = reference.removeprefix("Binary/")
    try:
        binary_id = parse_uuid(raw_id, what="Binary")
    except NotFound:
        binary_id = None
    now = clock.now()
    row = (
        PendingBinary.objects.filter(
            pk=binary_id, created_by=actor, stored=True, record__isnull=True, used_at__isnull=True, expires_at__gt=now
        ).first()
        if binary_id is not None
        else None
    )
    if row is None or not PendingBinary.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now):
        issues.append(
            Issue(
                INVALID,
                f"{att.expression}.url: {reference} is not a Binary you posted that is still waiting "
                "(unknown, expired, or already used)",
                f"{att.expression}.url",
            )
        )
        return None
    row.used_at = now
    before = len(issues)
    parse.check_content(
        att,
        size=row.size,
        sha1=row.sha1,
        mime=row.mime_type,
        format_name=row.format_name,
        limit=settings.CONFIG.max_upload_bytes,
        issues=issues,
    )
    if len(issues) > before:
        _release_binaries([row])
        return None
    return row


def _release_binaries(rows: list[PendingBinary]) -> None:
    ids = [r.pk for r in rows]
    if ids:
        PendingBinary.objects.filter(pk__in=ids, record__isnull=True).update(used_at=None)


def _binary_content(row: PendingBinary) -> IO[bytes]:
    chunks = preservation.blob_store().open(row.address, key_id=row.key_id, wrapped_key=bytes(row.wrapped_key))
    return cast(IO[bytes], _ChunkReader(chunks))


def _finish_binaries(used: list[tuple[PendingBinary, Record]]) -> None:
    """Inside the capturing transaction: the Binary now belongs to its record; its own sealed
    copy goes once that commits."""
    for row, record in used:
        PendingBinary.objects.filter(pk=row.pk).update(record=record)
    storage = preservation.blob_store().storage
    addresses = [row.address for row, _ in used]

    def delete() -> None:
        for address in addresses:
            storage.delete_if_exists(address)
            PendingBinary.objects.filter(address=address).update(stored=False)

    if addresses:
        transaction.on_commit(delete)


def purge_expired_binaries(*, limit: int = 500) -> int:
    """Delete Binaries no DocumentReference took in time (and their sealed objects)."""
    cutoff = clock.now() - PURGE_GRACE
    storage = preservation.blob_store().storage
    done = 0
    for row in PendingBinary.objects.filter(record__isnull=True, expires_at__lt=cutoff)[:limit]:
        storage.delete_if_exists(row.address)
        PendingBinary.objects.filter(pk=row.pk, record__isnull=True).delete()
        done += 1
    # A used Binary's object is deleted once its record commits; a crash just then leaves it here.
    for row in PendingBinary.objects.filter(record__isnull=False, expires_at__lt=cutoff, stored=True)[:limit]:
        storage.delete_if_exists(row.address)
        PendingBinary.objects.filter(pk=row.pk).update(stored=False)
    return done


# --- capture ---------------------------------------------------------------------------------------


@dataclass
class Planned:
    draft: parse.DocumentDraft
    item: Item
    sha1s: list[str]  # per file, in file order (= Component.sequence - 1)
    binaries: list[PendingBinary] = field(default_factory=list)


@dataclass
class Captured:
    draft: parse.DocumentDraft
    record: Record
    created: bool  # False: an earlier capture answered for this key (a retry)
    intake: Intake | None


def idempotency_key(*, header: str = "", condition: str = "", master: str = "") -> str | None:
    """`fhir:<…>`, unique per caller (the intake Item key). The explicit key wins, then the
    conditional-create identifier, then masterIdentifier (version-specific in R4)."""
    if header:
        return _bounded(f"fhir:key:{header}")
    if condition or master:
        return _bounded(f"fhir:id:{condition or master}")
    return None


def bundle_key(*, header: str = "", identifier: str = "") -> str | None:
    """A transaction's own key (its Submission's); documents without one get `<key>:<index>`."""
    return _bounded(f"fhir:bundle:{header or identifier}") if header or identifier else None


def _bounded(key: str) -> str:
    if len(key) <= _KEY_LIMIT and all(ord(c) >= 32 for c in key):
        return key
    return "fhir:sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _plan(draft: parse.DocumentDraft, key: str | None, *, actor: User) -> Planned:
    """The database checks of one document; on success its Item, files ready to stage."""
    base = draft.expression
    issues: list[Issue] = []
    try:
        active_class(draft.class_code)
    except ValidationError as exc:
        issues.append(Issue(VALUE, exc.message, f"{base}.category"))
    department = _department_of(draft, actor, issues)
    if draft.date.year < 1900 or draft.date > clock.today() + dt.timedelta(days=1):
        issues.append(Issue(BUSINESS_RULE, f"date {draft.date.isoformat()} is not plausible", f"{base}.date"))
    try:
        metadata_schema.validate(draft.metadata)
    except ValidationError as exc:
        issues.append(Issue(VALUE, exc.message, expression_of(exc, base)))
    if issues:
        raise FhirError(422, issues)
    assert department is not None
    require(actor, Action.RECORD_CREATE, department_id=department.pk)  # 403, audited by the view
    binaries: list[PendingBinary] = []
    files: list[IncomingFile] = []
    sha1s: list[str] = []
    for index, att in enumerate(draft.attachments):
        if att.content is not None:
            stream: IO[bytes] = io.BytesIO(att.content.data)  # shares the decoded bytes, no copy
            mime, sha1 = att.content.mime, att.content.sha1
        else:
            row = _take_binary(att.reference, att, actor=actor, issues=issues)
            if row is None:
                continue
            binaries.append(row)
            stream, mime, sha1 = _binary_content(row), row.mime_type, row.sha1
        files.append(IncomingFile(name=parse.file_name(att, index, mime), stream=stream, created=att.creation))
        sha1s.append(sha1)
    if issues:
        _release_binaries(binaries)
        raise FhirError(422, issues)
    desc = Description(
        class_code=draft.class_code,
        department_code=department.code,
        title=draft.title,
        date=draft.date,
        responsible=draft.responsible,
        security_level=draft.security_level,
        metadata=draft.metadata,
    )
    label = f"{base} {draft.master_identifier}".strip()[:200]
    return Planned(draft, Item(description=desc, files=files, key=key, label=label), sha1s, binaries)


def _department_of(draft: parse.DocumentDraft, actor: User, issues: list[Issue]) -> Department | None:
    """The department the document names (own code, or a hospital code through the archivist's
    aliases), else the caller's own; an issue listing every code seen when none maps."""
    where = f"{draft.expression}.context.practiceSetting"
    seen = draft.department_codes
    if not seen and actor.department_id and actor.department:
        seen = [aliases.own(actor.department.code, "the caller's department")]
    if not seen:
        issues.append(
            Issue(
                REQUIRED,
                "name the department: context.practiceSetting (system urn:medarchive:department, or a code of "
                "the hospital's code system that an archivist has mapped) or custodian (an Organization identifier)",
                where,
            )
        )
        return None
    try:
        match = aliases.resolve(seen)
    except aliases.UnmappedDepartment as exc:
        issues.append(Issue(CODE_INVALID, unmapped_text(exc), where))
        return None
    department = active_department(match.department)
    if department is None:  # deactivated between the two queries
        issues.append(Issue(VALUE, f"department {match.department} is not active", where))
    return department


def unmapped_text(exc: aliases.UnmappedDepartment) -> str:
    """The diagnostics of a refused department: every code seen, and what to do (protocol text: English)."""
    seen = "; ".join(exc.details.get("codes", [])) or "none"
    return (
        f"no department of the archive is mapped to the codes this document carries: {seen}. "
        "Use urn:medarchive:department codes, or ask the archive's archivist to map these codes "
        "(web: Department codes; CLI: medarchive department alias add KIND KEY DEPARTMENT --system SYSTEM)"
    )


def _stage(plans: list[Planned]) -> None:
    """Encrypt + hash every file now (outside any database transaction); a Binary's bytes must
    come out as they went in."""
    for plan in plans:
        for index, incoming in enumerate(plan.item.files):
            try:
                prestage(incoming)
            except MedarchiveError as exc:
                raise from_domain(exc, f"{plan.draft.expression}.content[{index}].attachment") from None
        for row in plan.binaries:
            staged = {f.staged.sha256 for f in plan.item.files if f.staged is not None}
            if row.sha256 not in staged:
                raise IntegrityFailure(
                    gettext_lazy(
                        "Binary/%(binary)s did not decrypt to the content it was stored with: send the Binary again."
                    ),
                    code="binary_content_changed",
                    binary=str(row.pk),
                )


def _discard(plans: list[Planned]) -> None:
    for plan in plans:
        for incoming in plan.item.files:
            if incoming.staged is not None and incoming.staged.created is None:
                incoming.discard()
        _release_binaries(plan.binaries)


def _check_outcome(plan: Planned, outcome: ItemOutcome) -> FhirError | None:
    base = plan.draft.expression
    if isinstance(outcome.error, IdentifierReused):  # the door compared the content digests
        return FhirError.of(
            409,
            DUPLICATE,
            f"{plan.item.key} was already used for record {outcome.error.details.get('record', '')} with other "
            "content; a new version of a document needs a new masterIdentifier",
            f"{base}.masterIdentifier",
        )
    if outcome.error is not None:
        return from_domain(outcome.error, expression_of(outcome.error, base))
    return None


def _digests(plan: Planned) -> None:
    """SHA-1 beside the SHA-256 the store computed from the same bytes (one INSERT, no lookup)."""
    AttachmentDigest.objects.bulk_create(
        [
            AttachmentDigest(sha256=incoming.staged.sha256, sha1=sha1)
            for incoming, sha1 in zip(plan.item.files, plan.sha1s, strict=True)
            if incoming.staged is not None
        ],
        ignore_conflicts=True,
    )


def capture_document(draft: parse.DocumentDraft, *, actor: User, key: str | None, source: str) -> Captured:
    """One DocumentReference through the door. A retry with the same key and content answers
    with the earlier record (created=False); the same key with other content is 409."""
    plan = _plan(draft, key, actor=actor)
    try:
        _stage([plan])
        result = receive([plan.item], actor=actor, channel=Channel.FHIR, source=source, key=key)
    except BaseException:
        _discard([plan])
        raise
    outcome = result.outcomes[0]
    problem = _check_outcome(plan, outcome)
    if problem is not None or outcome.record is None:
        _release_binaries(plan.binaries)
        raise problem or FhirError.of(500, "exception", "the record was not captured")
    if not outcome.replayed:
        with transaction.atomic():
            _digests(plan)
            _finish_binaries([(row, outcome.record) for row in plan.binaries])
    else:
        _release_binaries(plan.binaries)
    return Captured(draft, outcome.record, not outcome.replayed, outcome.intake)


class _Abort(Exception):
    """Raised inside the transaction to roll it back; carries the answer for the sender."""

    def __init__(self, error: FhirError) -> None:
        super().__init__(error.summary)
        self.error = error


def capture_transaction(tx: parse.Transaction, *, actor: User, key: str | None, source: str) -> list[Captured]:
    """Every document of a transaction Bundle, or none of them (see the module doc)."""
    keys = [
        idempotency_key(condition=d.condition, master=d.master_identifier) or (f"{key}:{i}" if key else None)
        for i, d in enumerate(tx.documents)
    ]
    seen: dict[str, str] = {}
    for doc, item_key in zip(tx.documents, keys, strict=True):
        if item_key is None:
            continue
        if item_key in seen:
            raise FhirError.of(
                422,
                DUPLICATE,
                f"{doc.expression} repeats the identifier of {seen[item_key]}",
                f"{doc.expression}.masterIdentifier",
            )
        seen[item_key] = doc.expression
    plans: list[Planned] = []
    failures: list[FhirError] = []
    try:
        for doc, item_key in zip(tx.documents, keys, strict=True):
            try:
                plans.append(_plan(doc, item_key, actor=actor))
            except FhirError as exc:
                failures.append(exc)
        if failures:
            raise FhirError(min(f.status for f in failures), [i for f in failures for i in f.issues])
        _stage(plans)
        return _receive_all(plans, actor=actor, key=key, source=source)
    except BaseException as exc:
        # Objects this request published whose Blob rows the rollback took with it, and their intents.
        preservation.withdraw([f.staged for p in plans for f in p.item.files if f.staged is not None])
        if not isinstance(exc, _Abort):
            raise
        log.info(
            "FHIR transaction of %d documents rolled back: %s",
            len(plans),
            ", ".join(f"{i.code}@{i.expression}" for i in exc.error.issues),
        )
        raise exc.error from None
    finally:
        _discard(plans)


def _receive_all(plans: list[Planned], *, actor: User, key: str | None, source: str) -> list[Captured]:
    with transaction.atomic():
        result = receive([p.item for p in plans], actor=actor, channel=Channel.FHIR, source=source, key=key)
        problems = [p for p in (_check_outcome(plan, o) for plan, o in zip(plans, result.outcomes, strict=True)) if p]
        if problems:
            raise _Abort(FhirError(min(p.status for p in problems), [i for p in problems for i in p.issues]))
        captured = []
        for plan, outcome in zip(plans, result.outcomes, strict=True):
            assert outcome.record is not None
            if not outcome.replayed:
                _digests(plan)
                _finish_binaries([(row, outcome.record) for row in plan.binaries])
            captured.append(Captured(plan.draft, outcome.record, not outcome.replayed, outcome.intake))
    for plan, c in zip(plans, captured, strict=True):
        if not c.created:
            _release_binaries(plan.binaries)
        plan.binaries = []  # taken: nothing to release in `_discard`
    return captured


# --- SHA-1 for records captured elsewhere ------------------------------------------------------------


def digests_of(records: list[Record]) -> dict[str, str]:
    """{SHA-256: hex SHA-1} for the records' files, where known (their components are prefetched)."""
    wanted = {c.sha256 for record in records for c in record.components.all()}
    return dict(AttachmentDigest.objects.filter(sha256__in=wanted).values_list("sha256", "sha1"))


def backfill_digest(component: Component) -> str:
    """Compute a file's SHA-1 by reading it once, verifying size and SHA-256 in the same pass.

    A system read like a fixity check (recorded as a PREMIS digest calculation, not as a
    user's content read): only the digest leaves, and digests are metadata here."""
    sha1 = hashlib.sha1(usedforsecurity=False)
    sha256 = hashlib.sha256()
    size = 0
    for chunk in preservation.open_blob(component.blob):
        sha1.update(chunk)
        sha256.update(chunk)
        size += len(chunk)
    if size != component.size or sha256.hexdigest() != component.sha256:
        raise IntegrityFailure(
            gettext_lazy("The stored content of %(filename)s does not match the digest recorded for it."),
            code="digest_mismatch",
            filename=component.filename,
        )
    value = sha1.hexdigest()
    with transaction.atomic():
        _, created = AttachmentDigest.objects.get_or_create(
            sha256=component.sha256, defaults={"sha1": value, "source": AttachmentDigest.BACKFILL}
        )
        if created:
            preservation.note_event(
                PreservationEvent.MESSAGE_DIGEST_CALCULATION,
                outcome="success",
                blob=component.blob,
                component=component,
                detail=f"sha1 {value} (FHIR attachment.hash)",
            )
    return value


def backfill_digests(*, limit: int = 200) -> int:
    """The periodic job: SHA-1 for files captured through other channels, a batch per run."""
    todo = (
        Component.objects.exclude(sha256__in=AttachmentDigest.objects.values("sha256"))
        .exclude(record__state=RecordState.DISPOSED)
        .select_related("blob")
        .order_by("pk")[:limit]
    )
    done = 0
    for component in todo:
        try:
            backfill_digest(component)
        except (MedarchiveError, OSError) as exc:
            log.warning("SHA-1 of component %s not computed: %s", component.pk, exc)
            continue
        done += 1
    return done
