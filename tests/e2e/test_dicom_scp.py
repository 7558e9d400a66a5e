"""`medarchive listen dicom` in a subprocess against a real pynetdicom SCU (C-ECHO, C-STORE),
read back through `medarchive content get`; garbage on the port, refused callers and instances."""

from __future__ import annotations

import io
import json
import re
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_charset_files
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage, SecondaryCaptureImageStorage, Verification  # type: ignore[attr-defined]
from tests.e2e.conftest import PASSWORD, Cli

from medarchive.capture.dicom import samples

pytestmark = pytest.mark.slow
STUDY = "1.2.826.0.1.3680043.8.498.300"
CHINESE_STUDY = "1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0"


def instance_bytes(sop: str, number: int, **changes: Any) -> bytes:
    return samples.ct_instance(
        **{
            "SpecificCharacterSet": "GB18030",
            "StudyInstanceUID": STUDY,
            "SOPInstanceUID": sop,
            "InstanceNumber": number,
            "PatientID": "P042",
            "PatientName": "李^小龙",
            "StudyDate": "20250301",
            "StudyDescription": "头颅平扫",
            **changes,
        }
    )


dataset_part = samples.dataset_part


@dataclass
class Listener:
    proc: subprocess.Popen[str]
    port: int

    def stop(self) -> tuple[str, str]:
        self.proc.terminate()  # SIGTERM: a clean stop that captures what was confirmed
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err
        return out, err


@pytest.fixture
def pacs(cli: Cli) -> Cli:
    cli.run("user", "add", "pacs", "--role", "interface", "--password-stdin", input=PASSWORD + "\n")
    return cli


def start(cli: Cli, *args: str) -> Listener:
    proc = cli.popen("listen", "dicom", "--as", "pacs", "--port", "0", *args)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else ""
    found = re.search(r"listening on [0-9.]+:(\d+)", line)
    if found is None:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the listener did not start: {line!r} {err}")
    return Listener(proc, int(found.group(1)))


@pytest.fixture
def listener(pacs: Cli) -> Iterator[Listener]:
    running = start(pacs, "--ae-title", "ARCHIVE", "--calling-ae", "CT01=NK")
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.communicate()


def associate(port: int, calling: str = "CT01", called: str = "ARCHIVE") -> Any:
    ae = AE(ae_title=calling)
    for sop_class in (CTImageStorage, SecondaryCaptureImageStorage):
        ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title=called)


def records(cli: Cli) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(cli.run("records", "list", "--as", "pacs", "--json").stdout)["items"]
    return items


def wait_for_records(cli: Cli, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while len(found := records(cli)) < count:
        assert time.monotonic() < deadline, f"expected {count} records, have {len(found)}"
        time.sleep(0.5)
    return found


def test_a_pacs_sends_studies_and_the_archive_keeps_them_byte_for_byte(
    listener: Listener, pacs: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # the SCU sends each file's bytes undecoded
    sent = {}
    for n in (1, 2, 3):
        sent[f"1.2.3.300.{n}"] = tmp_path / f"IM{n:04d}"
        sent[f"1.2.3.300.{n}"].write_bytes(instance_bytes(f"1.2.3.300.{n}", n))
    chinese = Path(get_charset_files("chrX2.dcm")[0])
    no_study = tmp_path / "nostudy.dcm"
    no_study.write_bytes(instance_bytes("1.2.3.300.9", 9, StudyInstanceUID=None))

    # Garbage first: the listener must shrug it off.
    with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as raw:
        raw.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 200)  # a TLS ClientHello
        raw.recv(16)

    assoc = associate(listener.port)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    for path in [*sent.values(), chinese]:
        assert assoc.send_c_store(path).Status == 0x0000
    refused = assoc.send_c_store(no_study)
    assert refused.Status == 0xA900 and "StudyInstanceUID" in refused.ErrorComment
    assoc.release()

    found = {r["title"]: r for r in wait_for_records(pacs, 2)}
    assert set(found) == {"CT 检查 头颅平扫 2025-03-01", "OT 检查"}
    shown = json.loads(
        pacs.run("records", "show", found["CT 检查 头颅平扫 2025-03-01"]["id"], "--as", "pacs", "--json").stdout
    )
    assert shown["class"] == "BA-MZ" and shown["department"] == "NK"
    meta = shown["metadata"]
    assert (meta["patient_id"], meta["patient_name"], meta["study_uid"], meta["instance_count"]) == (
        "P042",
        "李小龙",
        STUDY,
        3,
    )
    assert (meta["modality"], meta["study_date"], meta["source_system"]) == ("CT", "2025-03-01", "CT01")
    assert [f["filename"] for f in shown["files"]] == [f"1.2.3.300.{n}.dcm" for n in (1, 2, 3)]
    for file in shown["files"]:
        out = tmp_path / f"back-{file['sequence']}.dcm"
        pacs.run("content", "get", shown["id"], "--file", str(file["sequence"]), "--out", str(out), "--as", "pacs")
        back = out.read_bytes()
        assert back[:132] == b"\0" * 128 + b"DICM" and file["mime_type"] == "application/dicom"
        assert dataset_part(back) == dataset_part(sent[file["filename"].removesuffix(".dcm")].read_bytes())
    other = json.loads(pacs.run("records", "show", found["OT 检查"]["id"], "--as", "pacs", "--json").stdout)
    assert other["metadata"]["patient_name"] == "王小东" and other["metadata"]["study_uid"] == CHINESE_STUDY

    # The same study again on a new association: answered, not captured twice.
    again = associate(listener.port)
    for path in sent.values():
        assert again.send_c_store(path).Status == 0x0000
    again.release()
    # A stranger is refused at the door.
    assert associate(listener.port, calling="STRANGER").is_rejected

    out, err = listener.stop()
    assert "stopped" in out
    assert len(records(pacs)) == 2
    assert "closed without an association request: not DICOM" in err
    assert "refused C-STORE from CT01" in err and "no StudyInstanceUID (0020,000D)" in err
    assert f"study {STUDY} from CT01" in err and "was already captured as" in err
    assert "refused association from STRANGER" in err and "has no department" in err
    assert "李" not in err and "王" not in err  # no patient names in the log


def test_studies_of_an_association_still_open_at_shutdown_are_captured(listener: Listener, pacs: Cli) -> None:
    assoc = associate(listener.port)
    assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(instance_bytes("1.2.3.301.1", 1)))).Status == 0x0000
    listener.stop()  # the association is still open: it is aborted and what it confirmed is kept
    assert [r["title"] for r in records(pacs)] == ["CT 检查 头颅平扫 2025-03-01"]


def test_the_listener_refuses_to_start_without_a_clear_configuration(pacs: Cli) -> None:
    for args, code, message in (
        ([], 2, "--department CODE or --calling-ae AE=CODE"),
        (["--department", "XX"], 2, "unknown department 'XX'"),
        (["--calling-ae", "CT01="], 2, "--calling-ae expects AE or AE=DEPARTMENT"),
        (["--department", "NK", "--ae-title", "A" * 17], 2, "is not an AE title"),
        (["--department", "NK", "--tls-cert", "/nonexistent.pem"], 2, "both --tls-cert and --tls-key"),
        (["--department", "NK", "--as", "officer"], 3, "officer may not create records for department NK"),
        (["--department", "NK", "--as", "nobody"], 3, "no active user 'nobody'"),
    ):
        result = pacs.run("listen", "dicom", "--as", "pacs", "--port", "0", *args, check=False)
        assert result.returncode == code, (args, result.stderr)
        assert message in " ".join(result.stderr.split()), args  # rich wraps long lines


def test_instances_confirmed_before_a_crash_are_captured_by_the_next_listener(listener: Listener, pacs: Cli) -> None:
    assoc = associate(listener.port)
    for n in (1, 2):
        ds = pydicom.dcmread(io.BytesIO(instance_bytes(f"1.2.3.302.{n}", n)))
        assert assoc.send_c_store(ds).Status == 0x0000
    listener.proc.kill()  # kill -9 with the association open: no shutdown, no capture
    listener.proc.communicate(timeout=60)
    assoc.abort()
    assoc.join(timeout=30)  # the SCU notices the dead connection …
    transport = assoc.dul.socket
    if transport is not None and transport.socket is not None:
        transport.socket.close()  # … and its socket is closed either way

    spool = pacs.data_dir / "dicom-spool"
    (folder,) = [p for p in spool.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.glob("*.sealed")) == ["000001.sealed", "000002.sealed"]
    plain = dataset_part(instance_bytes("1.2.3.302.1", 1))
    for path in folder.iterdir():  # sealed: neither the study's description nor the dataset in plaintext
        data = path.read_bytes()
        assert "头颅平扫".encode("gb18030") not in data and plain[:64] not in data and plain[-64:] not in data
    assert records(pacs) == []

    again = start(pacs, "--ae-title", "ARCHIVE", "--calling-ae", "CT01=NK")
    try:
        (record,) = wait_for_records(pacs, 1)
        shown = json.loads(pacs.run("records", "show", record["id"], "--as", "pacs", "--json").stdout)
        assert shown["metadata"]["instance_count"] == 2
    finally:
        _, err = again.stop()
    assert "capturing 2 instances from CT01 (127.0.0.1:" in err and "left in the spool" in err
    assert not [p for p in spool.iterdir() if p.is_dir()]


def test_uids_reused_for_other_bytes_after_success_are_kept_for_review_not_dropped(
    listener: Listener, pacs: Cli
) -> None:
    # The door would refuse this study (its identifier holds other content), but Success was already
    # said: the modality may have deleted it. It must end up kept, in the review queue, with the reason.
    first = instance_bytes("1.2.3.303.1", 1)
    changed = instance_bytes("1.2.3.303.1", 1, SeriesDescription="重建")
    for data, count in ((first, 1), (changed, 2), (changed, 2)):
        assoc = associate(listener.port)
        assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(data))).Status == 0x0000
        assoc.release()
        wait_for_records(pacs, count)
    _, err = listener.stop()
    stored = records(pacs)
    assert len(stored) == 2  # the retransmission of the changed study was a replay
    queue = json.loads(pacs.run("review", "queue", "--as", "archivist", "--json").stdout)["items"]
    (held,) = [i for i in queue if i["errors"]]
    (finding,) = held["findings"]
    original = next(r for r in stored if r["id"] != held["record_id"])
    assert finding["rule"] == "identifier_reused" and finding["params"]["record"] == original["electronic_no"]
    shown = json.loads(pacs.run("records", "show", held["record_id"], "--as", "pacs", "--json").stdout)
    assert shown["metadata"]["study_uid"] == STUDY
    assert "reuses the identifier of record" in err
    assert not [p for p in (pacs.data_dir / "dicom-spool").iterdir() if p.is_dir()]  # all captured
