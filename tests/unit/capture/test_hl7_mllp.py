"""The MLLP server with a stand-in handler (no Django): framing errors, allow-list, TLS, clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hl7.client import MLLPClient

from medarchive.capture.hl7 import mllp
from medarchive.capture.hl7.framing import Broken, wrap

MSG = b"MSH|^~\\&|HIS|H|A|B|20250301||MDM^T02|C1|P|2.5\rPID|1||P1\r"


@dataclass
class Running:
    server: mllp.Server
    thread: threading.Thread
    calls: list[tuple[bytes, str, str]] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.server.address is not None
        return self.server.address[1]

    def stop(self) -> None:
        loop = self.loop
        loop.call_soon_threadsafe(self.server.stop)
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)


def start(*, handle: Callable[[bytes, str], bytes] | None = None, workers: int = 2, **settings: object) -> Running:
    ready = threading.Event()
    box: dict[str, Running] = {}

    def default(data: bytes, peer: str) -> bytes:
        box["r"].calls.append((data, peer, threading.current_thread().name))
        return b"MSH|^~\\&|ACK\rMSA|AA|" + data[-3:]

    def reject(broken: Broken, peer: str) -> bytes:
        box["r"].rejects.append(broken.reason)
        return b"MSH|^~\\&|ACK\rMSA|AR||" + broken.reason.encode()

    server = mllp.Server(
        mllp.Settings(host="127.0.0.1", port=0, workers=workers, **settings),  # type: ignore[arg-type]
        handle=handle or default,
        reject=reject,
        on_worker_exit=lambda: box["r"].exits.append(threading.current_thread().name),
    )

    def run() -> None:
        asyncio.set_event_loop(running.loop)
        running.loop.run_until_complete(server.serve(lambda _address: ready.set(), signals=False))
        running.loop.close()

    running = Running(server=server, thread=threading.Thread(target=run, daemon=True))
    box["r"] = running
    running.thread.start()
    assert ready.wait(10)
    return running


@pytest.fixture
def listener() -> Iterator[Running]:
    running = start(frame_timeout=0.3)
    yield running
    running.stop()


def recv_frame(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\x1c\r"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_messages_are_handled_in_worker_threads_and_answered(listener: Running) -> None:
    with MLLPClient("127.0.0.1", listener.port) as client:
        assert client.send_message(MSG) == wrap(b"MSH|^~\\&|ACK\rMSA|AA|P1\r")
        assert client.send_message(MSG) == wrap(b"MSH|^~\\&|ACK\rMSA|AA|P1\r")
    assert [c[0] for c in listener.calls] == [MSG, MSG]
    assert all(c[1].startswith("127.0.0.1:") for c in listener.calls)
    assert all(c[2].startswith("hl7-worker-") for c in listener.calls)


def test_garbled_frame_gets_an_answer_and_the_connection_survives(listener: Running) -> None:
    with MLLPClient("127.0.0.1", listener.port) as client:
        reply = client.send(MSG + b"\x1c\r")  # no start block
        assert b"MSA|AR||MLLP frame without a start block" in reply
        assert b"MSA|AA" in client.send_message(MSG)


def test_truncated_frame_is_answered_after_the_frame_timeout(listener: Running) -> None:
    with MLLPClient("127.0.0.1", listener.port) as client:
        reply = client.send(b"\x0b" + MSG[:25])  # blocks until the listener gives up on the frame
        assert b"MSA|AR||truncated MLLP frame: no end block" in reply
        assert b"MSA|AA" in client.send_message(MSG)
    assert listener.calls == [(MSG, listener.calls[0][1], listener.calls[0][2])]


def test_truncated_frame_followed_by_a_new_frame_gets_two_answers(listener: Running) -> None:
    with socket.create_connection(("127.0.0.1", listener.port)) as sock:
        sock.sendall(b"\x0b" + MSG[:25] + wrap(MSG))
        first = recv_frame(sock)
        if b"MSA|AA" not in first:
            first += recv_frame(sock)
    assert b"MSA|AR||truncated MLLP frame: a new start block" in first
    assert b"MSA|AA|P1" in first


def test_peer_closing_mid_frame_is_answered_and_not_fatal(listener: Running) -> None:
    with socket.create_connection(("127.0.0.1", listener.port)) as sock:
        sock.sendall(b"\x0b" + MSG[:25])
    with MLLPClient("127.0.0.1", listener.port) as client:
        assert b"MSA|AA" in client.send_message(MSG)
    deadline = time.monotonic() + 10  # the closed connection is handled on its own coroutine
    while not listener.rejects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any("connection closed before the end block" in r for r in listener.rejects)


def test_noise_is_not_answered(listener: Running) -> None:
    with MLLPClient("127.0.0.1", listener.port) as client:
        assert b"MSA|AA" in client.send(b"garbage\r\n" + wrap(MSG))


def test_address_outside_the_allow_list_is_refused() -> None:
    running = start(allow=(ipaddress.ip_network("10.0.0.0/8"),))
    try:
        with socket.create_connection(("127.0.0.1", running.port)) as sock:
            sock.settimeout(5)
            sock.sendall(wrap(MSG))
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(100) == b""
        assert running.calls == []
    finally:
        running.stop()


def test_allow_values_are_checked() -> None:
    assert mllp.networks(["10.1.2.3", "192.168.0.0/16", "::1"]) == (
        ipaddress.ip_network("10.1.2.3/32"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("::1/128"),
    )
    with pytest.raises(ValueError, match="not-an-ip"):
        mllp.networks(["not-an-ip"])


def test_stop_lets_the_message_in_progress_finish_and_closes_worker_connections() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(data: bytes, peer: str) -> bytes:
        entered.set()
        assert release.wait(10)
        return b"MSH|^~\\&|ACK\rMSA|AA|slow"

    running = start(handle=slow, workers=3)
    replies: list[bytes] = []
    with MLLPClient("127.0.0.1", running.port) as client, MLLPClient("127.0.0.1", running.port):
        sender = threading.Thread(target=lambda: replies.append(client.send_message(MSG)))
        sender.start()
        assert entered.wait(10)
        running.loop.call_soon_threadsafe(running.server.stop)
        release.set()
        sender.join(10)
        running.thread.join(30)
    assert replies == [wrap(b"MSH|^~\\&|ACK\rMSA|AA|slow")]
    assert not running.thread.is_alive()
    assert sorted(running.exits) == ["hl7-worker-1", "hl7-worker-2", "hl7-worker-3"]


def test_mllp_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    running = start(tls=context)
    try:
        client_context = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection(("127.0.0.1", running.port)) as raw,
            client_context.wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            sock.sendall(wrap(MSG))
            assert b"MSA|AA|P1" in recv_frame(sock)
        with socket.create_connection(("127.0.0.1", running.port)) as plain:  # plain MLLP to a TLS port
            plain.settimeout(5)
            plain.sendall(wrap(MSG))
            with contextlib.suppress(ConnectionResetError):
                assert b"MSA" not in plain.recv(100)
        assert len(running.calls) == 1
    finally:
        running.stop()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_a_failing_handler_costs_its_connection_not_the_listener() -> None:
    calls: list[bytes] = []

    def flaky(data: bytes, peer: str) -> bytes:
        calls.append(data)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return b"MSH|^~\\&|ACK\rMSA|AA|ok"

    running = start(handle=flaky)
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
            sock.sendall(wrap(MSG))
            assert sock.recv(100) == b""  # closed without an answer
        with MLLPClient("127.0.0.1", running.port) as client:
            assert client.send_message(MSG) == wrap(b"MSH|^~\\&|ACK\rMSA|AA|ok")
    finally:
        running.stop()
