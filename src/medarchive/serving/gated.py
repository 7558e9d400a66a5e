"""waitress's HTTP channel with the body gate in its parser (core/gate.py): a refused body is answered
from its headers, before waitress receives and spools it, and the connection closes gently.

waitress reads a whole body (spooling it past 512 KiB) before the application sees the request, so
the gate judges it here first; a client that sent `Expect: 100-continue` is refused without being
asked for the body. Each server process (serving/worker.py) installs this channel.
"""

from __future__ import annotations

import functools
import socket
import time
from http import HTTPStatus
from typing import Any

from django.db import close_old_connections
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.utilities import Error, RequestEntityTooLarge

from medarchive.core import gate
from medarchive.core.apierrors import too_large
from medarchive.core.errors import MedarchiveError

HEADER_LIMIT = 64 * 1024  # request line and headers together
LINGER_SECONDS = 10  # after a refusal, how long the rest of the client's body is read and dropped
LINGER_BYTES = 64 * 1024 * 1024


def gated_channel() -> type:
    """waitress's HTTP channel with a parser that answers a refused body before receiving it."""

    class Refused(Error):
        code = 400

        def __init__(self, error: MedarchiveError, path: str) -> None:
            super().__init__(error.message)
            self.code, self.headers, self.body = gate.render(error, path)

        def to_response(self, ident: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
            return f"{self.code} {HTTPStatus(self.code).phrase}", self.headers, self.body

    class GatedParser(HTTPRequestParser):
        judged = False
        error: Any = None
        completed = False

        def __init__(self, adj: Any, channel: Any = None) -> None:
            super().__init__(adj)
            self.channel = channel

        def received(self, data: bytes) -> int:
            consumed: int = super().received(data)
            if self.headers_finished and not self.judged:
                self.judged = True  # the body (if any) starts with the next call: nothing of it is read yet
                declared = isinstance(self.error, RequestEntityTooLarge)  # waitress's own limit, checked first
                if (self.error is None and not self.completed) or declared:
                    length = None if self.chunked else self.content_length
                    try:
                        verdict = gate.refusal(self.command, self.path, self._header, length)
                    finally:
                        close_old_connections()  # this network thread keeps no connection past its age
                    if self._judge(verdict):
                        return len(data)  # what came with the headers is dropped, not parsed as a request
            elif self.chunked and self.error is None and not self.completed:
                limit = gate.route_limit(self.command, self.path)
                if self.body_bytes_received > limit and self._judge(too_large(limit)):
                    return len(data)
            if isinstance(self.error, RequestEntityTooLarge):
                self.error = Refused(too_large(self.adj.max_request_body_size - 1), self.path or "")
                self._linger()
            return consumed

        def _header(self, name: str) -> Any:
            return self.headers.get(name.upper().replace("-", "_"))

        def _judge(self, error: MedarchiveError | None) -> bool:
            if error is None:
                return False
            self.error = Refused(error, self.path or "")
            self.completed = True
            self.expect_continue = False  # no "100 Continue": the client need not send the body
            self.connection_close = True
            self._linger()
            return True

        def _linger(self) -> None:
            if self.channel is not None:
                self.channel.refused = True

    class GatedChannel(HTTPChannel):
        """After a refusal the channel closes gently: the answer is sent, the sending side shut, and
        what the client still sends is read and dropped for a few seconds, so the client (which may
        be writing its body before it reads) receives the answer instead of a connection reset."""

        refused = False
        lingering_until: float | None = None
        lingered = 0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.parser_class = functools.partial(GatedParser, channel=self)

        def received(self, data: bytes) -> bool:
            if self.lingering_until is not None:
                return True  # the body of a refused request: dropped
            return bool(super().received(data))

        def handle_close(self) -> None:
            if self.refused and self.lingering_until is None and self.connected and not self.total_outbufs_len:
                try:
                    self.socket.shutdown(socket.SHUT_WR)
                except OSError:
                    super().handle_close()
                    return
                self.will_close = False
                self.lingering_until = time.monotonic() + LINGER_SECONDS
                return
            super().handle_close()

        def readable(self) -> bool:
            return self.lingering_until is not None or bool(super().readable())

        def writable(self) -> bool:
            return self.lingering_until is None and bool(super().writable())

        def handle_read(self) -> None:
            if self.lingering_until is None:
                super().handle_read()
                return
            try:
                data = self.recv(64 * 1024)
            except OSError:
                data = b""
            self.lingered += len(data)
            if not data or time.monotonic() > self.lingering_until or self.lingered > LINGER_BYTES:
                super().handle_close()

    return GatedChannel
