"""Batch and offline import (CAP-08): a carrier's manifest rows become intake items.

`import_carrier(path, actor=...)` reads the manifest, resolves each row's class, department and
retention (codes or their names), finds and hashes the row's files in the carrier, and hands the
rows to `capture.intake.receive` as one submission (channel 批量导入). A row that cannot go in
(missing file, path leaving the carrier, bad date, unknown class, 0-byte or oversized file …) is
reported 不合格 with its reason in the submission's report, and the other rows go on.

Idempotency: the submission key is `import:<manifest sha256>`; each row's key is
`import:<sha256 of its file(s)>:<class>:<department>`. Importing the same carrier again (or the
same files under another manifest into the same class and department) creates nothing twice:
those rows come back as already imported.

The register (移交接收登记表) is the submission: its report holds every row's outcome and the
manifest's name, SHA-256, size and columns. When the manifest declares totals (`#总件数`,
`#总字节数`) they are passed to `receive` as a `Register`, which refuses the whole submission when
the carrier does not match them (CAP-07). Without declared totals rows are received one by one,
so progress is per row and a stopped import resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy

from medarchive.archiving.models import ArchiveClass, RetentionRule
from medarchive.capture.batch.carrier import Carrier, Located, VerifiedReader, digest, message_of, open_carrier
from medarchive.capture.batch.manifest import Manifest, Row, read_manifest
from medarchive.capture.intake import Item, ItemOutcome, Register, RegisterMismatch, SubmissionResult, receive
from medarchive.capture.models import Channel, ReviewState, Submission
from medarchive.capture.services import Description, IncomingFile
from medarchive.core.errors import MedarchiveError, ValidationError
from medarchive.core.labels import with_labels
from medarchive.core.models import Department
from medarchive.core.services import ensure_fonds
from medarchive.security.models import User
from medarchive.security.permissions import require
from medarchive.security.roles import Action

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, phase)


class SizeMismatch(ValidationError):
    code = "size_mismatch"


class ChecksumMismatch(ValidationError):
    code = "checksum_mismatch"


@dataclass
class RowResult:
    row: int
    files: list[str]
    outcome: ItemOutcome

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "files": self.files, **self.outcome.as_dict()}


@dataclass
class ImportResult:
    carrier: str
    manifest: Manifest
    submission: Submission
    register: Register | None
    rows: list[RowResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.outcome.status == status)

    @property
    def failed(self) -> bool:
        return any(not r.outcome.ok for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier,
            "manifest": self.manifest.summary(),
            "submission_id": str(self.submission.pk),
            "rows": len(self.rows),
            "received": self.count("received"),
            "replayed": self.count("replayed"),
            "rejected": self.count("rejected"),
            "auto_accepted": sum(1 for r in self.rows if _auto_accepted(r.outcome)),
            "items": [r.as_dict() for r in self.rows],
        }


def _auto_accepted(outcome: ItemOutcome) -> bool:
    return outcome.status == "received" and outcome.intake is not None and outcome.intake.state == ReviewState.ACCEPTED


@dataclass
class Vocabulary:
    """Codes by their code or name, so a manifest may say 内科 or NK, 住院病案 or BA-ZY, 永久 or Y."""

    classes: dict[str, str]
    departments: dict[str, str]
    retentions: dict[str, str]

    @classmethod
    def load(cls) -> Vocabulary:
        fonds = ensure_fonds()
        classes = ArchiveClass.objects.filter(scheme__fonds=fonds, scheme__active=True).values_list("code", "name")
        departments = Department.objects.filter(active=True).values_list("code", "name")
        retentions = RetentionRule.objects.filter(table__fonds=fonds, table__active=True).values_list("code", "name")
        return cls(_lookup(classes), _lookup(departments), _lookup(retentions))

    def class_code(self, value: str) -> str:
        return self.classes.get(_fold(value), value.strip())

    def department(self, value: str) -> str:
        return self.departments.get(_fold(value), value.strip())

    def retention(self, value: str) -> str:
        found = self.retentions.get(_fold(value))
        if found is None and (years := re.fullmatch(r"(?:定期)?(\d+)年", _fold(value))):
            found = self.retentions.get(_fold(f"D{years.group(1)}"))
        return found or value.strip()


def _fold(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().casefold()


def _lookup(pairs: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    names: dict[str, list[str]] = {}
    for code, name in pairs:
        found[_fold(code)] = code
        names.setdefault(_fold(name), []).append(code)
    for name, codes in names.items():
        if len(codes) == 1:  # an ambiguous name resolves to nothing; the code must be used
            found.setdefault(name, codes[0])
    return found


@dataclass(frozen=True)
class Defaults:
    class_code: str = ""
    department_code: str = ""


def import_carrier(
    path: Path,
    *,
    actor: User,
    defaults: Defaults | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a carrier (folder, manifest file or .zip). Raises only for the carrier as a whole
    (unreadable manifest, unsafe zip, register mismatch); rows fail one by one."""
    require(actor, Action.RECORD_CREATE)
    with open_carrier(path) as carrier:
        manifest = read_manifest(carrier.manifest_bytes(), name=carrier.manifest_name)
        return _import(carrier, manifest, actor=actor, defaults=defaults or Defaults(), progress=progress)


def _import(
    carrier: Carrier, manifest: Manifest, *, actor: User, defaults: Defaults, progress: Progress | None
) -> ImportResult:
    vocabulary = Vocabulary.load()
    register = Register(manifest.declared.item_count, manifest.declared.total_bytes) if manifest.declared.any else None
    source = f"{carrier.name}/{manifest.name}" if carrier.kind == "zip" else manifest.name
    key = f"import:{manifest.sha256}"
    total = len(manifest.rows)

    def report(done: int, phase: str) -> None:
        if progress is not None:
            progress(done, total, phase)

    planned: list[tuple[Row, Item]] = []
    results: list[RowResult] = []
    submission: Submission | None = None
    try:
        for done, row in enumerate(manifest.rows, start=1):
            item = _plan(row, carrier, vocabulary, defaults)
            planned.append((row, item))
            if register is not None:
                report(done, "checking")
                continue
            one = receive([item], actor=actor, channel=Channel.IMPORT, source=source, key=key)
            close_streams(item)
            submission = one.submission
            results.append(RowResult(row.number, row.files, one.outcomes[0]))
            report(done, "importing")
        if register is not None:
            try:
                received = receive(
                    [item for _, item in planned],
                    actor=actor,
                    channel=Channel.IMPORT,
                    source=source,
                    key=key,
                    register=register,
                )
            except RegisterMismatch as exc:
                _note_manifest(str(exc.details.get("submission_id", "")), carrier, manifest)
                _explain(exc, planned)
                raise
            submission = received.submission
            results = _row_results(planned, received)
            report(total, "importing")
    finally:
        for _, item in planned:
            close_streams(item)
    if submission is None:  # cannot happen: read_manifest refuses a manifest without rows
        raise ValidationError(
            gettext_lazy("The manifest %(manifest)s has no records."),
            code="manifest_no_records",
            field="manifest",
            manifest=manifest.name,
        )
    _note_manifest(str(submission.pk), carrier, manifest)
    submission.refresh_from_db()
    log.info(
        "import %s: %d rows, %d rejected (submission %s)",
        manifest.sha256[:12],
        len(results),
        sum(1 for r in results if not r.outcome.ok),
        submission.pk,
    )
    return ImportResult(carrier.name, manifest, submission, register, results)


SHOWN_UNCOUNTED = 5  # rows named in the message; the details hold them all


def _explain(exc: RegisterMismatch, planned: list[tuple[Row, Item]]) -> None:
    """Name the rows whose files could not be counted: usually why the totals differ. The message
    stays a catalog template, read in the language active when it is shown."""
    uncounted = [
        with_labels(gettext_lazy("Row %(row)s: %(problem)s"), row=row.number, problem=message_of(incoming.error))
        for row, item in planned
        for incoming in item.files
        if incoming.error is not None
    ]
    if not uncounted:
        return
    mismatch = MedarchiveError(exc.template, code=exc.code, **exc.details)  # the message as it was
    rows = _joined(uncounted[:SHOWN_UNCOUNTED])
    if len(uncounted) > SHOWN_UNCOUNTED:
        exc.message = with_labels(
            gettext_lazy("%(mismatch)s Rows not counted (the first %(shown)s of %(uncounted)s): %(rows)s"),
            mismatch=message_of(mismatch),
            rows=rows,
        )
        exc.details["shown"] = SHOWN_UNCOUNTED
    else:
        exc.message = with_labels(
            gettext_lazy("%(mismatch)s Rows not counted: %(rows)s"), mismatch=message_of(mismatch), rows=rows
        )
    exc.details["uncounted"] = len(uncounted)
    exc.details["unreadable_rows"] = [str(row) for row in uncounted]


def _joined(parts: list[Promise]) -> Promise:
    return cast(Promise, lazy(lambda: " ".join(str(p) for p in parts), str)())


def _row_results(planned: list[tuple[Row, Item]], received: SubmissionResult) -> list[RowResult]:
    return [
        RowResult(row.number, row.files, outcome) for (row, _), outcome in zip(planned, received.outcomes, strict=True)
    ]


def close_streams(item: Item) -> None:
    for incoming in item.files:
        if incoming.stream is not None and not incoming.stream.closed:
            incoming.stream.close()


def row_label(row: Row) -> str:
    return f"row {row.number}: {'; '.join(row.files) or '(no file)'}"[:200]


def describe(row: Row, vocabulary: Vocabulary, defaults: Defaults) -> Description:
    """The row's description; names of classes, departments and retention terms become codes."""
    f = row.fields
    return Description(
        class_code=vocabulary.class_code(f.get("subclass") or f.get("class_code") or defaults.class_code),
        department_code=vocabulary.department(f.get("department_code") or defaults.department_code),
        title=f.get("title", ""),
        date=f.get("date", ""),
        responsible=f.get("responsible", ""),
        doc_number=f.get("doc_number", ""),
        security_level=f.get("security_level") or "内部",
        retention=vocabulary.retention(f["retention"]) if f.get("retention") else None,
        open_status=f.get("open_status") or "未审核",
        organization=f.get("organization") or None,
        metadata=dict(row.metadata),
    )


def _class_conflict(row: Row, vocabulary: Vocabulary) -> ValidationError | None:
    main, sub = row.fields.get("class_code"), row.fields.get("subclass")
    if not main or not sub:
        return None
    main_code, sub_code = vocabulary.class_code(main), vocabulary.class_code(sub)
    if sub_code == main_code or sub_code.startswith(f"{main_code}-"):
        return None
    return ValidationError(
        gettext_lazy(
            "门类 %(class_code)s and 分类号 %(subclass)s disagree: the 分类号 must be the 门类 itself or one of its "
            "subclasses; correct one of the two cells."
        ),
        code="class_subclass_mismatch",
        field="class",
        class_code=main,
        subclass=sub,
    )


def row_problem(row: Row, vocabulary: Vocabulary) -> ValidationError | None:
    """What the capture service cannot see: a bad size or digest cell, 门类 and 分类号 that disagree.
    (An empty or unknown class, department or date is named by the capture service itself.)"""
    return row.problem or _class_conflict(row, vocabulary)


def _plan(row: Row, carrier: Carrier, vocabulary: Vocabulary, defaults: Defaults) -> Item:
    """The intake item of one row. A row that cannot go in still becomes an item: its file carries
    the reason, so `receive` reports it 不合格 in the register like any other failure."""
    description = describe(row, vocabulary, defaults)
    label = row_label(row)
    problem = row_problem(row, vocabulary)
    if problem is not None:
        return refused_item(row, description, label, problem)
    try:
        located = [carrier.locate(raw) for raw in row.files]
        digests = check_files(row, located)
    except MedarchiveError as exc:
        return refused_item(row, description, label, exc)
    files = [
        IncomingFile(name=found.name, stream=VerifiedReader.open(found, sha), created=found.created)
        for found, sha in zip(located, digests, strict=True)
    ]
    present = [d for d in digests if d]
    key = None
    if present and len(present) == len(digests):
        content = present[0] if len(present) == 1 else hashlib.sha256("\n".join(present).encode()).hexdigest()
        key = f"import:{content}:{description.class_code}:{description.department_code}"
    return Item(description=description, files=files, key=key, label=label)


def check_files(row: Row, located: list[Located]) -> list[str | None]:
    """Hash each file (the idempotency key) and compare with what the manifest declares. Empty and
    oversized files are not hashed: capture refuses them with its own reason."""
    limit = settings.CONFIG.max_upload_bytes
    total = sum(f.size for f in located)
    if row.size is not None and row.size != total:
        raise SizeMismatch(
            gettext_lazy(
                "The manifest declares %(declared_bytes)s bytes for this row, but its files in the carrier hold "
                "%(actual_bytes)s; correct the size cell or put the right files in the carrier."
            ),
            code="size_mismatch",
            field="size",
            declared_bytes=row.size,
            actual_bytes=total,
        )
    digests: list[str | None] = [digest(f) if 0 < f.size <= limit else None for f in located]
    for found, declared, actual in zip(located, row.sha256, digests, strict=False):
        if actual is not None and declared != actual:
            raise ChecksumMismatch(
                gettext_lazy(
                    "The SHA-256 of %(path)s is %(actual)s, but the manifest declares %(declared)s: the file in the "
                    "carrier is not the one the manifest describes."
                ),
                code="checksum_mismatch",
                field="sha256",
                path=found.path,
                actual=actual,
                declared=declared,
            )
    return digests


def refused_item(row: Row, description: Description, label: str, problem: MedarchiveError, *, name: str = "") -> Item:
    """An item that `receive` reports 不合格 with `problem` as its reason (nothing is read or written)."""
    # Capture prefixes the reason with this name; the row number reads best in the register.
    name = name or f"row-{row.number}"
    return Item(description=description, files=[IncomingFile(name=name, error=problem)], key=None, label=label)


def _note_manifest(submission_id: str, carrier: Carrier, manifest: Manifest) -> None:
    """Keep the manifest's identity in the register: its name, SHA-256, size and column mapping."""
    if not submission_id:
        return
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_id).first()
        if submission is None:
            return
        submission.report = {
            **(submission.report or {}),
            "manifest": {**manifest.summary(), "carrier": carrier.name, "carrier_kind": carrier.kind},
        }
        submission.save(update_fields=["report"])
