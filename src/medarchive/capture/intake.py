"""The door every record comes through: one submission, many records, each checked and routed.

Every connector (REST, web, batch import, watched folder, HL7, FHIR, DICOM) builds `Item`s and
calls `receive`. For each item, in the record's own transaction: the record is captured
(登记), received (接收, state 已提交), checked against the class's rules (检测) and either
auto-accepted or left in the review queue. A bad item is reported 不合格 with its reason and
leaves nothing behind; the others go on. A declared register (归档登记表) that does not match
what arrived fails the whole submission before any record is written (CAP-07).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy

from medarchive.archiving.models import Component, Record, RecordState
from medarchive.archiving.services import missing_mandatory, record_step
from medarchive.capture import identity, quality, textprint
from medarchive.capture.models import Channel, IdempotencyKey, Intake, ReviewState, Submission, TextFingerprint
from medarchive.capture.services import Description, FileContent, IncomingFile, create_record, prestage
from medarchive.capture.signals import intake_changed
from medarchive.core import clock
from medarchive.core.errors import Conflict, InternalError, MedarchiveError, ValidationError
from medarchive.preservation.services import open_blob
from medarchive.security.models import User
from medarchive.security.roles import Action

log = logging.getLogger(__name__)


@dataclass
class Item:
    """One record to capture: its description, files and the caller's idempotency key.

    `identity` says what the content digest covers (capture/identity.py): the description and the
    files, or the files only. `acknowledged`: the sender was told "stored" before the door saw the
    item (a DICOM Success), so a reused identifier cannot be refused: the content is kept as a new
    record held in the review queue with the finding `identifier_reused`."""

    description: Description
    files: list[IncomingFile]
    key: str | None = None
    label: str = ""  # how the sender names it: row 7, MSH-10, a file name
    identity: str = identity.ALL
    acknowledged: bool = False
    earlier_keys: tuple[str, ...] = ()  # what the connector keyed the same message by before (looked up too)


@dataclass(frozen=True)
class Register:
    """归档登记表: what the sender says it is sending (CAP-07)."""

    item_count: int | None = None
    total_bytes: int | None = None


class RegisterMismatch(ValidationError):
    code = "register_mismatch"


class IdentifierReused(Conflict):
    """The sender's identifier was used before for other content: a different message, not a retry."""

    code = "identifier_reused"


class RequestReused(Conflict):
    """A submission's idempotency key was used before for a different request."""

    code = "idempotency_key_reused"


@dataclass
class ItemOutcome:
    label: str
    record: Record | None = None
    intake: Intake | None = None
    error: MedarchiveError | None = None
    replayed: bool = False  # the key was used before: `record` is the earlier record

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "status": self.status}
        if self.record is not None:
            out |= {"record_id": str(self.record.pk), "electronic_no": self.record.electronic_no}
        if self.intake is not None:
            out |= {"review": str(self.intake.state), "errors": self.intake.errors, "warnings": self.intake.warnings}
        if self.error is not None:
            out["problem"] = self.error.as_problem()
        return out

    @property
    def status(self) -> str:
        if self.error is not None:
            return "rejected"  # 不合格
        return "replayed" if self.replayed else "received"


@dataclass
class SubmissionResult:
    submission: Submission
    outcomes: list[ItemOutcome] = field(default_factory=list)

    @property
    def received(self) -> list[ItemOutcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def rejected(self) -> list[ItemOutcome]:
        return [o for o in self.outcomes if not o.ok]


def receive(
    items: list[Item],
    *,
    actor: User,
    channel: Channel | str,
    source: str = "",
    key: str | None = None,
    register: Register | None = None,
    digest: str = "",
) -> SubmissionResult:
    """Capture a submission. Raises `RegisterMismatch` (nothing written but the failed
    submission and its report) when a register is given and does not match, and `RequestReused`
    (nothing written) when `key` was used before for a request whose `digest` was another."""
    try:
        sizes = _stage_items(items)
        submission = _open_submission(actor, Channel(channel), source, key, register, digest=digest)
        if register is not None:
            _check_register(submission, register, items, sizes)
        outcomes = [_receive_item(item, submission, actor) for item in items]
    finally:
        for item in items:
            for incoming in item.files:
                if incoming.staged is not None and incoming.staged.created is None:
                    incoming.discard()
    _close_submission(submission, outcomes)
    return SubmissionResult(submission, outcomes)


def _stage_items(items: list[Item]) -> list[int | None]:
    """Encrypt+hash every streamed file now, so the register can be checked before anything is
    written. A file that cannot be staged (empty, too large) fails its item, not the batch."""
    sizes: list[int | None] = []
    for item in items:
        total: int | None = 0
        for incoming in item.files:
            try:
                size = prestage(incoming)
            except MedarchiveError as exc:
                incoming.error = exc
                total = None
                break
            total = (total or 0) + size
        sizes.append(total)
    return sizes


def _open_submission(
    actor: User, channel: Channel, source: str, key: str | None, register: Register | None, *, digest: str
) -> Submission:
    if key is not None:
        existing = Submission.objects.filter(created_by=actor, key=key).first()
        if existing is not None:
            return _retried(existing, digest)  # a retry: items already captured answer as replayed
    try:
        with transaction.atomic():
            return Submission.objects.create(
                channel=channel,
                source=source[:200],
                key=key,
                digest=digest,
                created_by=actor,
                declared_count=register.item_count if register else None,
                declared_bytes=register.total_bytes if register else None,
            )
    except IntegrityError:  # a concurrent retry with the same key won
        return _retried(Submission.objects.get(created_by=actor, key=key), digest)


def _retried(existing: Submission, digest: str) -> Submission:
    if digest and existing.digest and digest != existing.digest:
        raise reused_request(existing)
    return existing


def reused_request(existing: Submission) -> RequestReused:
    return RequestReused(
        gettext_lazy(
            "The idempotency key %(key)s was already used for submission %(submission_id)s with a different "
            "request; send a new request under a new key."
        ),
        field="Idempotency-Key",
        key=existing.key or "",
        submission_id=str(existing.pk),
    )


def _check_register(submission: Submission, register: Register, items: list[Item], sizes: list[int | None]) -> None:
    problems = []
    actual_bytes = sum(s or 0 for s in sizes)
    count_differs = register.item_count is not None and register.item_count != len(items)
    bytes_differ = register.total_bytes is not None and register.total_bytes != actual_bytes
    if count_differs:
        problems.append(f"总件数不符 item count: declared {register.item_count}, received {len(items)}")
    if bytes_differ:
        problems.append(f"总字节数不符 total bytes: declared {register.total_bytes}, received {actual_bytes}")
    if not problems:
        return
    submission.state = Submission.REJECTED
    submission.key = None  # the key is free again: a corrected retry is a new submission
    submission.report = {
        "register": {
            "declared_count": register.item_count,
            "declared_bytes": register.total_bytes,
            "received_count": len(items),
            "received_bytes": actual_bytes,
        },
        "problems": problems,
    }
    submission.save(update_fields=["state", "key", "report"])
    if count_differs and bytes_differ:
        template = gettext_lazy(
            "The register declares %(declared_count)s records of %(declared_bytes)s bytes in all, but "
            "%(received_count)s records of %(received_bytes)s bytes arrived: nothing was archived. Correct the "
            "register or the submission and send it again."
        )
    elif count_differs:
        template = gettext_lazy(
            "The register declares %(declared_count)s records, but %(received_count)s arrived: nothing was "
            "archived. Correct the register or the submission and send it again."
        )
    else:
        template = gettext_lazy(
            "The register declares %(declared_bytes)s bytes in all, but %(received_bytes)s bytes arrived: nothing "
            "was archived. Correct the register or the submission and send it again."
        )
    raise RegisterMismatch(
        template,
        code="register_mismatch",
        field="register",
        submission_id=str(submission.pk),
        problems=problems,
        declared_count=register.item_count,
        received_count=len(items),
        declared_bytes=register.total_bytes,
        received_bytes=actual_bytes,
    )


def _receive_item(item: Item, submission: Submission, actor: User) -> ItemOutcome:
    outcome = ItemOutcome(label=item.label)
    try:
        key = _checked_key(item.key)
        digest = _digest(item)
        if key is not None:
            earlier = next(filter(None, (_earlier(k, actor) for k in (key, *item.earlier_keys))), None)
            if earlier is not None:
                return _again(item, outcome, earlier, digest, submission=submission, actor=actor)
        return _capture(item, outcome, submission, actor, key=key, digest=digest)
    except MedarchiveError as exc:
        log.info("submission %s: %s rejected: %s", submission.pk, item.label or "item", exc.message)
        outcome.error = exc
        return outcome
    except Exception:
        # Nothing of the item was kept (create_record's transaction and blob release saw to that);
        # one item's failure must not abort the others nor leave the register unwritten.
        log.exception("submission %s: %s failed unexpectedly", submission.pk, item.label or "item")
        outcome.error = InternalError(
            gettext_lazy("The record could not be captured because of an internal error: send it again."),
            code="internal_error",
        )
        return outcome


def _capture(
    item: Item,
    outcome: ItemOutcome,
    submission: Submission,
    actor: User,
    *,
    key: str | None,
    digest: str | None,
    arrival: list[quality.Finding] | None = None,
) -> ItemOutcome:
    """Write the record; its key (with the content digest) in the same transaction."""

    def on_write(record: Record, components: list[Component], prints: list[tuple[int, int] | None]) -> None:
        if key is not None:
            IdempotencyKey.objects.create(key=key, record=record, created_by=actor, digest=digest or "")
        _route(record, components, prints, submission=submission, label=item.label, actor=actor, arrival=arrival)

    try:
        record = create_record(item.description, item.files, actor=actor, prepare=text_prints, on_write=on_write)
    except IntegrityError:
        # Only the key's unique constraint can clash here: a concurrent arrival under the same key won.
        earlier = _earlier(key, actor) if key is not None else None
        if earlier is None:
            raise
        return _again(item, outcome, earlier, digest, submission=submission, actor=actor)
    outcome.record, outcome.intake = record, record.intake
    return outcome


def _checked_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200 or any(ord(c) < 32 for c in key):
        raise ValidationError(
            gettext_lazy("The idempotency key must be 1 to 200 characters without control characters."),
            code="invalid_idempotency_key",
            field="idempotency_key",
        )
    return key


def _earlier(key: str, actor: User) -> IdempotencyKey | None:
    return IdempotencyKey.objects.filter(key=key, created_by=actor).select_related("record").first()


def _digest(item: Item) -> str | None:
    """The item's content digest, or None when a file could not be staged (the item fails on it)."""
    files = []
    for incoming in item.files:
        if incoming.staged is None or incoming.error is not None:
            return None
        files.append((incoming.name, incoming.role, incoming.staged.sha256))
    described = None if item.identity == identity.FILES else dataclasses.asdict(item.description)
    return identity.content_digest(described, files)


def _again(
    item: Item,
    outcome: ItemOutcome,
    earlier: IdempotencyKey,
    digest: str | None,
    *,
    submission: Submission,
    actor: User,
) -> ItemOutcome:
    """The key was used before: a retransmission answers with the earlier record, nothing redone;
    other content under the same key is refused, or kept and held when it was already acknowledged."""
    broken = next((f.error for f in item.files if f.error is not None), None)
    if broken is not None:
        raise broken  # the retry did not carry its content: say so rather than answer for the earlier one
    if digest is None:
        raise InternalError(
            gettext_lazy("The record's files could not be prepared for storage: send the record again."),
            code="files_not_staged",
        )
    if _same(earlier, digest, item):
        outcome.record, outcome.replayed = earlier.record, True
        outcome.intake = Intake.objects.filter(record=earlier.record).first()
        return outcome
    record = earlier.record
    log.warning(
        "submission %s: %s reuses the identifier of record %s with other content",
        submission.pk,
        item.label or "item",
        record.electronic_no,
    )
    if not item.acknowledged:
        raise IdentifierReused(
            gettext_lazy(
                "The identifier %(key)s was already used for record %(record)s with other content (a different "
                "description or different files): a new document needs a new identifier."
            ),
            field="idempotency_key",
            key=earlier.key,
            record=record.electronic_no,
            record_id=str(record.pk),
        )
    # Already acknowledged: keep it under its own key (a retransmission of *this* content replays it).
    own = identity.derived_key(earlier.key, digest)
    again = _earlier(own, actor)
    if again is not None:
        return _again(item, outcome, again, digest, submission=submission, actor=actor)
    finding = quality.identifier_reused(earlier.key, record.electronic_no, str(record.pk))
    return _capture(item, outcome, submission, actor, key=own, digest=digest, arrival=[finding])


def _same(earlier: IdempotencyKey, digest: str, item: Item) -> bool:
    if earlier.digest:
        return earlier.digest == digest
    # A key kept before digests were: only the files can be compared.
    before = earlier.record.components.values_list("sha256", flat=True)
    return identity.same_files(before, (f.staged.sha256 for f in item.files if f.staged is not None))


def _close_submission(submission: Submission, outcomes: list[ItemOutcome]) -> None:
    """Store the register: one entry per item label, the latest outcome winning (a re-run that
    fixes a 不合格 row replaces it; a replay keeps what was received)."""
    received = [o for o in outcomes if o.ok and not o.replayed and o.record is not None]
    new_bytes = sum(
        size for o in received if o.record is not None for size in o.record.components.values_list("size", flat=True)
    )
    with transaction.atomic():  # a concurrent retry of the same submission must not lose entries
        row = Submission.objects.select_for_update().get(pk=submission.pk)
        report = dict(row.report or {})
        items: list[dict[str, Any]] = list(report.get("items", []))
        where = {item["label"]: n for n, item in enumerate(items) if item.get("label")}
        for outcome in outcomes:
            entry = outcome.as_dict()
            n = where.get(outcome.label) if outcome.label else None
            if n is None:
                if outcome.label:
                    where[outcome.label] = len(items)
                items.append(entry)
            elif not outcome.replayed or items[n]["status"] == "rejected":
                items[n] = entry
        report["items"] = items
        row.report = report
        row.received_count = sum(1 for i in items if i["status"] == "received")
        row.failed_count = sum(1 for i in items if i["status"] == "rejected")
        row.received_bytes += new_bytes
        row.save(update_fields=["report", "received_count", "received_bytes", "failed_count"])
    submission.refresh_from_db()


def _route(
    record: Record,
    components: list[Component],
    prints: list[tuple[int, int] | None],
    *,
    submission: Submission,
    label: str,
    actor: User,
    arrival: list[quality.Finding] | None = None,
) -> None:
    """Inside the record's transaction: receive it, check it, accept it when the class allows."""
    record.state = RecordState.SUBMITTED
    record.save(update_fields=["state", "updated_at"])
    intake = Intake.objects.create(
        record=record,
        submission=submission,
        label=label[:200],
        arrival_findings=[f.as_dict() for f in arrival or []],
    )
    record_step(
        record,
        Action.RECORD_SUBMIT,
        actor=actor,
        verb="提交",
        basis=f"{submission.get_channel_display()} {submission.source}".strip()[:200],
        description=f"提交批次 {submission.pk}",
        details={"submission": str(submission.pk), "channel": submission.channel},
    )
    _store_prints(components, prints)
    check(record, intake, actor=actor)
    intake_changed.send(sender=Intake, intake=intake, step="received")


def _text_print(content: FileContent) -> tuple[int, int] | None:
    """(SimHash, characters) of a file's text, or None when it has no text worth comparing."""
    mime = content.mime
    if content.size > textprint.MAX_BYTES or mime not in textprint.TEXT_TYPES | {"application/pdf", textprint.DOCX}:
        return None
    data = b"".join(content.read())
    try:
        text = textprint.normalize(textprint.extract(mime, data))
    except Exception:  # a file its parser chokes on has no comparable text; capture goes on
        log.warning("text of a %s file could not be read for the near-duplicate check", mime, exc_info=True)
        return None
    value = textprint.simhash(text)
    return None if value is None else (value, len(text))


def text_prints(files: list[FileContent]) -> list[tuple[int, int] | None]:
    """Read back and fingerprint each file: before the record transaction, so the write lock is not held."""
    return [_text_print(content) for content in files]


def _store_prints(components: list[Component], prints: list[tuple[int, int] | None]) -> None:
    rows = []
    for component, found in zip(components, prints, strict=True):
        if found is None:
            continue
        value, characters = found
        b0, b1, b2, b3 = textprint.bands(value)
        rows.append(
            TextFingerprint(
                component=component,
                simhash=textprint.to_signed(value),
                band0=b0,
                band1=b1,
                band2=b2,
                band3=b3,
                characters=characters,
            )
        )
    TextFingerprint.objects.bulk_create(rows)


def fingerprint(components: list[Component]) -> None:
    """Fingerprint files already linked to a record (a draft submitted later)."""
    contents = [FileContent(c.mime_type, c.size, functools.partial(open_blob, c.blob)) for c in components]
    _store_prints(components, text_prints(contents))


def _duplicates(record: Record, components: list[Component]) -> list[quality.Finding]:
    """Exact duplicates by digest, near duplicates by text fingerprint: a few queries per record,
    whatever its number of files."""
    live = Q(record__state=RecordState.WITHDRAWN) | Q(record=record)
    twins = {
        c.sha256: c.record
        for c in Component.objects.filter(sha256__in={c.sha256 for c in components})
        .exclude(live)
        .select_related("record")
    }
    prints = {p.component_id: p for p in TextFingerprint.objects.filter(component__in=components)}
    found: list[quality.Finding] = []
    for component in components:
        twin = twins.get(component.sha256)
        if twin is not None:
            found.append(
                quality.Finding(
                    "duplicate",
                    quality.ERROR,
                    f"{component.filename}: identical content is already in record {twin.electronic_no}",
                    field="files",
                    params=(("file", component.filename), ("record", twin.electronic_no), ("record_id", str(twin.pk))),
                )
            )
            continue  # the bytes are the same: a near-duplicate finding would say nothing more
        mine = prints.get(component.pk)
        near = _near_duplicate(mine, record) if mine is not None else None
        if near is not None:
            other, bits = near
            found.append(
                quality.Finding(
                    "near_duplicate",
                    quality.WARNING,
                    f"{component.filename}: text is nearly identical to record {other.electronic_no}"
                    f" ({bits} of 64 bits differ)",
                    field="files",
                    params=(
                        ("file", component.filename),
                        ("record", other.electronic_no),
                        ("record_id", str(other.pk)),
                        ("bits", str(bits)),
                    ),
                )
            )
    return found


def _near_duplicate(mine: TextFingerprint, record: Record) -> tuple[Record, int] | None:
    same_band = Q(band0=mine.band0) | Q(band1=mine.band1) | Q(band2=mine.band2) | Q(band3=mine.band3)
    candidates = (
        TextFingerprint.objects.filter(same_band)
        .exclude(component__record=record)
        .exclude(component__record__state=RecordState.WITHDRAWN)
        .select_related("component__record")[:200]
    )
    best: tuple[Record, int] | None = None
    for other in candidates:
        bits = textprint.distance(mine.simhash, other.simhash)
        if bits <= textprint.NEAR_BITS and (best is None or bits < best[1]):
            best = (other.component.record, bits)
    return best


def _finding(stored: dict[str, Any]) -> quality.Finding:
    params = tuple((str(k), str(v)) for k, v in (stored.get("params") or {}).items())
    return quality.Finding(
        stored.get("rule", ""),
        stored.get("severity", quality.ERROR),
        stored.get("message", ""),
        field=stored.get("field", ""),
        params=params,
    )


def check(record: Record, intake: Intake, *, actor: User) -> list[quality.Finding]:
    """Run every rule on the record as it stands; store the findings; auto-accept when clean and
    allowed. Call inside the record's transaction."""
    rules = record.archive_class.intake_rules or {}
    components = list(record.components.all())
    files = [quality.FileFacts(c.filename, c.size, c.mime_type, c.format_name) for c in components]
    findings = [
        *quality.mandatory(missing_mandatory(record)),
        *quality.formats(rules, record.archive_class.code, files),
        *quality.sizes(rules, files),
        *quality.dates(rules, record.date, record.metadata, clock.today()),
        *_duplicates(record, components),
        *(_finding(f) for f in intake.arrival_findings),
    ]
    intake.findings = [f.as_dict() for f in findings]
    intake.errors = sum(1 for f in findings if f.severity == quality.ERROR)
    intake.warnings = len(findings) - intake.errors
    intake.checked_at = clock.now()
    intake.save(update_fields=["findings", "errors", "warnings", "checked_at"])
    record_step(
        record,
        Action.RECORD_SUBMIT,
        actor=actor,
        verb="检测",
        description=("质量检查通过" if not findings else f"质量检查: {intake.errors} 项错误, {intake.warnings} 项警告"),
        details={"errors": intake.errors, "warnings": intake.warnings, "rules": sorted({f.rule for f in findings})},
    )
    if quality.auto_accepts(rules, findings):
        record.state = RecordState.ACCEPTED
        record.save(update_fields=["state", "updated_at"])
        intake.state = ReviewState.ACCEPTED
        intake.reviewed_at = clock.now()
        intake.save(update_fields=["state", "reviewed_at"])
        record_step(
            record,
            Action.RECORD_ACCEPT,
            actor=actor,
            verb="接收",
            basis="自动接收: 质量检查全部通过",
            details={"auto": True},
        )
    return findings
