"""The C-STORE SCP in-process against a real pynetdicom SCU: grouping per association, bytes kept,
refusals with DICOM statuses, garbage on the port.

The listener checks the account and captures in its own threads, as in production; here those
threads use the test's database connection (inside the test's transaction, which other connections
to the SQLite file could not see into) while the test thread waits for them."""

from __future__ import annotations

import io
import queue
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from pydicom.data import get_charset_files
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage, SecondaryCaptureImageStorage, Verification  # type: ignore[attr-defined]

from medarchive.access.services import read_content
from medarchive.archiving.models import Record
from medarchive.capture.dicom import samples
from medarchive.capture.dicom.scp import (
    Gate,
    Origin,
    ScpSettings,
    Sink,
    StoreScp,
    account_gate,
    capture_as,
    department_of,
)
from medarchive.capture.dicom.spool import Spool

pytestmark = pytest.mark.django_db
PASSWORD = "Correct-Horse-42"
STUDY_A = "1.2.826.0.1.3680043.8.498.100"
STUDY_B = "1.2.826.0.1.3680043.8.498.200"


def instance_bytes(study: str, sop: str, **changes: Any) -> bytes:
    return samples.ct_instance(
        **{
            "SpecificCharacterSet": "GB18030",
            "StudyInstanceUID": study,
            "SOPInstanceUID": sop,
            "PatientID": "P001",
            "PatientName": "张^三丰",
            "StudyDate": "20250301",
            "StudyDescription": "胸部平扫",
            **changes,
        }
    )


dataset_part = samples.dataset_part


def on_test_connection(function: Any) -> Any:
    """`function`, run in a listener thread on the test thread's database connection."""
    shared = connections[DEFAULT_DB_ALIAS]

    def run(*args: Any) -> Any:
        connections[DEFAULT_DB_ALIAS] = shared  # for this thread only
        return function(*args)

    return run


class Scp:
    """A running SCP (its own spool folder) whose captures, made by the production sink in the
    listener's threads, are reported to the test thread: their outcomes, or what they raised."""

    def __init__(
        self, settings: ScpSettings, spool: Path, *, sink: Sink | None = None, gate: Gate | None = None, **options: Any
    ) -> None:
        self.delivered: queue.Queue[list[Any] | Exception] = queue.Queue()
        self.production = sink or capture_as(settings.username)
        self.spool = Spool(spool)
        connections[DEFAULT_DB_ALIAS].inc_thread_sharing()
        self.scp = StoreScp(
            settings,
            sink=on_test_connection(self._receive),
            gate=on_test_connection(gate or account_gate(settings.username)),
            resolver=on_test_connection(department_of),
            spool=self.spool,
            **options,
        )
        _, self.port = self.scp.start("127.0.0.1", 0)

    def stop(self) -> None:
        self.scp.stop()
        connections[DEFAULT_DB_ALIAS].dec_thread_sharing()

    def _receive(self, studies: list[Any], origin: Origin) -> list[Any]:
        try:
            outcomes = self.production(studies, origin)
        except Exception as exc:
            self.delivered.put(exc)
            raise
        self.delivered.put(outcomes)
        return outcomes

    def capture(self) -> list[Any]:
        """The outcomes of the next capture (an association's end, or a retry of the spool)."""
        found = self.delivered.get(timeout=30)
        if isinstance(found, Exception):
            raise found
        return found


@pytest.fixture
def pacs(archive: Any) -> Any:
    from medarchive.security.services import add_user

    return add_user("pacs", actor=None, role="interface", password=PASSWORD)


SETTINGS = ScpSettings(ae_title="MEDARCHIVE", username="pacs", calling_departments={"CT01": "NK"})


@pytest.fixture
def server(pacs: Any, tmp_path: Path) -> Iterator[Scp]:
    running = Scp(SETTINGS, tmp_path / "spool")
    yield running
    running.stop()


def associate(port: int, calling: str = "CT01", called: str = "MEDARCHIVE") -> Any:
    ae = AE(ae_title=calling)
    for sop_class in (CTImageStorage, SecondaryCaptureImageStorage):
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title=called)


def wait_for_capture(server: Scp) -> list[Any]:
    return server.capture()


def read_back(actor: Any, record: Record, sequence: int) -> bytes:
    return b"".join(read_content(actor, record.pk, sequence=sequence).chunks)


def test_c_echo(server: Scp) -> None:
    assoc = associate(server.port)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_each_study_of_an_association_is_one_record_and_the_dataset_bytes_are_kept(
    server: Scp, pacs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # the SCU sends the file's bytes undecoded
    files = {}
    for n, sop in enumerate(("1.2.3.1", "1.2.3.2", "1.2.3.3"), start=1):
        files[sop] = tmp_path / f"{n}.dcm"
        files[sop].write_bytes(instance_bytes(STUDY_A, sop, InstanceNumber=n))
    chinese = Path(get_charset_files("chrX2.dcm")[0])
    assoc = associate(server.port)
    for path in [*files.values(), chinese]:
        assert assoc.send_c_store(path).Status == 0x0000
    assoc.release()
    outcomes = wait_for_capture(server)

    assert [(o.study_uid, o.status, o.instances) for o in outcomes] == [
        (STUDY_A, "received", 3),
        ("1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0", "received", 1),
    ]
    record = Record.objects.get(metadata__study_uid=STUDY_A)
    assert record.department.code == "NK"
    assert record.metadata["patient_name"] == "张三丰" and record.metadata["source_system"] == "CT01"
    assert record.metadata["instance_count"] == 3
    assert record.intake.submission.channel == "dicom"
    for component in record.components.order_by("sequence"):
        stored = read_back(pacs, record, component.sequence)
        sop = component.filename.removesuffix(".dcm")
        assert stored[:132] == b"\0" * 128 + b"DICM" and component.mime_type == "application/dicom"
        assert dataset_part(stored) == dataset_part(files[sop].read_bytes())  # byte for byte as sent
        meta = pydicom.dcmread(io.BytesIO(stored)).file_meta
        assert (meta.MediaStorageSOPInstanceUID, meta.SourceApplicationEntityTitle) == (sop, "CT01")
        assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
    other = Record.objects.get(metadata__study_uid="1.3.6.1.4.1.5962.1.2.0.1175775771.5714.0")
    assert other.metadata["patient_name"] == "王小东"
    assert dataset_part(read_back(pacs, other, 1)) == dataset_part(chinese.read_bytes())


def test_a_dataset_encoded_by_the_scu_reads_back_equal(server: Scp, pacs: Any) -> None:
    ds = pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_B, "1.2.4.1")))
    assoc = associate(server.port)
    assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()
    (outcome,) = wait_for_capture(server)
    stored = pydicom.dcmread(io.BytesIO(read_back(pacs, outcome.record, 1)))
    assert stored == ds  # every element, pixel data included


def test_resending_the_same_study_is_not_captured_twice(server: Scp) -> None:
    data = instance_bytes(STUDY_A, "1.2.3.1")
    for expected in ("received", "replayed"):
        assoc = associate(server.port)
        assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(data))).Status == 0x0000
        assoc.release()
        assert [o.status for o in wait_for_capture(server)] == [expected]
    assert Record.objects.count() == 1


def test_a_retry_of_the_same_instance_on_one_association_is_kept_once(server: Scp) -> None:
    ds = pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.1")))
    assoc = associate(server.port)
    assert assoc.send_c_store(ds).Status == 0x0000
    assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()
    assert [o.instances for o in wait_for_capture(server)] == [1]


def test_an_aborted_association_keeps_what_was_confirmed(server: Scp) -> None:
    assoc = associate(server.port)
    assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.1")))).Status == 0x0000
    assoc.abort()
    assert [o.status for o in wait_for_capture(server)] == ["received"]


def test_bad_instances_get_failure_statuses_and_the_good_ones_go_on(
    server: Scp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.1")))
    no_study = pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.2", StudyInstanceUID=None)))
    other_patient = pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.3", PatientID="P999")))
    # A file whose meta is right but whose dataset is garbage: sent as it is, never decoded by the SCU.
    garbage = tmp_path / "garbage.dcm"
    head = instance_bytes(STUDY_A, "1.2.3.4")
    garbage.write_bytes(head[: len(head) - len(dataset_part(head))] + b"\xde\xad\xbe\xef not dicom at all" * 50)
    assoc = associate(server.port)
    assert assoc.send_c_store(good).Status == 0x0000
    status = assoc.send_c_store(no_study)
    assert status.Status == 0xA900 and "StudyInstanceUID" in status.ErrorComment
    status = assoc.send_c_store(other_patient)
    assert status.Status == 0xC001 and "PatientID differs" in status.ErrorComment
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    status = assoc.send_c_store(garbage)
    assert status.Status in {0xC000, 0xA900}
    assert assoc.send_c_echo().Status == 0x0000  # the association survived all of it
    assoc.release()
    assert [(o.status, o.instances) for o in wait_for_capture(server)] == [("received", 1)]


def eventually(check: Any, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_garbage_on_the_port_does_not_stop_the_scp(server: Scp, caplog: pytest.LogCaptureFixture) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n")
        reply = raw.recv(16)
    assert reply[:1] in {b"\x07", b""}  # A-ABORT, or the connection simply closed
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 64)  # an A-ASSOCIATE-RQ claiming 4 GiB
        raw.shutdown(socket.SHUT_WR)
        raw.recv(16)
    assoc = associate(server.port)
    assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.1")))).Status == 0x0000
    assoc.release()
    assert [o.status for o in wait_for_capture(server)] == ["received"]
    assert eventually(lambda: "closed without an association request: not DICOM" in caplog.text)


def test_an_unknown_calling_ae_title_is_refused(server: Scp, caplog: pytest.LogCaptureFixture) -> None:
    assoc = associate(server.port, calling="STRANGER")
    assert assoc.is_rejected
    assert assoc.acceptor.primitive.diagnostic == 0x03  # calling AE title not recognised
    assert eventually(lambda: "refused association from STRANGER" in caplog.text)
    assert "calling AE title 'STRANGER' has no department" in caplog.text


def test_a_wrong_called_ae_title_is_refused(server: Scp) -> None:
    assoc = associate(server.port, called="SOMEONE")
    assert assoc.is_rejected
    assert assoc.acceptor.primitive.diagnostic == 0x07  # called AE title not recognised


def test_a_default_department_accepts_any_caller(pacs: Any, tmp_path: Path) -> None:
    running = Scp(ScpSettings(ae_title="MEDARCHIVE", username="pacs", default_department="BGS"), tmp_path / "spool")
    try:
        assoc = associate(running.port, calling="ANYONE")
        assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.1")))).Status == 0
        assoc.release()
        (outcome,) = wait_for_capture(running)
        assert outcome.record.department.code == "BGS"
    finally:
        running.stop()


def test_a_deactivated_account_is_refused_before_success(
    server: Scp, pacs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pacs.is_active = False
    pacs.save(update_fields=["is_active"])
    assoc = associate(server.port)
    status = assoc.send_c_store(pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.1"))))
    assert status.Status == 0xA700 and status.ErrorComment == "the archive account is not active"
    assert assoc.send_c_echo().Status == 0x0000  # the association stays usable
    assoc.release()
    assert "refusing C-STOREs from CT01 (127.0.0.1:" in caplog.text
    assert server.delivered.empty() and not Record.objects.exists()

    pacs.is_active = True  # active again: the next association gets through
    pacs.save(update_fields=["is_active"])
    assoc = associate(server.port)
    assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.1")))).Status == 0x0000
    assoc.release()
    assert [o.status for o in wait_for_capture(server)] == ["received"]


def test_an_instance_over_the_size_limit_is_refused_for_lack_of_resources(server: Scp, settings: Any) -> None:
    import dataclasses

    data = instance_bytes(STUDY_A, "1.2.3.1")
    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=len(data) // 2)
    assoc = associate(server.port)
    status = assoc.send_c_store(pydicom.dcmread(io.BytesIO(data)))
    assert status.Status == 0xA700 and "exceeds the limit" in status.ErrorComment
    assoc.release()
    assert server.delivered.empty()  # nothing was confirmed, so nothing is handed on
    assert not Record.objects.exists()


def _certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def issue(name: str, key: Any, issuer: Any, issuer_key: Any, *, ca: bool = False, ip: bool = False) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ip:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    paths: dict[str, Path] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    for name, cert, key in (
        ("ca", issue("test CA", ca_key, ca_name, ca_key, ca=True), ca_key),
        ("server", issue("archive", server_key, ca_name, ca_key, ip=True), server_key),
        ("client", issue("CT01", client_key, ca_name, ca_key), client_key),
    ):
        paths[name] = directory / f"{name}.pem"
        paths[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{name}-key"] = directory / f"{name}-key.pem"
        paths[f"{name}-key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return paths


def test_over_tls_only_callers_with_a_certificate_of_our_ca_get_in(pacs: Any, tmp_path: Path) -> None:
    import ssl

    from medarchive.cli.dicom import _tls

    certs = _certificates(tmp_path)
    server_context = _tls(certs["server"], certs["server-key"], certs["ca"])
    settings = ScpSettings(ae_title="MEDARCHIVE", username="pacs", calling_departments={"CT01": "NK"})
    delivered: queue.Queue[Any] = queue.Queue()
    scp = StoreScp(
        settings,
        sink=lambda studies, origin: delivered.put(studies) or [],
        gate=lambda origin: None,  # about the transport: the account is another test's business
        spool=Spool(tmp_path / "spool"),
    )
    _, port = scp.start("127.0.0.1", 0, ssl_context=server_context)
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs["ca"]))
        client.load_cert_chain(str(certs["client"]), str(certs["client-key"]))
        ae = AE(ae_title="CT01")
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", port, ae_title="MEDARCHIVE", tls_args=(client, "127.0.0.1"))
        assert assoc.is_established
        assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(instance_bytes(STUDY_A, "1.2.3.1")))).Status == 0
        assoc.release()
        assert len(delivered.get(timeout=30)) == 1

        # Without a client certificate, or without TLS at all, nothing gets through.
        anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs["ca"]))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            pytest.raises((ssl.SSLError, ConnectionError)),
            anonymous.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"\x01\x00\x00\x00\x00\x10" + b"\x00" * 16)
            if not tls.recv(16):  # the refusal comes on first use (TLS 1.3 checks the client late)
                raise ConnectionError("closed")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            raw.sendall(b"\x01\x00\x00\x00\x00\x10" + b"\x00" * 16)  # a plain A-ASSOCIATE-RQ start
            try:
                answer = raw.recv(16)
            except ConnectionError:
                answer = b""
            assert answer[:1] in {b"", b"\x15"}  # closed, or a TLS alert record: no DICOM answer at all
        assert delivered.empty()
    finally:
        scp.stop()


# -- what was answered Success is kept until captured -------------------------------------------

MARKER = "PLAINTEXT-MARKER-0123456789"  # in every instance below: must never be found on disk


def marked(study: str, sop: str, **changes: Any) -> Any:
    return pydicom.dcmread(io.BytesIO(instance_bytes(study, sop, StudyDescription=MARKER, **changes)))


def send(port: int, *datasets: Any) -> None:
    assoc = associate(port)
    for ds in datasets:
        assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()


def spooled(spool: Spool) -> list[Path]:
    """The association folders in the spool (its own lock file aside)."""
    return sorted(p for p in spool.root.iterdir() if p.is_dir()) if spool.root.exists() else []


def failing(times: int, then: Sink | None = None) -> tuple[Sink, list[int]]:
    """A sink that fails like a database that is down `times` times, then captures."""
    from django.db import OperationalError

    calls: list[int] = []
    production = then or capture_as("pacs")

    def sink(studies: list[Any], origin: Origin) -> list[Any]:
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("database is locked")
        return production(studies, origin)

    return sink, calls


def next_outcomes(server: Scp) -> list[Any]:
    """The next capture that worked, past the ones that failed."""
    while True:
        found = server.delivered.get(timeout=30)
        if not isinstance(found, Exception):
            return found


def test_a_capture_failing_after_success_keeps_the_instances_encrypted_and_captures_them_later(
    pacs: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from django.db import OperationalError

    sink, _ = failing(1)
    server = Scp(SETTINGS, tmp_path / "spool", sink=sink)
    try:
        send(server.port, marked(STUDY_A, "1.2.3.1"), marked(STUDY_A, "1.2.3.2"))
        with pytest.raises(OperationalError):
            server.capture()
        assert eventually(lambda: server.scp.owed)  # the failed capture let go of its spool folder
        assert not Record.objects.exists()
        (folder,) = spooled(server.spool)
        assert sorted(p.name for p in folder.iterdir()) == [".lock", "000001.sealed", "000002.sealed", "origin.json"]
        assert oct(folder.stat().st_mode & 0o777) == "0o700"
        for path in [*folder.iterdir(), *server.spool.root.iterdir()]:
            if path.is_file():
                assert oct(path.stat().st_mode & 0o777) == "0o600"
                data = path.read_bytes()
                assert MARKER.encode() not in data and "张^三丰".encode("gb18030") not in data
        assert "2 instances from CT01 (127.0.0.1:" in caplog.text and "are NOT captured yet" in caplog.text

        # The next association is captured; then what was left is captured too.
        send(server.port, marked(STUDY_B, "1.2.4.1"))
        assert [(o.study_uid, o.status) for o in server.capture()] == [(STUDY_B, "received")]
        assert [(o.study_uid, o.status, o.instances) for o in server.capture()] == [(STUDY_A, "received", 2)]
        assert eventually(lambda: not spooled(server.spool))
        record = Record.objects.get(metadata__study_uid=STUDY_A)
        assert dataset_part(read_back(pacs, record, 2)) == dataset_part(
            instance_bytes(STUDY_A, "1.2.3.2", StudyDescription=MARKER)
        )
    finally:
        server.stop()


def test_the_retry_thread_backs_off_and_captures_without_new_traffic(pacs: Any, tmp_path: Path) -> None:
    sink, calls = failing(3)
    server = Scp(SETTINGS, tmp_path / "spool", sink=sink, retry_seconds=(0.05, 0.2))
    try:
        send(server.port, marked(STUDY_A, "1.2.3.1"))
        assert [(o.status, o.instances) for o in next_outcomes(server)] == [("received", 1)]
        assert len(calls) == 4  # the association's end, then three retries
        assert eventually(lambda: not spooled(server.spool))
    finally:
        server.stop()
    assert Record.objects.get().metadata["instance_count"] == 1


def test_the_next_listener_captures_what_the_last_one_left(pacs: Any, tmp_path: Path) -> None:
    sink, _ = failing(1_000)
    first = Scp(SETTINGS, tmp_path / "spool", sink=sink)
    try:
        send(first.port, marked(STUDY_A, "1.2.3.1"), marked(STUDY_A, "1.2.3.2"), marked(STUDY_B, "1.2.4.1"))
        assert isinstance(first.delivered.get(timeout=30), Exception)
    finally:
        first.stop()
    assert len(spooled(first.spool)) == 1 and not Record.objects.exists()

    second = Scp(SETTINGS, tmp_path / "spool")  # at start it captures the leftovers
    try:
        assert sorted((o.study_uid, o.instances) for o in second.capture()) == [(STUDY_A, 2), (STUDY_B, 1)]
        assert eventually(lambda: not spooled(second.spool))
    finally:
        second.stop()


def test_an_account_deactivated_after_success_keeps_the_instances_until_it_is_active(
    server: Scp, pacs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from medarchive.capture.dicom.scp import CaptureDeferred

    assoc = associate(server.port)
    assert assoc.send_c_store(marked(STUDY_A, "1.2.3.1")).Status == 0x0000
    pacs.is_active = False  # between the answer and the association's end
    pacs.save(update_fields=["is_active"])
    assoc.release()
    with pytest.raises(CaptureDeferred):
        server.capture()
    assert eventually(lambda: server.scp.owed)
    assert "not captured now: account 'pacs' is not active: 1 studies from CT01" in caplog.text
    assert len(spooled(server.spool)) == 1

    assert server.scp.retry_leftovers() == 1  # still inactive: still kept
    assert isinstance(server.delivered.get(timeout=30), CaptureDeferred)
    pacs.is_active = True
    pacs.save(update_fields=["is_active"])
    assert server.scp.retry_leftovers() == 0
    assert [o.status for o in server.capture()] == ["received"]
    assert not spooled(server.spool)


def test_a_spooled_instance_that_cannot_be_read_back_is_set_aside_and_the_rest_captured(
    pacs: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink, _ = failing(1)
    server = Scp(SETTINGS, tmp_path / "spool", sink=sink)
    try:
        send(server.port, marked(STUDY_A, "1.2.3.1"), marked(STUDY_A, "1.2.3.2"))
        with pytest.raises(Exception, match="database is locked"):
            server.capture()
        assert eventually(lambda: server.scp.owed)
        (folder,) = spooled(server.spool)
        damaged = bytearray((folder / "000002.sealed").read_bytes())
        damaged[-20] ^= 0xFF
        (folder / "000002.sealed").write_bytes(bytes(damaged))
        (folder / "000003.part").write_bytes(b"half written, never answered Success")

        assert server.scp.retry_leftovers() == 0
        assert [(o.status, o.instances) for o in server.capture()] == [("received", 1)]
        assert sorted(p.name for p in folder.iterdir()) == [".lock", "000002.unreadable", "origin.json"]
        assert "000002.unreadable cannot be captured" in caplog.text
        assert server.scp.retry_leftovers() == 0 and server.delivered.empty()  # nothing more to capture
    finally:
        server.stop()


@pytest.mark.parametrize("case", ["no right", "department inactive"])
def test_an_account_that_may_not_file_for_the_department_is_refused_before_success(
    users: dict[str, Any], tmp_path: Path, case: str
) -> None:
    from medarchive.core.models import Department

    username = "officer"  # creates for BGS only
    if case == "department inactive":
        from medarchive.security.services import add_user

        username = "pacs"
        add_user("pacs", actor=None, role="interface", password=PASSWORD)
        Department.objects.filter(code="NK").update(active=False)
    settings = ScpSettings(ae_title="MEDARCHIVE", username=username, calling_departments={"CT01": "NK"})
    server = Scp(settings, tmp_path / "spool")
    try:
        assoc = associate(server.port)
        status = assoc.send_c_store(marked(STUDY_A, "1.2.3.1"))
        assoc.release()
    finally:
        server.stop()
    expected = "may not file for NK" if case == "no right" else "department NK is not active"
    assert status.Status == 0xA700 and expected in status.ErrorComment
    assert server.delivered.empty() and not spooled(server.spool)


def test_an_instance_arriving_far_over_the_limit_aborts_its_association(
    server: Scp, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    from medarchive.capture.dicom.scp import ABORT_SLACK

    small = marked(STUDY_A, "1.2.3.1")
    settings.CONFIG = dataclasses.replace(settings.CONFIG, max_upload_bytes=len(instance_bytes(STUDY_A, "1.2.3.1")) * 2)
    huge = marked(STUDY_A, "1.2.3.2")
    huge.PixelData = b"\0" * (ABORT_SLACK + 512 * 1024)
    assoc = associate(server.port)
    assert assoc.send_c_store(small).Status == 0x0000
    answer = assoc.send_c_store(huge)
    assert "Status" not in answer  # no answer: the association was aborted
    assert eventually(lambda: not assoc.is_established)
    assert [(o.status, o.instances) for o in server.capture()] == [("received", 1)]  # what was confirmed is kept
    assert "aborting the association from CT01 (127.0.0.1:" in caplog.text


# --- what was answered Success is kept, whatever the door says afterwards ------------------------------


def test_the_same_uids_with_other_bytes_after_success_are_kept_and_held_for_review(server: Scp, pacs: Any) -> None:
    send(server.port, marked(STUDY_A, "1.2.3.1"))
    (first,) = server.capture()
    # The modality re-sends the study under the same UIDs, but the instance is another one: it was
    # answered Success, so the door may not refuse it; it is kept and waits for an archivist.
    changed = marked(STUDY_A, "1.2.3.1", SeriesDescription="re-acquired")
    send(server.port, changed)
    (second,) = server.capture()
    assert (first.status, second.status) == ("received", "received")
    assert second.record.pk != first.record.pk and second.review == "pending" and second.errors == 1
    held = Record.objects.get(pk=second.record.pk)
    (finding,) = held.intake.findings
    assert finding["rule"] == "identifier_reused" and finding["params"]["record"] == first.record.electronic_no
    assert dataset_part(read_back(pacs, held, 1)) == dataset_part(changed_bytes := _encoded(changed))
    assert dataset_part(read_back(pacs, first.record, 1)) != dataset_part(changed_bytes)
    # A recheck (after an edit) keeps the finding; a retransmission of the changed study replays it.
    from medarchive.capture.intake import check

    check(held, held.intake, actor=pacs)
    assert [f["rule"] for f in held.intake.findings] == ["identifier_reused"]
    send(server.port, marked(STUDY_A, "1.2.3.1", SeriesDescription="re-acquired"))
    assert [(o.status, o.record.pk) for o in server.capture()] == [("replayed", held.pk)]
    send(server.port, marked(STUDY_A, "1.2.3.1"))
    assert [(o.status, o.record.pk) for o in server.capture()] == [("replayed", first.record.pk)]
    assert Record.objects.count() == 2 and eventually(lambda: not spooled(server.spool))


def test_a_study_the_door_refuses_after_success_stays_in_the_spool_until_it_can_be_captured(
    server: Scp, caplog: pytest.LogCaptureFixture
) -> None:
    from medarchive.capture.dicom.scp import CaptureDeferred
    from medarchive.core.models import Department

    assoc = associate(server.port)
    assert assoc.send_c_store(marked(STUDY_A, "1.2.3.1")).Status == 0x0000  # the gate saw NK active
    Department.objects.filter(code="NK").update(active=False)  # withdrawn before the association ends
    assoc.release()
    with pytest.raises(CaptureDeferred):
        server.capture()
    assert eventually(lambda: server.scp.owed)
    assert not Record.objects.exists() and len(spooled(server.spool)) == 1
    assert "1 of 1 studies from CT01 (127.0.0.1:" in caplog.text and STUDY_A in caplog.text
    assert "are NOT captured yet" in caplog.text

    Department.objects.filter(code="NK").update(active=True)
    assert server.scp.retry_leftovers() == 0
    assert [o.status for o in server.capture()] == ["received"]
    assert eventually(lambda: not spooled(server.spool))


def _encoded(ds: Any) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
