"""MLLP framing: `<VT> message <FS><CR>` (0x0B … 0x1C 0x0D) out of a TCP byte stream. Pure.

A `Framer` is fed whatever arrived and returns what it found: whole frames, broken frames (each
gets a rejection ACK, so the sender learns why and the connection goes on) and noise between
frames (logged only: a reply to noise would be read as the answer to the sender's next message).
"""

from __future__ import annotations

from dataclasses import dataclass

START, END, CR = b"\x0b", b"\x1c", b"\x0d"
PEEK_BYTES = 4096  # of a broken frame, kept to read its MSH for the rejection's addressing


@dataclass(frozen=True)
class Frame:
    data: bytes


@dataclass(frozen=True)
class Broken:
    reason: str
    partial: bytes = b""


@dataclass(frozen=True)
class Noise:
    size: int


Event = Frame | Broken | Noise


def wrap(message: bytes) -> bytes:
    return START + message + END + CR


class Framer:
    """Stream → frames, bounded in memory by `max_bytes` per frame."""

    _IDLE, _FRAME, _DISCARD = range(3)

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._state = self._IDLE
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already searched for delimiters
        self._skip_cr = False  # the last chunk ended with <FS>; its <CR> may start the next one

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and not ended (a read timeout then means truncation)."""
        return self._state == self._FRAME

    def feed(self, data: bytes) -> list[Event]:
        if not data:
            return []
        if self._skip_cr:
            self._skip_cr = False
            if data[:1] == CR:
                data = data[1:]
        self._buffer += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def timeout(self, seconds: float) -> list[Event]:
        """No byte arrived for `seconds` inside a frame: the frame is truncated."""
        if self._state == self._FRAME:
            partial = bytes(self._buffer[:PEEK_BYTES])
            self._reset()
            return [Broken(f"truncated MLLP frame: no end block (0x1C 0x0D) within {seconds:g} s", partial)]
        if self._state == self._DISCARD:
            self._reset()
        return []

    def eof(self) -> list[Event]:
        """The peer closed the connection."""
        events: list[Event] = []
        if self._state == self._FRAME:
            reason = "truncated MLLP frame: the connection closed before the end block"
            events.append(Broken(reason, bytes(self._buffer[:PEEK_BYTES])))
        elif self._state == self._IDLE and bytes(self._buffer).strip():
            events.append(Noise(len(self._buffer)))
        self._reset()
        return events

    def _reset(self) -> None:
        self._state = self._IDLE
        self._buffer.clear()
        self._scanned = 0

    def _consume(self, end: int) -> None:
        """Drop the buffer up to and including the <FS> at `end`, and its <CR>."""
        if end + 1 < len(self._buffer):
            if self._buffer[end + 1 : end + 2] == CR:
                end += 1
        else:
            self._skip_cr = True
        del self._buffer[: end + 1]
        self._scanned = 0

    def _step(self, events: list[Event]) -> bool:
        """One transition; False when more bytes are needed."""
        if self._state == self._DISCARD:
            return self._step_discard()
        if self._state == self._IDLE:
            return self._step_idle(events)
        return self._step_frame(events)

    def _step_discard(self) -> bool:
        end = self._buffer.find(END)
        if end == -1:
            self._buffer.clear()
            self._scanned = 0
            return False
        self._consume(end)
        self._state = self._IDLE
        return True

    def _step_idle(self, events: list[Event]) -> bool:
        buf = self._buffer
        start, end = buf.find(START, self._scanned), buf.find(END, self._scanned)
        if start == -1 and end == -1:
            if len(buf) > self.max_bytes:
                events.append(Noise(len(buf)))
                self._reset()
            else:
                self._scanned = len(buf)
            return False
        if end != -1 and (start == -1 or end < start):
            chunk = bytes(buf[:end])
            self._consume(end)
            if chunk.strip():
                events.append(Broken("MLLP frame without a start block (0x0B)", chunk[:PEEK_BYTES]))
            return True
        if bytes(buf[:start]).strip():
            events.append(Noise(start))
        del buf[: start + 1]
        self._scanned = 0
        self._state = self._FRAME
        return True

    def _step_frame(self, events: list[Event]) -> bool:
        buf = self._buffer
        start, end = buf.find(START, self._scanned), buf.find(END, self._scanned)
        if start != -1 and (end == -1 or start < end):
            reason = "truncated MLLP frame: a new start block (0x0B) arrived before the end block (0x1C 0x0D)"
            events.append(Broken(reason, bytes(buf[: min(start, PEEK_BYTES)])))
            del buf[: start + 1]
            self._scanned = 0
            return True
        if end != -1:
            data = bytes(buf[:end])
            self._consume(end)
            self._state = self._IDLE
            events.append(Broken(self._too_large(), data[:PEEK_BYTES]) if len(data) > self.max_bytes else Frame(data))
            return True
        if len(buf) > self.max_bytes:
            events.append(Broken(self._too_large(), bytes(buf[:PEEK_BYTES])))
            buf.clear()
            self._scanned = 0
            self._state = self._DISCARD
            return False
        self._scanned = len(buf)
        return False

    def _too_large(self) -> str:
        return f"message larger than {self.max_bytes} bytes: this listener accepts frames up to that size"
