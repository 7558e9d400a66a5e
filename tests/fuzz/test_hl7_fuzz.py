"""Fuzzing the HL7 parser, the ACK builder and the MLLP framer (hypothesis).

The kept corpus (`corpus/hl7/`) holds real-looking seeds (MDM/ORU/ADT in UTF-8 and GB18030, escapes,
references) and every input that once crashed (`crash_*`). Mutations of the seeds and raw bytes must
always end in a parsed message or an `Hl7Error` (AR/AE), never another exception, and every outcome
must give an ACK that itself parses as HL7 with the right MSA-1.

More examples: `HYPOTHESIS_PROFILE=fuzz pytest tests/fuzz/test_hl7_fuzz.py`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path

import hl7
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from medarchive.capture.hl7 import ack, samples
from medarchive.capture.hl7.errors import ACCEPT, Hl7Error
from medarchive.capture.hl7.framing import END, START, Broken, Frame, Framer, Noise, wrap
from medarchive.capture.hl7.parse import parse

CORPUS = Path(__file__).parent / "corpus" / "hl7"
SEEDS = sorted(CORPUS.glob("*.hl7"))
NOW = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))

settings.register_profile("ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=20000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Bytes that matter to HL7 and MLLP, spliced into the seeds.
TOKENS = [
    b"|",
    b"^",
    b"~",
    b"\\",
    b"&",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\xff",
    b"\xe5",
    b"\x81\x30",
    b"MSH|^~\\&|",
    b"\\X",
    b"\\XE5BC\\",
    b"\\.sp",
    b"\\.br\\",
    b"\\Zx\\",
    b"ED",
    b"RP",
    b"=",
    b"OBX|1|ED|||^AP^PDF^Base64^",
    b"99999999",
    b"20251301",
    b"+9999",
    b"PV1|1|I|",
    b"FHS|",
    START,
    END,
]


def outcome(raw: bytes) -> None:
    """The whole contract of the parser + ACK for one input."""
    try:
        message = parse(raw)
    except Hl7Error as exc:
        assert exc.ack in {"AE", "AR"}
        assert exc.message and "\r" not in exc.message
        header, code, text, problem = exc.header, exc.ack, exc.message, exc
    else:
        header, code, text, problem = message.header, ACCEPT, "ok", None
        assert message.header.control_id
        assert message.patient is not None and message.patient.id
    reply = ack.build(header, code, text, problem=problem, now=NOW)
    decoded = hl7.parse(reply.decode(header.codec if header else "utf-8"))
    msa = decoded.segment("MSA")
    assert str(msa[1]) == code
    assert str(msa[2]) == ack.escape(header.control_id if header else "")


@pytest.mark.parametrize("path", SEEDS, ids=[p.name for p in SEEDS])
def test_corpus(path: Path) -> None:
    outcome(path.read_bytes())


def test_corpus_is_there() -> None:
    names = {p.name for p in SEEDS}
    assert {"mdm_t02_utf8_pdf.hl7", "mdm_t02_gb18030_pdf.hl7", "oru_r01_lab_text.hl7", "adt_a03_inpatient.hl7"} <= names
    assert any(name.startswith("crash_") for name in names)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)).read_bytes())
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
        elif op == "duplicate" and data:
            start = draw(st.integers(0, len(data) - 1))
            data[at:at] = data[start : start + draw(st.integers(1, 40))]
    return bytes(data)


@given(mutated())
@example(b"MSH\n|^~|HIS|H|")  # crash_peek_msh_line_break: an empty separator after "MSH"
@example(b"MSH|^~\\&|A|B|C|D|2025||MDM^T02|1|P|2.5\rPID|1||X||\\.sp2x\\")
@example(b"MSH|^~\\&|A|B|C|D|2025||MDM^T02|1|P|2.5\rPID|1||X||\\X4\\")
def test_mutated_seeds(raw: bytes) -> None:
    outcome(raw)


@given(st.binary(max_size=400))
@example(b"")
@example(b"MSH")
@example(b"MSH|")
@example(b"MSH|^~\\&")
def test_raw_bytes(raw: bytes) -> None:
    outcome(raw)


@given(st.binary(max_size=200).map(lambda tail: b"MSH|^~\\&|HIS|H|A|B|20250301||ORU^R01|C1|P|2.5\r" + tail))
def test_valid_header_then_garbage(raw: bytes) -> None:
    outcome(raw)


NAME_CHARS = st.characters(codec="gb18030", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn"))


@given(
    family=st.text(NAME_CHARS, min_size=1, max_size=12),
    given_name=st.text(NAME_CHARS, max_size=8),
    charset=st.sampled_from(["UNICODE UTF-8", "GB 18030-2000", ""]),
)
def test_names_survive_escaping_and_character_sets(family: str, given_name: str, charset: str) -> None:
    sample = samples.Sample(
        charset=charset,
        family_name=ack.escape(family),
        given_name=ack.escape(given_name),
        observations=[samples.text("ok")],
    )
    raw = samples.build(sample).encode("gb18030" if charset.startswith("GB") else "utf-8")
    try:
        message = parse(raw)
    except Hl7Error as exc:
        # Without MSH-18, GB18030-only characters are not UTF-8 and ambiguity is refused, never guessed wrong.
        assert exc.ack == "AR" and charset == ""
        return
    parts = [" ".join(p.split()) for p in (family, given_name) if p.strip()]
    cjk = any("\u3400" <= ch <= "\u9fff" for p in parts for ch in p)
    assert message.patient is not None
    assert message.patient.name == ("" if cjk else " ").join(parts)


# --- framing ------------------------------------------------------------------------------------------------

FRAME_BODY = st.binary(max_size=300).filter(lambda b: START not in b and END not in b)


@given(frames=st.lists(FRAME_BODY, max_size=6), cuts=st.lists(st.integers(0, 2000), max_size=12))
def test_any_chunking_gives_the_same_frames(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(wrap(f) for f in frames)
    points = sorted({c for c in cuts if c < len(stream)} | {0, len(stream)})
    framer = Framer(10_000)
    events: list[object] = []
    for a, b in itertools.pairwise(points):
        events += framer.feed(stream[a:b])
    events += framer.eof()
    assert events == [Frame(f) for f in frames]


@given(chunks=st.lists(st.binary(max_size=300) | st.sampled_from([START, END, b"\r", END + b"\r"]), max_size=40))
def test_arbitrary_stream_is_bounded_and_never_crashes(chunks: list[bytes]) -> None:
    framer = Framer(256)
    for chunk in chunks:
        for event in framer.feed(chunk):
            assert isinstance(event, Frame | Broken | Noise)
            if isinstance(event, Frame):
                assert len(event.data) <= 256 and START not in event.data and END not in event.data
            if isinstance(event, Broken):
                assert event.reason and len(event.partial) <= 4096
        assert len(framer._buffer) <= 256 + len(chunk)  # memory stays bounded by the frame limit
    framer.timeout(1)
    framer.eof()
