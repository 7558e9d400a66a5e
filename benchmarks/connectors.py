"""Connector throughput: HL7 v2 over MLLP and FHIR DocumentReference POSTs against plain REST ingest.

    python benchmarks/connectors.py [--count N] [--size BYTES] [--json]

What it does (see docs/benchmarks.md):

1. Generates N distinct inpatient documents before anything is timed: a real PDF of a
   discharge summary (Chinese text, so the door's text fingerprint has work to do, and a
   scanned image of noise that does not compress) of about `--size` bytes (50 KiB default).
2. Runs each phase on a fresh embedded archive (SQLite + local blobs) with the real
   server process, one interface account and its API token:

   * rest-records: `POST /api/v1/records` (multipart), the plain REST ingest: a draft,
     no checks at the door. The raw baseline of this benchmark.
   * rest-submission: `POST /api/v1/submissions` (multipart, one record): the same
     bytes through the door (received, checked, auto-accepted as 住院病案).
   * fhir: `POST /fhir/r4/DocumentReference`, the PDF inline as base64: through the door.
   * hl7: `medarchive listen hl7`, one MDM^T02 per document over one MLLP connection,
     the PDF as base64 in OBX-5 (ED), waiting for each ACK: through the door.

   One client, one connection, sequential requests (what an interface engine does),
   after 5 untimed warm-up requests. Client and server share the machine.
3. Prints documents/s per phase and the ratios: each connector against rest-submission
   (same door: what the protocol costs) and against rest-records (the raw baseline).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

PASSWORD = "Bench-Mark-2026"
DEPARTMENT = ("NK", "内科")
USERNAME = "bench-his"
WARMUP = 5
PHASES = ("rest-records", "rest-submission", "fhir", "hl7")
START, END = b"\x0b", b"\x1c\x0d"


# --- documents -------------------------------------------------------------------------------------


def documents(count: int, size: int) -> list[tuple[str, bytes]]:
    """(patient id, PDF bytes) per document; each distinct in text and bytes."""
    return [_pdf(f"P{n:07d}", n, size) for n in range(count + WARMUP)]


def _pdf(patient: str, n: int, size: int) -> tuple[str, bytes]:
    """A discharge summary: Chinese text (CID font, as hospital systems print it) and a scanned
    signature block (a noise image, incompressible) sized so the file is about `size` bytes."""
    import io

    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    lines = [
        f"出院小结  患者 {patient}",
        f"因发热、咳嗽入院，诊断为社区获得性肺炎，住院第{n % 9 + 3}天体温恢复正常。",
        f"出院医嘱：继续口服抗生素{n % 5 + 3}天，两周后门诊复查胸片。随访编号 {uuid.uuid4()}。",
    ]
    side = 64
    while True:
        noise = Image.frombytes("L", (side, side), secrets.token_bytes(side * side))
        jpeg = io.BytesIO()
        noise.save(jpeg, "JPEG", quality=90)
        out = io.BytesIO()
        page = canvas.Canvas(out)
        page.setFont("STSong-Light", 12)
        for row, line in enumerate(lines):
            page.drawString(60, 780 - 20 * row, line)
        page.drawImage(ImageReader(io.BytesIO(jpeg.getvalue())), 60, 400, width=200, height=200)
        page.save()
        pdf = out.getvalue()
        if len(pdf) >= size or side > 4096:
            return patient, pdf
        side = int(side * max(1.05, (size / len(pdf)) ** 0.5))


# --- an archive and its server ----------------------------------------------------------------------


def _cli(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "medarchive", "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env=_env(),
    )
    if done.returncode != 0:
        raise SystemExit(f"medarchive {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDARCHIVE_") and k != "DATABASE_URL"}
    return {**env, "PYTHONPATH": str(ROOT / "src"), "MEDARCHIVE_ENV": "embedded"}


def archive(data_dir: Path) -> str:
    """A fresh archive with one department and an interface account; returns its API token."""
    _cli(data_dir, "init")
    _cli(data_dir, "department", "add", *DEPARTMENT)
    _cli(data_dir, "user", "add", USERNAME, "--role", "interface", "--password-stdin", stdin=PASSWORD + "\n")
    return str(json.loads(_cli(data_dir, "token", "create", USERNAME, "--name", "benchmark", "--json"))["token"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data_dir: Path, *args: str, ready: Callable[[int], bool]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "medarchive", "--data-dir", str(data_dir), *args, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"medarchive {' '.join(args)} exited with {proc.returncode}")
        if ready(port):
            return proc, port
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"medarchive {' '.join(args)} did not come up within 60 s")


def _http_ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/api/v1/health")
        return conn.getresponse().status == 200
    except OSError:
        return False


def _tcp_ready(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the clients --------------------------------------------------------------------------------------


def _multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = f"bench{secrets.token_hex(8)}"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _description(patient: str) -> dict[str, Any]:
    return {
        "class_code": "BA-ZY",
        "department": DEPARTMENT[0],
        "title": f"出院小结 {patient}",
        "date": "2025-03-01",
        "metadata": {"patient_id": patient, "patient_name": "张三", "visit_number": f"ZY{patient}"},
    }


class HttpClient:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.auth = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: bytes, content_type: str, expect: set[int]) -> None:
        self.conn.request("POST", path, body=body, headers={**self.auth, "Content-Type": content_type})
        response = self.conn.getresponse()
        answer = response.read()
        if response.status not in expect:
            raise SystemExit(f"POST {path} answered {response.status}: {answer[:500]!r}")


def rest_records(client: HttpClient, patient: str, pdf: bytes) -> None:
    desc = _description(patient)
    fields = {k: v for k, v in desc.items() if k != "metadata"} | {"metadata": json.dumps(desc["metadata"])}
    body, kind = _multipart(fields, [("files", f"{patient}.pdf", pdf)])
    client.post("/api/v1/records", body, kind, {201})


def rest_submission(client: HttpClient, patient: str, pdf: bytes) -> None:
    manifest = [{**_description(patient), "files": [f"{patient}.pdf"]}]
    body, kind = _multipart({"manifest": json.dumps(manifest, ensure_ascii=False)}, [("files", f"{patient}.pdf", pdf)])
    client.post("/api/v1/submissions", body, kind, {201})


def fhir(client: HttpClient, patient: str, pdf: bytes) -> None:
    resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "masterIdentifier": {"system": "urn:bench", "value": f"DOC-{patient}"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
        "category": [{"coding": [{"system": "urn:medarchive:class", "code": "BA-ZY"}]}],
        "subject": {"identifier": {"value": patient}, "display": "张三"},
        "date": "2025-03-01T10:00:00+08:00",
        "context": {
            "period": {"start": "2025-02-20", "end": "2025-03-01"},
            "practiceSetting": {"coding": [{"system": "urn:medarchive:department", "code": DEPARTMENT[0]}]},
        },
        "content": [{"attachment": {"contentType": "application/pdf", "title": f"{patient}.pdf", "data": _b64(pdf)}}],
    }
    body = json.dumps(resource, ensure_ascii=False).encode()
    client.post("/fhir/r4/DocumentReference", body, "application/fhir+json", {201})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class MllpClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buffer = b""

    def send(self, message: bytes) -> bytes:
        self.sock.sendall(START + message + END)
        while END not in self.buffer:
            piece = self.sock.recv(65536)
            if not piece:
                raise SystemExit("the HL7 listener closed the connection")
            self.buffer += piece
        frame, _, self.buffer = self.buffer.partition(END)
        return frame.lstrip(START)


def hl7(client: MllpClient, patient: str, pdf: bytes) -> None:
    from medarchive.capture.hl7 import samples

    message = samples.mdm(pdf, control_id=f"B{patient}", patient_id=patient, visit_number=f"ZY{patient}")
    ack = client.send(message)
    if b"MSA|AA" not in ack:
        raise SystemExit(f"HL7 listener did not accept: {ack[:300]!r}")


# --- phases -----------------------------------------------------------------------------------------------


def run_phase(name: str, docs: list[tuple[str, bytes]], work: Path) -> dict[str, Any]:
    data_dir = work / name
    token = archive(data_dir)
    if name == "hl7":
        proc, port = _start(data_dir, "listen", "hl7", "--as", USERNAME, ready=_tcp_ready)
        client: Any = MllpClient(port)
        send: Callable[[Any, str, bytes], None] = hl7
    else:
        proc, port = _start(data_dir, "serve", ready=_http_ready)
        client = HttpClient(port, token)
        send = {"rest-records": rest_records, "rest-submission": rest_submission, "fhir": fhir}[name]
    try:
        for patient, pdf in docs[:WARMUP]:
            send(client, patient, pdf)
        timed = docs[WARMUP:]
        started = time.perf_counter()
        for patient, pdf in timed:
            send(client, patient, pdf)
        seconds = time.perf_counter() - started
    finally:
        _stop(proc)
    size = sum(len(pdf) for _, pdf in timed)
    return {"documents": len(timed), "seconds": seconds, "per_s": len(timed) / seconds, "mib_s": size / seconds / 2**20}


def drive(args: argparse.Namespace) -> dict[str, Any]:
    docs = documents(args.count, args.size)
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="medarchive-bench-connectors-"))
    try:
        phases = {name: run_phase(name, docs, work) for name in PHASES}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    door, raw = phases["rest-submission"]["per_s"], phases["rest-records"]["per_s"]
    ratios = {
        name: {"vs_rest_submission": phases[name]["per_s"] / door, "vs_rest_records": phases[name]["per_s"] / raw}
        for name in PHASES
    }
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
        "load": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
        "count": args.count,
        "document_bytes": round(sum(len(p) for _, p in docs) / len(docs)),
        "phases": phases,
        "ratios": ratios,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{report['count']} documents of ~{report['document_bytes'] / 1024:.0f} KiB each, one client, sequential"
        f" (load {report['load']['start']} at the start, {report['load']['end']} at the end)",
        f"{'phase':<17}{'docs/s':>9}{'MiB/s':>8}{'vs REST submission':>21}{'vs REST records':>18}",
    ]
    for name in PHASES:
        p, r = report["phases"][name], report["ratios"][name]
        lines.append(
            f"{name:<17}{p['per_s']:>9.1f}{p['mib_s']:>8.2f}{r['vs_rest_submission']:>20.0%}{r['vs_rest_records']:>18.0%}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="timed documents per phase (default 200)")
    parser.add_argument("--size", type=int, default=50 * 1024, help="bytes per document (default 51200)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.count < 1 or args.size < 1024:
        parser.error("--count must be at least 1 and --size at least 1024")
    report = drive(args)
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
