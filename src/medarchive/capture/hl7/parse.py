"""One HL7 v2 message (the bytes of one MLLP frame) → the facts the archive needs. Pure: no Django, no I/O.

Order of checks, so a refusal names the first real problem: the envelope (MSH-1, MSH-2,
MSH-18 character set) is read from the raw bytes; the text is decoded strictly in that
character set (UTF-8 or GB18030 are detected when MSH-18 is empty); every segment must start
with a segment ID; then the `hl7` library splits the message and the content is read
field by field. Problems with the envelope, the syntax or the character set reject the
message (AR); problems with its content are application errors (AE).

The `hl7` library's own unescape is not used: it turns each `\\X..\\` byte into one character
(wrong for UTF-8/GB18030 bytes) and logs field values (patient names) when it meets a bad
escape. `unescape` below decodes hex escapes in the message's character set and logs nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass, field

import hl7

from medarchive.capture.hl7.errors import ERROR, REJECT, Hl7Error, Location, error, rejected

# (message type, trigger event) accepted, and how each is handled.
SUPPORTED = {("MDM", "T02"), ("MDM", "T04"), ("ORU", "R01"), ("ADT", "A03")}
VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2", "2.9")
MAX_CONTROL_ID = 64
MAX_APPLICATION = 100

# MSH-18 (HL7 table 0211 plus the spellings Chinese HIS vendors use) → Python codec.
# Keys are upper-case with spaces, '-', '_' and '/' removed.
CHARSETS = {
    "ASCII": "ascii",
    "USASCII": "ascii",
    "UNICODEUTF8": "utf-8",
    "UTF8": "utf-8",
    "UNICODE": "utf-8",
    "GB180302000": "gb18030",
    "GB180302005": "gb18030",
    "GB180302022": "gb18030",
    "GB18030": "gb18030",
    "GBK": "gb18030",  # GB18030 is a superset of GBK and GB2312
    "GB2312": "gb18030",
    "CP936": "gb18030",
    "ISOIR58": "gb18030",
    "88591": "latin-1",
    "ISO88591": "latin-1",
    "LATIN1": "latin-1",
}
AUTO_CODECS = ("utf-8", "gb18030")

# OBX-2 value types whose OBX-5 is text that belongs in a report.
TEXT_TYPES = {"TX", "FT", "ST"}
STRUCTURED_TYPES = {"NM", "SN", "CE", "CWE", "CNE", "CF", "CX", "DT", "DTM", "TM", "TS", "NR", "ID", "IS", "XCN"}

# ED-2/ED-3 (type of data, data subtype; HL7 tables 0191/0291) → a file name extension.
EXTENSIONS = {
    "PDF": "pdf",
    "OFD": "ofd",
    "JPEG": "jpg",
    "JPG": "jpg",
    "TIFF": "tif",
    "TIF": "tif",
    "PNG": "png",
    "GIF": "gif",
    "XML": "xml",
    "HTML": "html",
    "RTF": "rtf",
    "PLAIN": "txt",
    "TEXT": "txt",
    "DICOM": "dcm",
    "MSWORD": "doc",
    "CDA": "xml",
}

# TXA-2 document type codes (HL7 table 0270) → the name shown when the sender gives no text.
DOCUMENT_TYPES = {
    "AR": "尸检报告",
    "CD": "心脏诊断报告",
    "CN": "会诊记录",
    "DI": "影像诊断报告",
    "DS": "出院记录",
    "ED": "急诊记录",
    "HP": "入院记录",
    "OP": "手术记录",
    "PC": "精神科会诊记录",
    "PH": "精神科病史",
    "PN": "操作记录",
    "PR": "病程记录",
    "SP": "病理报告",
    "TS": "转科记录",
}

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_TIMESTAMP = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Header:
    """MSH, as the acknowledgment needs it and the archive records it."""

    field_separator: str = "|"
    encoding_characters: str = "^~\\&"
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""
    charset: str = ""  # MSH-18 as sent (echoed in the acknowledgment)
    codec: str = "utf-8"  # how the bytes were decoded

    @property
    def kind(self) -> str:
        return f"{self.message_type}^{self.trigger}" if self.trigger else self.message_type

    @property
    def source(self) -> str:
        """The sending system, as the archive names a submission's source."""
        return "^".join(p for p in (self.sending_application, self.sending_facility) if p)


@dataclass(frozen=True)
class Patient:
    id: str
    name: str = ""
    birth_date: dt.date | None = None
    gender: str = ""  # the PID-8 code (M, F, O, U, A, N)


@dataclass(frozen=True)
class Visit:
    patient_class: str = ""  # PV1-2: I inpatient, O outpatient, E emergency ...
    visit_number: str = ""  # PV1-19
    location: str = ""  # PV1-3.1 point of care (ward or department code)
    facility: str = ""  # PV1-3.4 facility (HD namespace ID) the point of care belongs to
    service: str = ""  # PV1-10 hospital service (department code)
    attending: str = ""  # PV1-7 attending doctor's name
    admitted_at: dt.datetime | None = None  # PV1-44
    discharged_at: dt.datetime | None = None  # PV1-45


@dataclass(frozen=True)
class Attachment:
    """A document sent inline in OBX-5 as ED (source^type^subtype^encoding^data)."""

    data: bytes
    extension: str
    set_id: str


@dataclass
class Message:
    header: Header
    patient: Patient | None = None
    visit: Visit | None = None
    event_at: dt.datetime | None = None  # EVN-6, else EVN-2
    sent_at: dt.datetime | None = None  # MSH-7
    # MDM: TXA; ORU: OBR
    document_type: str = ""  # TXA-2 code
    document_title: str = ""  # TXA-2 text, a table-0270 name, or OBR-4 text
    document_at: dt.datetime | None = None  # TXA-4/TXA-6 or OBR-7
    document_number: str = ""  # TXA-12 unique document number
    document_status: str = ""  # TXA-17
    attachments: list[Attachment] = field(default_factory=list)
    text: list[str] = field(default_factory=list)  # report lines from TX/FT/ST/NM... OBX


# --- envelope and character set ---------------------------------------------------------------


def peek_header(raw: bytes) -> Header | None:
    """The MSH fields an acknowledgment needs, read leniently from bytes that may not parse at all."""
    body = _strip_frame_noise(raw)
    if not body.startswith(b"MSH") or len(body) < 8:
        return None
    line = re.split(rb"[\r\n]", body, maxsplit=1)[0]
    sep = line[3:4]
    if not sep or not _separator_ok(sep[0]):
        return None
    fields = line.split(sep)
    text = [f.decode("utf-8", "replace") for f in fields]
    comp = text[1][:1] or "^"
    return _header_from([text[0], sep.decode("latin-1"), *text[1:]], comp, "", "utf-8")


def decode(raw: bytes) -> tuple[str, Header]:
    """Check MSH-1/MSH-2, pick the character set (MSH-18, else UTF-8 then GB18030) and decode."""
    body = _strip_frame_noise(raw)
    if not body:
        raise rejected("empty message: the MLLP frame holds no HL7 data", location=Location("MSH"), code=100)
    if body[:3] in {b"FHS", b"BHS"}:
        raise rejected(
            "batches (FHS/BHS) are not accepted over MLLP: send one message per frame",
            location=Location(body[:3].decode()),
            code=100,
        )
    if not body.startswith(b"MSH"):
        raise rejected("the message does not start with an MSH segment", location=Location("MSH"), code=100)
    line = re.split(rb"[\r\n]", body, maxsplit=1)[0]
    sep = line[3:4]
    if not sep or not _separator_ok(sep[0]):
        raise rejected(
            f"MSH-1 field separator {sep!r} is not valid: use a punctuation character such as '|'",
            location=Location("MSH", 1),
            code=102,
        )
    fields = line.split(sep)
    encoding = fields[1] if len(fields) > 1 else b""
    _check_encoding_characters(encoding, sep)
    charset = _field_text(fields, 18).split(encoding[1:2].decode(), 1)[0].split(encoding[:1].decode(), 1)[0].strip()
    text, codec = _decode(body, _codec(charset), charset)
    header = _header_from(["MSH", sep.decode(), *(f.decode(codec, "replace") for f in fields[1:])], "", charset, codec)
    return text, header


def _strip_frame_noise(raw: bytes) -> bytes:
    body = raw.strip(b" \t\r\n\x00\x0b\x1c")
    return body.removeprefix(b"\xef\xbb\xbf")


def _separator_ok(byte: int) -> bool:
    char = chr(byte)
    return 0x21 <= byte <= 0x7E and not char.isalnum()


def _check_encoding_characters(encoding: bytes, sep: bytes) -> None:
    shown = encoding.decode("latin-1")
    problem = ""
    if len(encoding) not in (4, 5):
        problem = f"expected 4 characters (component, repetition, escape, subcomponent), got {len(encoding)}"
    elif any(not _separator_ok(b) for b in encoding):
        problem = "each must be a punctuation character"
    elif len(set(encoding)) != len(encoding) or sep[0] in encoding:
        problem = "they must differ from each other and from the field separator"
    if problem:
        raise rejected(
            f"MSH-2 encoding characters {shown!r} are not valid: {problem} (the usual value is ^~\\&)",
            location=Location("MSH", 2),
            code=102,
        )


def _field_text(fields: list[bytes], number: int) -> str:
    # fields[0] is "MSH" and fields[1] is MSH-2, so MSH-n is fields[n - 1].
    if len(fields) < number:
        return ""
    return fields[number - 1].decode("ascii", "replace")


def _codec(charset: str) -> str | None:
    if not charset:
        return None
    key = re.sub(r"[\s\-_/]", "", charset).upper()
    codec = CHARSETS.get(key)
    if codec is None:
        raise rejected(
            f"MSH-18 character set {charset!r} is not supported: send UNICODE UTF-8 or GB 18030-2000",
            location=Location("MSH", 18),
            code=103,
        )
    return codec


def _decode(body: bytes, codec: str | None, charset: str) -> tuple[str, str]:
    if codec is not None:
        try:
            return body.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise rejected(
                f"the message is not valid {charset} as MSH-18 declares: byte 0x{body[exc.start]:02X}"
                f" at offset {exc.start} cannot be decoded",
                location=Location("MSH", 18),
                code=102,
            ) from None
    first_bad = 0
    for candidate in AUTO_CODECS:
        try:
            return body.decode(candidate), candidate
        except UnicodeDecodeError as exc:
            first_bad = max(first_bad, exc.start)
    raise rejected(
        f"the message is neither UTF-8 nor GB18030 (undecodable byte at offset {first_bad}):"
        " declare its character set in MSH-18",
        location=Location("MSH", 18),
        code=102,
    )


def _header_from(fields: list[str], comp: str, charset: str, codec: str) -> Header:
    """`fields` as split by the field separator, with MSH-1 inserted: index n is MSH-n."""
    comp = comp or (fields[2][:1] if len(fields) > 2 else "^") or "^"

    def get(n: int) -> list[str]:
        return fields[n].split(comp) if len(fields) > n else [""]

    def first(parts: list[str]) -> str:
        return next((p for p in parts if p), "")

    message_type = get(9)
    return Header(
        field_separator=fields[1] if len(fields) > 1 else "|",
        encoding_characters=fields[2] if len(fields) > 2 else "^~\\&",
        sending_application=first(get(3)[:2]),
        sending_facility=first(get(4)[:2]),
        receiving_application=first(get(5)[:2]),
        receiving_facility=first(get(6)[:2]),
        message_type=message_type[0].strip(),
        trigger=message_type[1].strip() if len(message_type) > 1 else "",
        control_id=get(10)[0].strip(),
        processing_id=get(11)[0].strip(),
        version=get(12)[0].strip(),
        charset=charset,
        codec=codec,
    )


# --- syntax -----------------------------------------------------------------------------------


def split_segments(text: str, sep: str) -> list[str]:
    """Segments of a decoded message; CR is the terminator, LF-only messages (from files) are accepted."""
    text = text.replace("\r\n", "\r") if "\r" in text else text.replace("\n", "\r")
    segments = [s for s in text.split("\r") if s.strip()]
    for number, segment in enumerate(segments, start=1):
        seg_id = segment[:3]
        if not _SEGMENT_ID.fullmatch(seg_id) or (len(segment) > 3 and segment[3] != sep):
            raise rejected(
                f"segment {number} is not an HL7 segment: it must start with a 3-character segment ID"
                f" followed by {sep!r}",
                location=Location(seg_id if _SEGMENT_ID.fullmatch(seg_id) else "", 0),
                code=100,
            )
        bad = _CONTROL.search(segment)
        if bad is not None:
            raise rejected(
                f"segment {number} ({seg_id}) contains the control character 0x{ord(bad.group()):02X}",
                location=Location(seg_id),
                code=102,
            )
        if seg_id == "MSH" and number > 1:
            raise rejected(
                "the frame holds more than one message (a second MSH): send one message per frame",
                location=Location("MSH", sequence=2),
                code=100,
            )
        if seg_id in {"FHS", "BHS", "FTS", "BTS"}:
            raise rejected(f"batch segment {seg_id} is not accepted over MLLP", location=Location(seg_id), code=100)
    return segments


def check_header(header: Header) -> None:
    def loc(n: int) -> Location:
        return Location("MSH", n)

    if not header.message_type:
        raise rejected("MSH-9 message type is missing", location=loc(9), code=101)
    if not header.control_id:
        raise rejected("MSH-10 message control ID is missing", location=loc(10), code=101)
    if len(header.control_id) > MAX_CONTROL_ID:
        raise rejected(
            f"MSH-10 message control ID is longer than {MAX_CONTROL_ID} characters", location=loc(10), code=104
        )
    if not header.sending_application:
        raise rejected("MSH-3 sending application is missing", location=loc(3), code=101)
    if len(header.sending_application) > MAX_APPLICATION:
        raise rejected(
            f"MSH-3 sending application is longer than {MAX_APPLICATION} characters", location=loc(3), code=104
        )
    if not header.version:
        raise rejected("MSH-12 version ID is missing", location=loc(12), code=101)
    if header.version not in VERSIONS:
        raise rejected(
            f"HL7 version {header.version!r} is not supported (MSH-12): accepted {VERSIONS[0]} to {VERSIONS[-1]}",
            location=loc(12),
            code=203,
        )
    if header.processing_id not in {"", "P"}:
        raise rejected(
            f"processing ID {header.processing_id!r} (MSH-11) is not accepted: this listener archives"
            " production messages (P) only",
            location=loc(11),
            code=202,
        )
    kinds = {m for m, _ in SUPPORTED}
    if header.message_type not in kinds:
        raise rejected(
            f"message type {header.kind} is not supported (MSH-9): accepted {_supported()}", location=loc(9), code=200
        )
    if (header.message_type, header.trigger) not in SUPPORTED:
        raise rejected(
            f"trigger event {header.kind} is not supported (MSH-9.2): accepted {_supported()}",
            location=Location("MSH", 9, 2),
            code=201,
        )


def _supported() -> str:
    return ", ".join(f"{m}^{t}" for m, t in sorted(SUPPORTED))


# --- field access ----------------------------------------------------------------------------


class _Reader:
    """Field access on an `hl7.Message` that yields unescaped text, whatever shape the library gave."""

    def __init__(self, message: hl7.Message, header: Header) -> None:
        self.message = message
        self.header = header
        sep, enc = header.field_separator, header.encoding_characters
        self.comp, self.rep, self.esc, self.sub = enc[0], enc[1], enc[2], enc[3]
        self.sep = sep
        e = re.escape(self.esc)
        self._escape = re.compile(f"{e}([^{e}]*){e}")

    def segments(self, seg_id: str) -> list[hl7.Segment]:
        return [s for s in self.message if str(s[0]) == seg_id]

    def one(self, seg_id: str, *, required: bool) -> hl7.Segment | None:
        found = self.segments(seg_id)
        if not found:
            if required:
                raise error(f"the {seg_id} segment is missing", location=Location(seg_id), code=100)
            return None
        return found[0]

    def raw(
        self, segment: hl7.Segment | None, number: int, component: int = 1, repetition: int = 1, sub: int = 1
    ) -> str:
        if segment is None or number >= len(segment):
            return ""
        node: object = segment[number]
        for index in (repetition, component, sub):
            if isinstance(node, str):
                return node if index == 1 else ""
            items = list(node)  # type: ignore[call-overload]
            if index > len(items):
                return ""
            node = items[index - 1]
        return node if isinstance(node, str) else str(node)

    def text(self, segment: hl7.Segment | None, number: int, component: int = 1, repetition: int = 1) -> str:
        return _clean(self.unescape(self.raw(segment, number, component, repetition)))

    def repetitions(self, segment: hl7.Segment | None, number: int) -> int:
        if segment is None or number >= len(segment):
            return 0
        node = segment[number]
        return 1 if isinstance(node, str) else len(node)

    def unescape(self, value: str) -> str:
        if self.esc not in value:
            return value
        return self._escape.sub(self._replace, value)

    def _replace(self, match: re.Match[str]) -> str:
        code = match.group(1)
        simple = {"F": self.sep, "S": self.comp, "R": self.rep, "E": self.esc, "T": self.sub}
        if code in simple:
            return simple[code]
        if code.startswith("X"):
            try:
                return bytes.fromhex(code[1:]).decode(self.header.codec, "replace")
            except ValueError:
                return ""
        if code in {".br", ".sp"} or code.startswith(".sp"):
            return "\n"
        return ""  # highlighting, formatting and character-set switches carry no archival text


def _clean(value: str) -> str:
    return " ".join(value.split()) if value else ""


# --- content ---------------------------------------------------------------------------------


def parse(raw: bytes) -> Message:
    """Parse one message. Raises `Hl7Error` (AR or AE) with the header when it is known."""
    header = peek_header(raw)
    try:
        text, header = decode(raw)
        segments = split_segments(text, header.field_separator)
        check_header(header)
        try:
            parsed = hl7.parse("\r".join(segments))
        except Exception as exc:  # the library raises many types on odd input; all mean "unparseable"
            raise rejected(f"the message cannot be parsed: {type(exc).__name__}", code=100) from None
        return _content(_Reader(parsed, header), header)
    except Hl7Error as exc:
        if exc.header is None:
            exc.header = header
        raise


def _content(reader: _Reader, header: Header) -> Message:
    msh = reader.one("MSH", required=True)
    message = Message(header=header, sent_at=_timestamp(reader.raw(msh, 7), Location("MSH", 7), required=False))
    evn = reader.one("EVN", required=False)
    message.event_at = _timestamp(reader.raw(evn, 6), Location("EVN", 6), required=False) or _timestamp(
        reader.raw(evn, 2), Location("EVN", 2), required=False
    )
    message.patient = _patient(reader)
    message.visit = _visit(reader, required=header.message_type in {"ADT", "MDM"})
    if header.message_type == "MDM":
        _txa(reader, message)
    elif header.message_type == "ORU":
        _obr(reader, message)
    if header.message_type in {"MDM", "ORU"}:
        _observations(reader, message)
    return message


def _patient(reader: _Reader) -> Patient:
    pid = reader.one("PID", required=True)
    patient_id = ""
    for repetition in range(1, reader.repetitions(pid, 3) + 1):
        patient_id = reader.text(pid, 3, 1, repetition)
        if patient_id:
            break
    if not patient_id:
        patient_id = reader.text(pid, 2)  # external ID, kept in v2.3 senders
    if not patient_id:
        raise error("PID-3 patient identifier is missing", location=Location("PID", 3), code=101)
    family, given, middle = (reader.text(pid, 5, c) for c in (1, 2, 3))
    parts = [p for p in (family, given, middle) if p]
    cjk = any("\u3400" <= ch <= "\u9fff" for p in parts for ch in p)
    name = "".join(parts) if cjk else " ".join(parts)
    return Patient(
        id=patient_id,
        name=name,
        birth_date=_birth_date(reader.text(pid, 7), Location("PID", 7)),
        gender=reader.text(pid, 8).upper(),
    )


def _visit(reader: _Reader, *, required: bool) -> Visit | None:
    pv1 = reader.one("PV1", required=required)
    if pv1 is None:
        return None
    attending = [reader.text(pv1, 7, c) for c in (2, 3)]
    cjk = any("\u3400" <= ch <= "\u9fff" for p in attending for ch in p)
    return Visit(
        patient_class=reader.text(pv1, 2).upper(),
        visit_number=reader.text(pv1, 19),
        location=reader.text(pv1, 3),
        facility=reader.text(pv1, 3, 4),
        service=reader.text(pv1, 10),
        attending=("" if cjk else " ").join(p for p in attending if p),
        admitted_at=_timestamp(reader.raw(pv1, 44), Location("PV1", 44), required=False),
        discharged_at=_timestamp(reader.raw(pv1, 45), Location("PV1", 45), required=False),
    )


def _txa(reader: _Reader, message: Message) -> None:
    txa = reader.one("TXA", required=True)
    code, text = reader.text(txa, 2, 1), reader.text(txa, 2, 2)
    if not code and not text:
        raise error("TXA-2 document type is missing", location=Location("TXA", 2), code=101)
    message.document_type = code
    message.document_title = text or DOCUMENT_TYPES.get(code.upper(), code)
    message.document_at = _timestamp(reader.raw(txa, 4), Location("TXA", 4), required=False) or _timestamp(
        reader.raw(txa, 6), Location("TXA", 6), required=False
    )
    message.document_number = reader.text(txa, 12)
    message.document_status = reader.text(txa, 17).upper()


def _obr(reader: _Reader, message: Message) -> None:
    requests = reader.segments("OBR")
    if not requests:
        raise error("the OBR segment is missing", location=Location("OBR"), code=100)
    names = []
    for obr in requests:
        name = reader.text(obr, 4, 2) or reader.text(obr, 4, 1)
        if name and name not in names:
            names.append(name)
    message.document_type = reader.text(requests[0], 4, 1)
    message.document_title = names[0] if len(names) == 1 else (f"{names[0]} 等 {len(names)} 项" if names else "")
    first = requests[0]
    message.document_at = _timestamp(reader.raw(first, 7), Location("OBR", 7), required=False) or _timestamp(
        reader.raw(first, 22), Location("OBR", 22), required=False
    )
    message.document_number = reader.text(first, 3) or reader.text(first, 2)


def _observations(reader: _Reader, message: Message) -> None:
    observations = reader.segments("OBX")
    if not observations:
        raise error("empty document: the message has no OBX segment", location=Location("OBX"), code=100)
    for sequence, obx in enumerate(observations, start=1):
        value_type = reader.text(obx, 2).upper()
        set_id = reader.text(obx, 1) or str(sequence)
        where = Location("OBX", 5, sequence=sequence)
        if value_type == "ED":
            message.attachments.append(_attachment(reader, obx, set_id, sequence))
        elif value_type == "RP":
            raise error(
                f"OBX {set_id}: the document is a reference (RP), which this archive does not fetch;"
                " send the document inline as ED (base64)",
                location=where,
                code=102,
            )
        elif value_type in TEXT_TYPES:
            lines = [_report_text(reader, reader.raw(obx, 5, 1, r)) for r in range(1, reader.repetitions(obx, 5) + 1)]
            message.text.extend(line for line in lines if line)
        elif value_type in STRUCTURED_TYPES or not value_type:
            line = _structured_line(reader, obx)
            if line:
                message.text.append(line)
        else:
            raise error(
                f"OBX {set_id}: value type {value_type!r} (OBX-2) is not supported",
                location=Location("OBX", 2),
                code=103,
            )
    if not message.attachments and not any(line.strip() for line in message.text):
        raise error("empty document: no OBX carries a document or report text", location=Location("OBX", 5), code=101)


def _report_text(reader: _Reader, raw: str) -> str:
    # FT/TX keep their line breaks (\.br\); other whitespace runs and control characters are tidied.
    text = reader.unescape(raw)
    return "\n".join(" ".join(line.split()) for line in text.split("\n")).strip("\n")


def _structured_line(reader: _Reader, obx: hl7.Segment) -> str:
    value = " ".join(
        filter(None, (reader.text(obx, 5, c, r) for r in range(1, reader.repetitions(obx, 5) + 1) for c in (1, 2)))
    )
    if not value:
        return ""
    label = reader.text(obx, 3, 2) or reader.text(obx, 3, 1)
    unit = reader.text(obx, 6, 2) or reader.text(obx, 6, 1)
    reference, flag = reader.text(obx, 7), reader.text(obx, 8)
    line = f"{label}: {value}" if label else value
    if unit:
        line += f" {unit}"
    if reference:
        line += f" ({reference})"
    if flag:
        line += f" [{flag}]"
    return line


def _attachment(reader: _Reader, obx: hl7.Segment, set_id: str, sequence: int) -> Attachment:
    kind, subtype, encoding = (reader.text(obx, 5, c).upper() for c in (2, 3, 4))
    data = reader.unescape(reader.raw(obx, 5, 5))
    where = Location("OBX", 5, 5, sequence=sequence)
    if not data.strip():
        raise error(f"empty document: OBX {set_id} has no data in OBX-5.5", location=where, code=101)
    if encoding in {"BASE64", "B64"}:
        content = _base64(data, set_id, where)
    elif encoding == "HEX":
        try:
            content = bytes.fromhex("".join(data.split()))
        except ValueError:
            raise error(f"OBX {set_id}: OBX-5.5 is not valid hexadecimal", location=where, code=102) from None
    elif encoding in {"A", ""}:
        content = data.encode(reader.header.codec, "replace")
    else:
        raise error(
            f"OBX {set_id}: encoding {encoding!r} (OBX-5.4) is not supported: use Base64, Hex or A",
            location=Location("OBX", 5, 4, sequence=sequence),
            code=103,
        )
    extension = EXTENSIONS.get(subtype) or EXTENSIONS.get(kind) or ("txt" if encoding in {"A", ""} else "bin")
    return Attachment(data=content, extension=extension, set_id=set_id)


def _base64(data: str, set_id: str, where: Location) -> bytes:
    compact = "".join(data.split())
    compact += "=" * (-len(compact) % 4) if len(compact) % 4 in (2, 3) else ""
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"OBX {set_id}: OBX-5.5 is not valid base64", location=where, code=102) from None


# --- dates -----------------------------------------------------------------------------------


def _timestamp(value: str, where: Location, *, required: bool) -> dt.datetime | None:
    """HL7 TS/DTM `YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]` with at least a day; naive when no offset."""
    value = value.strip()
    if not value:
        if required:
            raise error(f"{where} date/time is missing", location=where, code=101)
        return None
    match = _TIMESTAMP.fullmatch(value)
    if match is None or match.group(3) is None:
        raise error(f"{where} {value!r} is not an HL7 date/time (YYYYMMDD[HHMM[SS]])", location=where, code=102)
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        tz = None
        if offset:
            sign = -1 if offset[0] == "-" else 1
            tz = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        return dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=tz
        )
    except ValueError:
        raise error(f"{where} {value!r} is not a valid date/time", location=where, code=102) from None


def _birth_date(value: str, where: Location) -> dt.date | None:
    """PID-7; a birth date given only to the year or month is left out rather than invented."""
    if not value:
        return None
    match = _TIMESTAMP.fullmatch(value)
    if match is not None and match.group(3) is None:
        return None
    moment = _timestamp(value, where, required=False)
    return moment.date() if moment is not None else None


__all__ = ["ERROR", "REJECT", "Attachment", "Header", "Message", "Patient", "Visit", "decode", "parse", "peek_header"]
