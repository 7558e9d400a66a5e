"""serve and worker."""

from __future__ import annotations

import functools
import socket
import time
from http import HTTPStatus
from typing import Annotated, Any

import typer

from medarchive.cli import runtime
from medarchive.cli.output import console

HEADER_LIMIT = 64 * 1024  # request line and headers together
LINGER_SECONDS = 10  # after a refusal, how long the rest of the client's body is read and dropped
LINGER_BYTES = 64 * 1024 * 1024


def serve_forever(host: str, port: int, threads: int = 8) -> None:
    runtime.setup()
    runtime.ensure_initialised()
    from waitress.server import BaseWSGIServer, create_server

    from medarchive.core import gate
    from medarchive.wsgi import application

    # waitress receives a whole body (spooling it past 512 KiB) before the application sees the
    # request: the gate judges each body on its headers first (see core/gate.py).
    BaseWSGIServer.channel_class = gated_channel()
    server = create_server(
        application,
        host=host,
        port=port,
        threads=threads,
        ident="medarchive",
        max_request_body_size=gate.upload_limit() + 1,  # waitress refuses a body of this size or more
        max_request_header_size=HEADER_LIMIT,
    )
    console.print(f"medarchive on http://{host}:{port}/  (Ctrl+C to stop)")
    server.run()


def gated_channel() -> type:
    """waitress's HTTP channel with a parser that answers a refused body before receiving it."""
    from django.db import close_old_connections
    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser
    from waitress.utilities import Error, RequestEntityTooLarge

    from medarchive.core import gate
    from medarchive.core.apierrors import too_large
    from medarchive.core.errors import MedarchiveError

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


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    threads: Annotated[int, typer.Option(help="Worker threads.")] = 8,
) -> None:
    """Serve the web UI and the REST API (waitress)."""
    serve_forever(host, port, threads)


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run the due jobs once and exit.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Run every job now, due or not.")] = False,
    interval: Annotated[int, typer.Option(help="Seconds between looks for due jobs.")] = 60,
) -> None:
    """Run scheduled jobs: fixity audits, recovery of interrupted writes, session clean-up."""
    runtime.setup()
    runtime.ensure_initialised()
    from medarchive.core.jobs import run_due
    from medarchive.security import context

    context.source.set("worker")
    while True:
        for name, outcome in run_due(force=force):
            console.print(f"{name}: {outcome}", highlight=False)
        if once:
            return
        force = False
        time.sleep(interval)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("worker")(worker)
