"""`medarchive listen hl7` as a real subprocess, driven by the `hl7` package's MLLP client."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import hl7
import pytest
from hl7.client import MLLPClient

from medarchive.capture.hl7 import samples

Cli = Any  # the fixture type lives in conftest.py
PASSWORD = "Correct-Horse-42"

pytestmark = pytest.mark.slow

PDF = samples.pdf(50 * 1024, seed="e2e")


class Listener:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self._pumping = threading.Thread(target=self._pump, daemon=True)
        self._pumping.start()
        ready = self.lines.get(timeout=120)
        match = re.search(r"on 127\.0\.0\.1:(\d+) as his", ready)
        assert match, ready
        self.port = int(match.group(1))

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, then the exit code, the rest of stdout and stderr."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        self.join()
        assert self.process.stderr is not None
        out = "".join(iter(lambda: self.lines.get_nowait() if not self.lines.empty() else "", ""))
        return self.process.returncode, out, self.process.stderr.read()

    def join(self) -> None:
        self._pumping.join(30)

    def client(self, encoding: str = "utf-8") -> MLLPClient:
        return MLLPClient("127.0.0.1", self.port, encoding=encoding)


def msa(reply: bytes, codec: str = "utf-8") -> tuple[str, str, str]:
    assert reply.startswith(b"\x0b") and reply.endswith(b"\x1c\r"), reply[:80]
    ack = hl7.parse(reply[1:-2].decode(codec))
    segment = ack.segment("MSA")
    text = ack.unescape(str(segment[3])) if len(segment) > 3 else ""
    return str(segment[1]), str(segment[2]), text


@pytest.fixture
def listener(cli: Cli) -> Iterator[Listener]:
    cli.run("user", "add", "his", "--role", "interface", "--password-stdin", input=PASSWORD + "\n")
    process = cli.popen("listen", "hl7", "--as", "his", "--port", "0", "--frame-timeout", "1")
    running = None
    try:
        running = Listener(process)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        if running is not None:
            running.join()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def records(cli: Cli) -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads(cli.run("records", "list", "--as", "archivist", "--json").stdout)[
        "items"
    ]
    return items


def test_listener_archives_refuses_and_stops_cleanly(cli: Cli, listener: Listener) -> None:
    with listener.client() as client:
        # AA: an MDM with a 50 KB PDF becomes an accepted inpatient record
        code, control, text = msa(client.send_message(samples.mdm(PDF)))
        assert (code, control) == ("AA", "MSG00001")
        number = re.fullmatch(r"received as (\S+) \(accepted\)", text)
        assert number, text
        # AA again for the same message, naming the earlier record; nothing new is stored
        code, _, text = msa(client.send_message(samples.mdm(PDF)))
        assert code == "AA" and f"already received as {number.group(1)}" in text
        # AE 205 for the same control ID with another document (a restarted counter): never "duplicate"
        reply = client.send_message(samples.mdm(samples.pdf(seed="changed")))
        code, control, text = msa(reply)
        assert (code, control) == ("AE", "MSG00001") and f"already used for record {number.group(1)}" in text
        assert b"|205^Duplicate key identifier^HL70357|" in reply
        # AE: unknown department, naming the field
        code, control, text = msa(client.send_message(samples.mdm(PDF, control_id="BAD1", location="XX")))
        assert (code, control) == ("AE", "BAD1") and 'PV1-3.1 "XX"' in text
        # AE: missing PID-3, bad base64
        assert msa(client.send_message(samples.mdm(PDF, control_id="BAD2", patient_id="")))[0] == "AE"
        bad_doc = samples.mdm(PDF, control_id="BAD3", observations=["ED|X||^AP^PDF^Base64^@@@||||||F"])
        assert msa(client.send_message(bad_doc))[2] == "OBX 1: OBX-5.5 is not valid base64"
        # AR: unsupported type, bad encoding characters
        code, _, text = msa(client.send_message(samples.mdm(PDF, control_id="BAD4", kind="ORM^O01")))
        assert code == "AR" and "message type ORM^O01 is not supported" in text
        code, _, text = msa(client.send_message(samples.mdm(PDF).replace(b"MSH|^~\\&|", b"MSH|^~\\|")))
        assert code == "AR" and "MSH-2 encoding characters" in text
        # a truncated frame gets AR after the frame timeout; the connection goes on
        code, control, text = msa(client.send(b"\x0b" + samples.mdm(PDF, control_id="CUT1")[:500]))
        assert (code, control) == ("AR", "CUT1") and "truncated MLLP frame" in text
        # ... and a frame cut short by the next one gets AR, then the next one its AA
        with socket.create_connection(("127.0.0.1", listener.port), timeout=60) as sock:
            sock.sendall(b"\x0b" + samples.adt_a03(control_id="CUT2")[:120])
            sock.sendall(b"\x0b" + samples.adt_a03(control_id="ADT1") + b"\x1c\r")
            replies = b""
            while replies.count(b"\x1c\r") < 2:
                chunk = sock.recv(65536)
                assert chunk
                replies += chunk
        first, second = (r + b"\x1c\r" for r in replies.split(b"\x1c\r")[:2])
        assert msa(first)[:2] == ("AR", "CUT2")
        assert msa(second)[:2] == ("AA", "ADT1")
        # still the same connection
        assert msa(client.send_message(samples.oru(["结论：未见异常"], control_id="LAB1")))[0] == "AA"

    # GB18030 end to end: the bytes on the wire are GB18030, the name survives, the ACK is GB18030
    raw = samples.mdm(PDF[:-10] + b"gb18030!\n", charset="GB 18030-2000", control_id="GB1", family_name="欧阳")
    assert "欧阳".encode("gb18030") in raw
    with listener.client("gb18030") as client:
        reply = client.send_message(raw)
    assert msa(reply, "gb18030")[0] == "AA"
    assert b"GB 18030-2000" in reply

    stored = records(cli)
    assert len(stored) == 3
    by_control = {r["metadata"]["message_control_id"]: r for r in stored}  # type: ignore[index]
    assert by_control["GB1"]["metadata"]["patient_name"] == "欧阳三"  # type: ignore[index]
    assert by_control["MSG00001"]["class"] == "BA-ZY"
    assert by_control["LAB1"]["title"] == "血常规", "no visit number in a title"

    code, out, err = listener.stop()
    assert code == 0, err
    assert "medarchive HL7 listener stopped" in out
    # refusals are logged without patient names or visit numbers
    assert "欧阳" not in err and "张三" not in err and "ZY2025000123" not in err
    assert "AE at PV1-3.1: unknown department" in err


def test_listener_needs_an_interface_account(cli: Cli) -> None:
    result = cli.run("listen", "hl7", "--as", "archivist", "--port", "0", check=False)
    assert result.returncode == 3
    assert "has role archivist; the listener needs an interface account" in " ".join(result.stderr.split())
    result = cli.run("listen", "hl7", "--as", "nobody", "--port", "0", check=False)
    assert result.returncode == 3
    assert "no active user 'nobody'" in " ".join(result.stderr.split())


def test_listener_reports_a_port_in_use(cli: Cli) -> None:
    cli.run("user", "add", "his", "--role", "interface", "--password-stdin", input=PASSWORD + "\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = cli.run("listen", "hl7", "--as", "his", "--port", port, check=False)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in " ".join(result.stderr.split())
