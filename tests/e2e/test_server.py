"""`medarchive serve` as production runs it: several processes, a worker killed or the whole server
killed under load, a graceful reload and stop; every read answered is in the audit chain afterwards."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import _free_port
from tests.e2e.test_concurrency import _query

pytestmark = pytest.mark.slow


class _Server:
    def __init__(self, cli: Any, tmp_path: Path, workers: int = 2) -> None:
        self.port = _free_port()
        self.pid_file = tmp_path / f"serve-{self.port}.pid"
        self.log = (tmp_path / f"serve-{self.port}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "medarchive", "--data-dir", str(cli.data_dir), "serve", "--port", str(self.port),
             "--workers", str(workers), "--threads", "2", "--pid-file", str(self.pid_file)],
            env=cli.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self._healthy():
            assert self.proc.poll() is None and time.monotonic() < deadline, Path(self.log.name).read_text()
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            return self.get("/api/v1/health", {})[0] == 200
        except OSError:
            return False

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False)
        return [int(pid) for pid in out.stdout.split()]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if sig == signal.SIGKILL:
            for pid in self.workers():
                os.kill(pid, signal.SIGKILL)
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.log.close()


class _Readers:
    """Clients reading one record over and over; counts what was answered 200."""

    def __init__(self, server: _Server, path: str, token: str, clients: int = 4) -> None:
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        headers = {"Authorization": f"Bearer {token}"}

        def run() -> None:
            while not self._stop.is_set():
                try:
                    status, body = server.get(path, headers)
                except (OSError, http.client.HTTPException) as exc:  # a worker killed mid-answer
                    status, body = 0, repr(exc).encode()
                with self._lock:
                    if status == 200:
                        self.ok += 1
                    else:
                        self.failed.append(f"{status} {body[:80]!r}")

        self._threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def _record(cli: Any) -> tuple[str, str]:
    pdf = cli.data_dir.parent / "读取测试.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + os.urandom(2048))
    made = json.loads(
        cli.run("ingest", str(pdf), "--class", "WS", "--department", "BGS", "--title", "读取测试", "--date",
                "2025-05-05", "--as", "archivist", "--json").stdout
    )  # fmt: skip
    token = cli.run("token", "create", "archivist").stdout.strip()
    return made["records"][0]["id"], token


def _reads_in_chain(cli: Any, record_id: str) -> int:
    """Verify the chain (which seals what waits first), then count the record's reads in it."""
    report = json.loads(cli.run("audit", "verify", "--json").stdout)
    assert report["ok"] and report["unsealed"] == 0, report
    assert _query(cli, "SELECT COUNT(*) FROM security_pendingauditentry") == [(0,)]
    sql = "SELECT COUNT(*) FROM security_auditentry WHERE action = 'record:metadata:read' AND object_id = '%s'"
    return int(_query(cli, sql % record_id.replace("-", ""))[0][0]) + int(_query(cli, sql % record_id)[0][0])


def test_a_killed_worker_is_replaced_and_every_answered_read_is_in_the_chain(cli: Any, tmp_path: Path) -> None:
    record_id, token = _record(cli)
    server = _Server(cli, tmp_path)
    readers = _Readers(server, f"/api/v1/records/{record_id}", token)
    time.sleep(2)
    victim = server.workers()[0]
    os.kill(victim, signal.SIGKILL)  # mid-request, with reads written and not yet sealed
    time.sleep(3)
    assert victim not in server.workers() and len(server.workers()) == 2  # the arbiter started another
    before_reload = readers.ok
    os.kill(int(server.pid_file.read_text()), signal.SIGHUP)  # graceful reload: new workers, old ones finish
    time.sleep(4)
    readers.stop()
    server.stop()
    assert readers.ok > before_reload > 0
    # The killed worker may have dropped the requests it was serving (their clients saw an error);
    # everything answered 200 was audited before it left, and is sealed once an auditor looks.
    assert len(readers.failed) <= 2 * 2, readers.failed
    assert _reads_in_chain(cli, record_id) >= readers.ok


def test_a_graceful_reload_under_load_loses_no_request(cli: Any, tmp_path: Path) -> None:
    record_id, token = _record(cli)
    server = _Server(cli, tmp_path)
    readers = _Readers(server, f"/api/v1/records/{record_id}", token)
    time.sleep(2)
    old = set(server.workers())
    os.kill(int(server.pid_file.read_text()), signal.SIGHUP)  # old workers finish what they hold, then go
    deadline = time.monotonic() + 30
    while (set(server.workers()) & old or len(server.workers()) < 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(server.workers()) & old and len(server.workers()) == 2
    time.sleep(1)
    readers.stop()
    server.stop()
    assert readers.ok > 0 and readers.failed == []
    assert _reads_in_chain(cli, record_id) == readers.ok


def test_reads_of_a_server_killed_outright_are_sealed_afterwards(cli: Any, tmp_path: Path) -> None:
    record_id, token = _record(cli)
    server = _Server(cli, tmp_path)
    readers = _Readers(server, f"/api/v1/records/{record_id}", token, clients=2)
    time.sleep(2)
    readers.stop()
    server.stop(signal.SIGKILL)  # master and workers: no exit hook, no last sealing pass
    assert readers.ok > 0 and readers.failed == []
    assert _reads_in_chain(cli, record_id) == readers.ok


def test_a_graceful_stop_seals_what_each_worker_wrote(cli: Any, tmp_path: Path) -> None:
    record_id, token = _record(cli)
    cli.env["MEDARCHIVE_AUDIT_SEAL_MS"] = "600000"  # the sealer never gets to its next pass by itself
    server = _Server(cli, tmp_path)
    for _ in range(5):
        assert server.get(f"/api/v1/records/{record_id}", {"Authorization": f"Bearer {token}"})[0] == 200
    server.stop()
    assert _query(cli, "SELECT COUNT(*) FROM security_pendingauditentry") == [(0,)]


def _sources(cli: Any, record_id: str) -> list[str]:
    cli.run("audit", "verify", "--json")  # seals what waits
    rows = _query(
        cli,
        "SELECT source FROM security_auditentry WHERE action = 'record:metadata:read' "
        f"AND object_id IN ('{record_id}', '{record_id.replace('-', '')}') ORDER BY seq",
    )
    return [r[0] for r in rows]


def test_forwarded_addresses_are_believed_only_from_the_trusted_proxy(cli: Any, tmp_path: Path) -> None:
    record_id, token = _record(cli)
    spoofed = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}
    server = _Server(cli, tmp_path)
    assert server.get(f"/api/v1/records/{record_id}", spoofed)[0] == 200
    server.stop()
    assert _sources(cli, record_id) == ["127.0.0.1"]  # no proxy configured: the header is dropped

    cli.env["MEDARCHIVE_TRUSTED_PROXY"] = "127.0.0.1"  # the test client stands in for nginx on loopback
    server = _Server(cli, tmp_path)
    assert server.get(f"/api/v1/records/{record_id}", spoofed)[0] == 200
    server.stop()
    assert _sources(cli, record_id) == ["127.0.0.1", "10.1.2.3"]
