"""The manifest of an offline carrier: a CSV or XLSX table, one row per record (CAP-08). Pure logic.

`read_manifest(data, name=...)` turns the bytes into `Row`s: description fields, metadata and the
relative paths of the row's files. Nothing here touches the database or the file system; the
importer resolves class, department and retention names and finds the files.

Accepted input:
- CSV in UTF-8 (with or without BOM), GB18030 (and so GBK/GB2312) or UTF-16 with BOM; comma or tab
  separated. XLSX: the first worksheet, read with openpyxl in read-only mode.
- The first row that is not a `#` row is the header. Headers are matched after NFKC folding, case
  folding and dropping spaces, `_-*·:.` and any parenthesised note, so `*题名（必填）`, `Title` and
  `title` are the same column. Chinese and English names are listed in `ALIASES`; every key of the
  record metadata schema is accepted by its key and its Chinese title (患者标识 → patient_id), and
  `meta.KEY` gives any other metadata key. Unknown columns are reported, not stored.
- A row whose first cell starts with `#` is not a record: `#总件数` and `#总字节数` (or `#items`,
  `#bytes`) declare the register (移交接收登记表) the carrier claims; other `#` rows are comments.
- Several files of one record are separated by `;` (or `；`) in the file column.

Every failure of the manifest as a whole raises `ManifestError` naming the row or column; a
problem of one row is kept on that row (`Row.problem`) so the others still go in.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy

from medarchive.archiving import metadata as metadata_schema
from medarchive.core.errors import ValidationError

MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MAX_XLSX_EXPANDED = 512 * 1024 * 1024  # sheets are zipped XML: refuse a workbook that inflates past this
MAX_ROWS = 100_000
MAX_COLUMNS = 256
FILE_SEPARATORS = re.compile(r"[;；]")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

# Description fields, the file list and the carrier checks. Keys are targets, values their names.
ALIASES: dict[str, tuple[str, ...]] = {
    "title": ("题名", "标题", "文件题名", "title"),
    "responsible": ("责任者", "责任人", "作者", "responsible", "author"),
    "date": ("日期", "文件日期", "形成日期", "成文日期", "文件形成日期", "date"),
    "class_code": ("门类", "门类代码", "class", "classcode", "category"),
    "subclass": ("分类号", "分类", "分类代码", "类别", "类别号", "类目", "subclass"),
    "department_code": ("部门", "部门代码", "科室", "科室代码", "机构", "department", "departmentcode", "dept"),
    "doc_number": ("文号", "文件编号", "发文字号", "docnumber", "docno"),
    "security_level": ("密级", "securitylevel", "security"),
    "retention": ("保管期限", "保管期限代码", "retention"),
    "open_status": ("开放状态", "开放标识", "openstatus"),
    "organization": ("机构问题代码", "organization"),
    "files": ("文件", "文件名", "电子文件", "电子文件名", "文件路径", "路径", "file", "files", "filename", "path"),
    "size": ("字节数", "文件大小", "大小", "文件字节数", "size", "bytes"),
    "sha256": ("sha256", "sha256值", "哈希值", "校验值"),
}

# Common names for metadata keys beyond the schema's own titles.
METADATA_ALIASES: dict[str, tuple[str, ...]] = {
    "patient_id": ("患者id", "患者编号", "病人id", "患者标识号"),
    "patient_name": ("病人姓名", "姓名"),
    "admission_no": ("住院号码",),
    "diagnosis": ("主要诊断", "出院诊断"),
    "icd10": ("icd10编码", "疾病编码"),
    "contract_no": ("合同号",),
    "keywords": ("主题词",),
    "note": ("备注",),
    "pages": ("页码数",),
}
NOT_FROM_MANIFEST = frozenset({"original_filenames"})  # set by capture itself

DECLARATIONS = {
    "总件数": "item_count",
    "件数": "item_count",
    "items": "item_count",
    "itemcount": "item_count",
    "总字节数": "total_bytes",
    "totalbytes": "total_bytes",
    "bytes": "total_bytes",
}


class ManifestError(ValidationError):
    """The manifest as a whole cannot be used (unreadable, no header, no file column …)."""

    code = "bad_manifest"


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    target: str  # a key of ALIASES, or "metadata.KEY"


@dataclass
class Row:
    number: int  # as a spreadsheet shows it: the header row of a plain table is row 1
    fields: dict[str, str] = field(default_factory=dict)  # non-empty description fields
    metadata: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # relative paths as written
    size: int | None = None  # declared bytes of the row's files together
    sha256: list[str] = field(default_factory=list)  # declared digests, one per file
    problem: ValidationError | None = None  # why the row cannot go in as read


@dataclass(frozen=True)
class Declared:
    item_count: int | None = None
    total_bytes: int | None = None

    @property
    def any(self) -> bool:
        return self.item_count is not None or self.total_bytes is not None


@dataclass
class Manifest:
    name: str
    sha256: str
    size: int
    format: str  # csv | xlsx
    encoding: str | None
    columns: list[Column]
    ignored: list[str]  # headers that map to nothing
    rows: list[Row]
    declared: Declared

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "bytes": self.size,
            "format": self.format,
            "encoding": self.encoding,
            "rows": len(self.rows),
            "columns": {c.header: c.target for c in self.columns},
            "ignored_columns": self.ignored,
            "declared": {"item_count": self.declared.item_count, "total_bytes": self.declared.total_bytes},
        }


def normalize_header(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\(.*?\)|\[.*?\]|【.*?】", "", text)
    return re.sub(r"[\s_\-*·:.]", "", text)


def _header_map() -> dict[str, str]:
    mapping: dict[str, str] = {}
    properties = metadata_schema.schema()["properties"]
    for key, spec in properties.items():
        if key in NOT_FROM_MANIFEST:
            continue
        for name in (key, spec.get("title", ""), *METADATA_ALIASES.get(key, ())):
            if name:
                mapping.setdefault(normalize_header(name), f"metadata.{key}")
    for target, names in ALIASES.items():  # description fields win over a metadata title
        for name in names:
            mapping[normalize_header(name)] = target
    return mapping


def _date_keys() -> frozenset[str]:
    properties = metadata_schema.schema()["properties"]
    return frozenset(k for k, v in properties.items() if v.get("format") == "date" or k.endswith("_date"))


HEADERS = _header_map()
DATE_KEYS = _date_keys()


def target_of(header: str) -> str | None:
    raw = unicodedata.normalize("NFKC", header).strip()
    for prefix in ("meta.", "metadata."):
        if raw.casefold().startswith(prefix) and raw[len(prefix) :].strip():
            key = raw[len(prefix) :].strip()
            return None if key in NOT_FROM_MANIFEST else f"metadata.{key}"
    return HEADERS.get(normalize_header(header))


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
)


def normalize_date(text: str) -> str:
    """YYYY-MM-DD for the usual ways of writing a date (2025/3/1, 20250301, 2025年3月1日, with a
    trailing time); anything else unchanged, so the capture service names it as a bad date."""
    value = unicodedata.normalize("NFKC", text).strip()
    value = re.sub(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", "", value)
    for pattern in _DATE_PATTERNS:
        match = pattern.match(value)
        if match:
            try:
                return dt.date(*(int(g) for g in match.groups())).isoformat()
            except ValueError:
                return text.strip()
    return text.strip()


def cell_text(value: Any) -> str:
    """One cell as text: spreadsheet dates as ISO dates, whole numbers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _whole_number(text: str) -> int | None:
    cleaned = re.sub(r"[\s,_]", "", unicodedata.normalize("NFKC", text))
    if not (cleaned.isascii() and cleaned.isdigit()) or len(cleaned) > 18:
        return None
    return int(cleaned)


def row_from_mapping(values: Mapping[str, Any], *, number: int = 1, name: str = "sidecar") -> tuple[Row, list[str]]:
    """One record from name → value pairs (a sidecar, folder defaults, `name` in messages); returns
    the row and the names that map to nothing."""
    columns, ignored = _columns(list(values), name)
    return _row(number, [cell_text(v) for v in values.values()], columns), ignored


def read_manifest(data: bytes, *, name: str, require_files: bool = True) -> Manifest:
    """Read a manifest (`require_files=False` for a watched folder's one-row sidecar table)."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise too_large(name)
    if not data:
        raise ManifestError(
            gettext_lazy("The manifest %(manifest)s is empty."), code="manifest_empty", field="manifest", manifest=name
        )
    if data[:4] == b"PK\x03\x04":
        fmt, encoding, table = "xlsx", None, _xlsx_rows(data, name)
    elif name.casefold().endswith((".xlsx", ".xlsm")):
        raise ManifestError(
            gettext_lazy("The manifest %(manifest)s is not an XLSX workbook; save it again from Excel, or as CSV."),
            code="manifest_not_xlsx",
            field="manifest",
            manifest=name,
        )
    elif data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ManifestError(
            gettext_lazy(
                "The manifest %(manifest)s is an old .xls workbook, which is not read; save it as .xlsx or CSV."
            ),
            code="manifest_old_xls",
            field="manifest",
            manifest=name,
        )
    else:
        text, encoding = _decode(data, name)
        fmt, table = "csv", _csv_rows(text, name)
    header, columns, ignored, rows, declared = _parse(table, name, require_files=require_files)
    if not rows:
        raise ManifestError(
            gettext_lazy("The manifest %(manifest)s has a header (row %(row)s) but no records under it."),
            code="manifest_no_records",
            field="manifest",
            manifest=name,
            row=header,
        )
    return Manifest(
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        format=fmt,
        encoding=encoding,
        columns=columns,
        ignored=ignored,
        rows=rows,
        declared=declared,
    )


def too_large(name: str) -> ManifestError:
    """A manifest over `MAX_MANIFEST_BYTES` (the carrier stops reading it there too)."""
    return ManifestError(
        gettext_lazy("The manifest %(manifest)s is larger than %(max_bytes)s bytes; split it into several carriers."),
        code="manifest_too_large",
        field="manifest",
        manifest=name,
        max_bytes=MAX_MANIFEST_BYTES,
    )


def _decode(data: bytes, name: str) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            raise ManifestError(
                gettext_lazy(
                    "The manifest %(manifest)s contains NUL characters, so it is not a text table (is it a binary "
                    "file?); save it as CSV UTF-8 or as XLSX."
                ),
                code="manifest_binary",
                field="manifest",
                manifest=name,
            )
        return text, "utf-8" if encoding == "utf-8-sig" else encoding
    raise ManifestError(
        gettext_lazy("The manifest %(manifest)s is neither UTF-8 nor GB18030 text; save it as CSV UTF-8 or as XLSX."),
        code="manifest_encoding",
        field="manifest",
        manifest=name,
    )


def _csv_rows(text: str, name: str) -> Iterator[list[str]]:
    first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        yield from reader
    except csv.Error as exc:
        raise ManifestError(
            gettext_lazy(
                "The manifest %(manifest)s is not valid CSV near line %(line)s: a cell is too long, often because a "
                'quote (") is not closed; correct that line or save the table again as CSV UTF-8.'
            ),
            code="manifest_bad_csv",
            field="manifest",
            manifest=name,
            line=reader.line_num + 1,
            reason=str(exc),
        ) from None


def _xlsx_rows(data: bytes, name: str) -> Iterator[list[str]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _unreadable_xlsx(name, str(exc)) from None
    if expanded > MAX_XLSX_EXPANDED:
        raise ManifestError(
            gettext_lazy(
                "The workbook %(manifest)s expands to %(expanded_bytes)s bytes, more than the %(max_bytes)s allowed; "
                "save it as CSV, or split it into several carriers."
            ),
            code="manifest_xlsx_too_large",
            field="manifest",
            manifest=name,
            expanded_bytes=expanded,
            max_bytes=MAX_XLSX_EXPANDED,
        )
    import openpyxl  # noqa: PLC0415 - heavy; CSV imports do not need it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it skips
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                sheet = workbook.worksheets[0]
                sheet.reset_dimensions()  # do not trust the stored size of the sheet
                for values in sheet.iter_rows(min_row=1, values_only=True):
                    yield [cell_text(v) for v in values]
            finally:
                workbook.close()
    except ManifestError:
        raise
    except Exception as exc:  # openpyxl raises many types on a malformed workbook; all mean "unreadable"
        raise _unreadable_xlsx(name, type(exc).__name__) from None


def _unreadable_xlsx(name: str, reason: str) -> ManifestError:
    return ManifestError(
        gettext_lazy(
            "The manifest %(manifest)s is not a readable XLSX workbook; open it in Excel and save it again, or save "
            "it as CSV."
        ),
        code="manifest_unreadable_xlsx",
        field="manifest",
        manifest=name,
        reason=reason,
    )


def _columns(headers: list[str], name: str) -> tuple[list[Column], list[str]]:
    columns: list[Column] = []
    ignored: list[str] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(headers):
        header = unicodedata.normalize("NFC", raw.replace("\ufeff", "")).strip()
        if not header:
            continue
        target = target_of(header)
        if target is None:
            ignored.append(header)
            continue
        if target in seen:
            raise ManifestError(
                gettext_lazy("The columns %(first)s and %(second)s of %(manifest)s both give %(target)s; keep one."),
                code="manifest_duplicate_column",
                field="manifest",
                manifest=name,
                first=seen[target],
                second=header,
                target=target,
            )
        seen[target] = header
        columns.append(Column(index, header, target))
    return columns, ignored


def _parse(
    table: Iterable[list[str]], name: str, *, require_files: bool
) -> tuple[int, list[Column], list[str], list[Row], Declared]:
    header_row = 0
    columns: list[Column] = []
    ignored: list[str] = []
    rows: list[Row] = []
    declared: dict[str, int] = {}
    for number, raw_cells in enumerate(table, start=1):
        if number > 10 * MAX_ROWS:
            raise ManifestError(
                gettext_lazy(
                    "The manifest %(manifest)s has more than %(max_rows)s rows; split it into several carriers."
                ),
                code="manifest_too_many_rows",
                field="manifest",
                manifest=name,
                max_rows=10 * MAX_ROWS,
            )
        if len(raw_cells) > MAX_COLUMNS and any(c.strip() for c in raw_cells[MAX_COLUMNS:]):
            raise ManifestError(
                gettext_lazy(
                    "Row %(row)s of the manifest %(manifest)s has more than %(max_columns)s columns; remove the "
                    "columns that are not needed."
                ),
                code="manifest_too_many_columns",
                field="manifest",
                manifest=name,
                row=number,
                max_columns=MAX_COLUMNS,
            )
        cells = raw_cells[:MAX_COLUMNS]
        if not any(c.strip() for c in cells):
            continue
        first = cells[0].strip()
        if first.startswith("#") and first != "#":  # a lone "#" is a header, like 序号
            _declare(declared, first, cells, number, name)
            continue
        if not header_row:
            header_row = number
            columns, ignored = _columns(cells, name)
            if require_files and not any(c.target == "files" for c in columns):
                raise ManifestError(
                    gettext_lazy(
                        "The header (row %(row)s) of the manifest %(manifest)s has no file column; name one 文件, "
                        "文件名 or file."
                    ),
                    code="manifest_no_file_column",
                    field="manifest",
                    manifest=name,
                    row=number,
                )
            continue
        rows.append(_row(number, cells, columns))
        if len(rows) > MAX_ROWS:
            raise ManifestError(
                gettext_lazy(
                    "The manifest %(manifest)s has more than %(max_records)s records; split it into several carriers."
                ),
                code="manifest_too_many_records",
                field="manifest",
                manifest=name,
                max_records=MAX_ROWS,
            )
    if not header_row:
        raise ManifestError(
            gettext_lazy(
                "The manifest %(manifest)s has no header row; its first row that does not start with # must name "
                "the columns."
            ),
            code="manifest_no_header",
            field="manifest",
            manifest=name,
        )
    return (
        header_row,
        columns,
        ignored,
        rows,
        Declared(declared.get("item_count"), declared.get("total_bytes")),
    )


def _declare(declared: dict[str, int], first: str, cells: list[str], number: int, name: str) -> None:
    key, _equals, inline = first[1:].partition("=")
    kind = DECLARATIONS.get(normalize_header(key))
    if kind is None:
        return  # a comment
    raw = inline or next((c for c in cells[1:] if c.strip()), "")
    value = _whole_number(raw)
    if value is None:
        raise ManifestError(
            gettext_lazy(
                "Row %(row)s of the manifest %(manifest)s declares %(declaration)s, which must be a whole number; "
                'it says "%(value)s".'
            ),
            code="manifest_bad_declaration",
            field="manifest",
            manifest=name,
            row=number,
            declaration=key.strip(),
            value=raw.strip(),
        )
    if kind in declared and declared[kind] != value:
        raise ManifestError(
            gettext_lazy(
                "Row %(row)s of the manifest %(manifest)s declares %(declaration)s again, with another value; "
                "keep one declaration."
            ),
            code="manifest_declared_twice",
            field="manifest",
            manifest=name,
            row=number,
            declaration=key.strip(),
        )
    declared[kind] = value


def _row(number: int, cells: list[str], columns: list[Column]) -> Row:
    row = Row(number=number)
    for column in columns:
        value = cells[column.index].strip() if column.index < len(cells) else ""
        if not value:
            continue
        target = column.target
        if target == "files":
            row.files = [p.strip() for p in FILE_SEPARATORS.split(value) if p.strip()]
        elif target == "size":
            row.size = _whole_number(value)
            if row.size is None:
                row.problem = row.problem or ValidationError(
                    gettext_lazy('The %(column)s cell must be a whole number of bytes; it says "%(value)s".'),
                    code="size_not_a_number",
                    field="size",
                    column=column.header,
                    value=value,
                )
        elif target == "sha256":
            row.sha256 = [d.strip().lower() for d in FILE_SEPARATORS.split(value) if d.strip()]
            if not all(SHA256_HEX.match(d) for d in row.sha256):
                row.problem = row.problem or ValidationError(
                    gettext_lazy(
                        "The %(column)s cell must hold SHA-256 digests (64 hex digits each, separated by ;); "
                        'it says "%(value)s".'
                    ),
                    code="sha256_malformed",
                    field="sha256",
                    column=column.header,
                    value=value,
                )
        elif target.startswith("metadata."):
            key = target.removeprefix("metadata.")
            row.metadata[key] = _metadata_value(key, value)
        elif target == "date":
            row.fields["date"] = normalize_date(value)
        else:
            row.fields[target] = value
    if row.sha256 and row.problem is None and len(row.sha256) != len(row.files):
        row.problem = ValidationError(
            gettext_lazy(
                "The row gives %(digests)s SHA-256 digests for %(files)s files; give one digest per file, in the "
                "order of the files."
            ),
            code="sha256_count_mismatch",
            field="sha256",
            digests=len(row.sha256),
            files=len(row.files),
        )
    return row


def _metadata_value(key: str, value: str) -> Any:
    if key in DATE_KEYS:
        return normalize_date(value)
    try:
        return metadata_schema.coerce(key, value)
    except ValidationError:
        return value  # kept as written: the schema check names the field and the expected type
