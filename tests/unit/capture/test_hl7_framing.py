"""MLLP framing out of a byte stream: whole, split, glued, truncated, unstarted, oversized frames."""

from __future__ import annotations

from medarchive.capture.hl7.framing import Broken, Frame, Framer, Noise, wrap

MSG = b"MSH|^~\\&|HIS|H|A|B|20250301||MDM^T02|C1|P|2.5\rPID|1||P1\r"


def feed_all(framer: Framer, chunks: list[bytes]) -> list[object]:
    events: list[object] = []
    for chunk in chunks:
        events += framer.feed(chunk)
    return events


def test_one_frame() -> None:
    framer = Framer(1000)
    assert framer.feed(wrap(MSG)) == [Frame(MSG)]
    assert not framer.in_frame


def test_frame_split_byte_by_byte() -> None:
    framer = Framer(1000)
    data = wrap(MSG)
    events = feed_all(framer, [data[i : i + 1] for i in range(len(data))])
    assert events == [Frame(MSG)]


def test_end_block_split_between_fs_and_cr() -> None:
    framer = Framer(1000)
    data = wrap(MSG)
    assert framer.feed(data[:-1]) == [Frame(MSG)]  # <FS> ends the frame; its <CR> may follow later
    assert framer.feed(b"\r" + wrap(b"MSH|2")) == [Frame(b"MSH|2")]


def test_frames_glued_together_and_whitespace_between() -> None:
    framer = Framer(1000)
    assert framer.feed(wrap(b"MSH|1") + b"\r\n" + wrap(b"MSH|2") + wrap(b"MSH|3")) == [
        Frame(b"MSH|1"),
        Frame(b"MSH|2"),
        Frame(b"MSH|3"),
    ]


def test_noise_before_a_frame_is_reported_but_not_answered() -> None:
    framer = Framer(1000)
    assert framer.feed(b"hello" + wrap(MSG)) == [Noise(5), Frame(MSG)]


def test_frame_without_start_block_is_broken() -> None:
    framer = Framer(1000)
    events = framer.feed(MSG + b"\x1c\r" + wrap(b"MSH|2"))
    assert events == [Broken("MLLP frame without a start block (0x0B)", MSG), Frame(b"MSH|2")]


def test_lone_end_block_is_ignored() -> None:
    assert Framer(1000).feed(b"\x1c\r") == []


def test_new_start_block_inside_a_frame_means_the_first_was_truncated() -> None:
    framer = Framer(1000)
    events = framer.feed(b"\x0b" + MSG[:30] + wrap(MSG))
    assert len(events) == 2
    assert isinstance(events[0], Broken) and "new start block" in events[0].reason
    assert events[0].partial == MSG[:30]
    assert events[1] == Frame(MSG)


def test_timeout_inside_a_frame_means_truncated_and_the_stream_goes_on() -> None:
    framer = Framer(1000)
    assert framer.feed(b"\x0b" + MSG[:30]) == []
    assert framer.in_frame
    events = framer.timeout(2)
    assert len(events) == 1 and isinstance(events[0], Broken)
    assert "no end block (0x1C 0x0D) within 2 s" in events[0].reason
    assert events[0].partial == MSG[:30]
    assert not framer.in_frame
    assert framer.feed(wrap(MSG)) == [Frame(MSG)]


def test_timeout_between_frames_is_nothing() -> None:
    framer = Framer(1000)
    framer.feed(wrap(MSG))
    assert framer.timeout(2) == []


def test_eof_inside_a_frame_is_broken_and_eof_after_noise_is_noise() -> None:
    framer = Framer(1000)
    framer.feed(b"\x0bMSH|partial")
    events = framer.eof()
    assert len(events) == 1 and isinstance(events[0], Broken) and "connection closed" in events[0].reason
    framer = Framer(1000)
    framer.feed(b"junk")
    assert framer.eof() == [Noise(4)]
    assert Framer(1000).eof() == []


def test_oversized_frame_is_broken_once_then_discarded_to_its_end() -> None:
    framer = Framer(100)
    events = framer.feed(b"\x0b" + b"MSH|" + b"x" * 150)
    assert len(events) == 1 and isinstance(events[0], Broken) and "larger than 100 bytes" in events[0].reason
    assert framer.feed(b"y" * 500) == []  # still discarding, memory stays bounded
    assert framer.feed(b"z\x1c\r" + wrap(b"MSH|ok")) == [Frame(b"MSH|ok")]


def test_oversized_frame_arriving_whole() -> None:
    framer = Framer(10)
    events = framer.feed(wrap(b"MSH|" + b"x" * 20) + wrap(b"MSH|ok"))
    assert isinstance(events[0], Broken) and events[1] == Frame(b"MSH|ok")


def test_endless_noise_is_dropped() -> None:
    framer = Framer(10)
    assert framer.feed(b"n" * 11) == [Noise(11)]
    assert framer.feed(wrap(b"MSH|ok")) == [Frame(b"MSH|ok")]


def test_empty_frame_is_delivered_for_the_handler_to_refuse() -> None:
    assert Framer(10).feed(b"\x0b\x1c\r") == [Frame(b"")]
