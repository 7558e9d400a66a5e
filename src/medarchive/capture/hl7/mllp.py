"""The MLLP server: asyncio for the sockets, a few worker threads for the archive work.

Connections are cheap (one coroutine each); messages are handled by `workers` threads that each
keep their own database connection across messages, so no per-message set-up. MLLP is
request/response: a sender waits for the ACK of one message before it sends the next, so each
connection is handled in order while different connections run in parallel.

The server knows nothing of Django: it gets a `handle(frame, peer) -> ack` callable, a
`reject(broken, peer) -> ack` callable for frames that never became a message, and an
`on_worker_exit` hook (closes the thread's database connections).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import queue
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from medarchive.capture.hl7.framing import Broken, Frame, Framer, Noise, wrap

log = logging.getLogger("medarchive.capture.hl7")

READ_BYTES = 256 * 1024
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

Handle = Callable[[bytes, str], bytes]
Reject = Callable[[Broken, str], bytes]


class Workers:
    """A fixed set of threads; each runs `on_exit` when it stops (to close its DB connections)."""

    def __init__(self, count: int, on_exit: Callable[[], None] | None = None) -> None:
        self._queue: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._on_exit = on_exit
        self._threads = [
            threading.Thread(target=self._run, name=f"hl7-worker-{n}", daemon=True) for n in range(1, count + 1)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((future, fn))
        return future

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                future, fn = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(fn())
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 2575
    workers: int = 4
    max_bytes: int = 64 * 1024 * 1024
    frame_timeout: float = 30.0  # seconds without a byte inside a frame before it counts as truncated
    grace: float = 30.0  # seconds to finish messages in progress on shutdown
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = LOOPBACK
    tls: ssl.SSLContext | None = None


def networks(values: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`--allow` values (addresses or CIDR blocks) → networks; raises ValueError naming a bad one."""
    found = []
    for value in values:
        try:
            found.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--allow {value!r} is not an IP address or network (e.g. 10.0.0.0/8)") from None
    return tuple(found)


@dataclass
class _Connection:
    task: asyncio.Task[None]
    busy: bool = False


@dataclass
class Server:
    """Run with `await server.serve(ready)`; `stop()` (or SIGTERM/SIGINT) ends it cleanly."""

    settings: Settings
    handle: Handle
    reject: Reject
    on_worker_exit: Callable[[], None] | None = None
    address: tuple[str, int] | None = None
    _connections: dict[int, _Connection] = field(default_factory=dict)
    _stopping: asyncio.Event | None = None
    _workers: Workers | None = None

    async def serve(self, ready: Callable[[tuple[str, int]], None] | None = None, *, signals: bool = True) -> None:
        self._stopping = asyncio.Event()
        self._workers = Workers(self.settings.workers, self.on_worker_exit)
        loop = asyncio.get_running_loop()
        installed = []
        try:
            server = await asyncio.start_server(
                self._client, self.settings.host, self.settings.port, ssl=self.settings.tls, limit=READ_BYTES
            )
            sockname = server.sockets[0].getsockname()
            self.address = (str(sockname[0]), int(sockname[1]))
            if signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.add_signal_handler(sig, self.stop)
                        installed.append(sig)
            if ready is not None:
                ready(self.address)
            await self._stopping.wait()
            server.close()
            await self._drain()
            await server.wait_closed()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await asyncio.to_thread(self._workers.shutdown)

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def _drain(self) -> None:
        """Idle connections close now; those with a message in progress first send its ACK."""
        for conn in list(self._connections.values()):
            if not conn.busy:
                conn.task.cancel()
        busy = [c.task for c in self._connections.values() if not c.task.done()]
        if busy:
            _, pending = await asyncio.wait(busy, timeout=self.settings.grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    def _allowed(self, peer: Any) -> bool:
        try:
            address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
        except (ValueError, TypeError, IndexError):
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.settings.allow)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        if not self._allowed(peername):
            log.warning("hl7: connection from %s refused: address not in --allow", peer)
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:  # senders keep connections open for days: notice the ones that died
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        task = asyncio.current_task()
        assert task is not None
        conn = _Connection(task)
        self._connections[id(task)] = conn
        log.info("hl7: %s connected", peer)
        try:
            await self._session(reader, writer, peer, conn)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.warning("hl7: %s: connection lost: %s", peer, type(exc).__name__)
        except Exception:  # a bug must cost this connection only, never the listener
            log.exception("hl7: %s: internal error; connection closed", peer)
        finally:
            self._connections.pop(id(task), None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            log.info("hl7: %s disconnected", peer)

    async def _session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str, conn: _Connection
    ) -> None:
        framer = Framer(self.settings.max_bytes)
        assert self._stopping is not None
        while not self._stopping.is_set():
            timeout = self.settings.frame_timeout if framer.in_frame else None
            try:
                async with asyncio.timeout(timeout):
                    data = await reader.read(READ_BYTES)
            except TimeoutError:
                events = framer.timeout(self.settings.frame_timeout)
                data = None
            else:
                events = framer.feed(data) if data else framer.eof()
            conn.busy = True
            try:
                for event in events:
                    reply = await self._answer(event, peer)
                    if reply is not None:
                        writer.write(wrap(reply))
                        await writer.drain()
            finally:
                conn.busy = False
            if data == b"":
                return

    async def _answer(self, event: Frame | Broken | Noise, peer: str) -> bytes | None:
        if isinstance(event, Noise):
            log.warning("hl7: %s: %d bytes outside an MLLP frame ignored", peer, event.size)
            return None
        if isinstance(event, Broken):
            return self.reject(event, peer)
        assert self._workers is not None
        data = event.data
        return await asyncio.wrap_future(self._workers.submit(lambda: self.handle(data, peer)))
