"""Ingest throughput benchmark: medarchive's capture path against a raw hash+encrypt+fsync baseline.

    python benchmarks/ingest.py [--small-count N] [--large-count N] [--cipher aes-256-gcm|sm4-gcm] [--json]

What it does (see docs/benchmarks.md):

1. Creates a fresh temporary embedded archive (SQLite + local blob store): migrate,
   `initialise()`, one department and one archivist.
2. Writes the input files (distinct `os.urandom` content) to a separate temporary
   directory before anything is timed.
3. Runs five phases, each in its own fresh interpreter so that each has its own peak
   RSS (`ru_maxrss` cannot be reset): baseline-small, baseline-large,
   medarchive-small-normal (SQLite synchronous=NORMAL, files of its own), medarchive-small,
   medarchive-large (both with the durable default, synchronous=FULL).

   * medarchive: one `create_record(Description, [IncomingFile(stream=open file)])`
     per file, the service call the REST API makes.
   * baseline: read in 1 MiB chunks, SHA-256 + SM3, encrypt each chunk with the same
     cipher, write the ciphertext to a temp file on the data directory's filesystem,
     fsync, rename. No database.

4. Prints files/s, MiB/s (MiB = 2**20 bytes), peak RSS per phase, the ratios
   medarchive/baseline and PASS/FAIL against the targets. A miss does not change the
   exit status: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KIB = 1 << 10
MIB = 1 << 20
CHUNK = MIB  # same as medarchive.preservation.crypto.DEFAULT_CHUNK_SIZE
SMALL_SIZE = 100 * KIB
LARGE_SIZE = 10 * MIB
WARMUP_SIZE = 4 * KIB
PASSWORD = "Bench-Mark-2026"
RECORD_DATE = "2025-03-01"
DEPARTMENT = "BENCH"
USERNAME = "bench-archivist"
CLASS_CODE = "WS"
CIPHERS = ("aes-256-gcm", "sm4-gcm")
# medarchive-small-normal: the same 100 KiB ingest with SQLite's synchronous=NORMAL (the WAL synced
# at checkpoints only, which loses acknowledged commits in a power cut) on files of its own: what
# the durable default (FULL, one WAL sync per commit) costs, measured in the same run (ADR 0015).
PHASES = ("baseline-small", "baseline-large", "medarchive-small-normal", "medarchive-small", "medarchive-large")
# interleaved-small: baseline and medarchive (durable default) in one process, alternating in short rounds of
# ROUND files (who goes first alternates too), so a noisy neighbour slows both alike; its ratio is the target's.
INTERLEAVED = "interleaved-small"
ROUND = 20
TARGET_INTERLEAVED_RATIO = 0.40  # issue #9: >= 0.40 of the same-run raw baseline for 100 KiB files

# Targets from the issue.
TARGET_LARGE_RATIO = 0.60  # medarchive MiB/s for 10 MiB files >= 60 % of the baseline's
TARGET_SMALL_FILES_PER_S = 250.0  # medarchive files/s for 100 KiB files
# "Peak memory independent of file size": 10 MiB files may not raise medarchive's peak RSS
# by half a file or more over the 100 KiB phase. Whole-file buffering costs at least one
# file (10 MiB) of extra RSS; chunked streaming costs a few 1 MiB chunks whatever the size.
TARGET_MEMORY_FRACTION = 0.5
BUSY_LOADAVG = 0.5  # warn when other work was running as the benchmark started


# ---------------------------------------------------------------- helpers used in every process


def _rss_now_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _load_manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- phases (each in a child process)


def _django_setup(data_dir: Path, cipher: str, synchronous: str = "FULL") -> None:
    os.environ["MEDARCHIVE_DATA_DIR"] = str(data_dir)
    os.environ["MEDARCHIVE_CIPHER"] = cipher
    os.environ["MEDARCHIVE_SQLITE_SYNCHRONOUS"] = synchronous
    os.environ["DJANGO_SETTINGS_MODULE"] = "medarchive.settings"
    import django

    django.setup()


def phase_setup(data_dir: Path, cipher: str) -> dict[str, Any]:
    """Migrate and initialise a fresh archive, add a department and an archivist."""
    _django_setup(data_dir, cipher)
    from medarchive.cli.admin import initialise
    from medarchive.cli.runtime import setup
    from medarchive.core.services import add_department
    from medarchive.security.services import add_user

    setup(migrate=True)
    summary = initialise()
    add_department(DEPARTMENT, "基准测试科", actor=None)
    add_user(USERNAME, actor=None, role="archivist", password=PASSWORD)
    return summary


def _timed_loop(files: list[str], ingest: Any, warmup: str) -> dict[str, Any]:
    total = sum(os.path.getsize(path) for path in files)
    ingest(warmup)  # lazy imports, key ring, DB connection, first allocations: not measured
    rss_before = _rss_now_kib()
    peak_before = _peak_rss_kib()
    latencies = []
    clock = time.perf_counter
    start = clock()
    for path in files:
        began = clock()
        ingest(path)
        latencies.append(clock() - began)
    elapsed = clock() - start
    peak_after = _peak_rss_kib()
    ordered = sorted(latencies)
    tenth = max(1, len(latencies) // 10)
    return {
        "files": len(files),
        "bytes": total,
        "seconds": elapsed,
        "files_per_s": len(files) / elapsed if elapsed else 0.0,
        "mib_per_s": total / MIB / elapsed if elapsed else 0.0,
        "rss_start_kib": rss_before,
        "peak_rss_kib": peak_after,
        "peak_growth_kib": max(0, peak_after - rss_before),
        "peak_before_timing_kib": peak_before,
        "latency_ms": {
            "p50": 1000 * ordered[len(ordered) // 2],
            "p95": 1000 * ordered[int(len(ordered) * 0.95)],
            "max": 1000 * ordered[-1],
        },
        # A rate that falls from the first to the last tenth means per-file cost grows with archive size.
        "files_per_s_first_tenth": tenth / sum(latencies[:tenth]),
        "files_per_s_last_tenth": tenth / sum(latencies[-tenth:]),
    }


def phase_medarchive(
    data_dir: Path, cipher: str, files: list[str], warmup: str, synchronous: str = "FULL"
) -> dict[str, Any]:
    ingest, check = _medarchive_ingest(data_dir, cipher, synchronous)
    result = _timed_loop(files, ingest, warmup)
    result.update(check(len(files)))
    return result


def _medarchive_ingest(data_dir: Path, cipher: str, synchronous: str) -> tuple[Any, Any]:
    """`ingest(path)` through `create_record`, and `check(n)`: did the last n calls each make a record?"""
    _django_setup(data_dir, cipher, synchronous)
    import uuid

    from django.conf import settings
    from django.db import connection

    from medarchive.archiving.models import Record
    from medarchive.capture.services import Description, IncomingFile, create_record
    from medarchive.preservation.models import Blob
    from medarchive.security import context
    from medarchive.security.models import User

    assert settings.CONFIG.cipher == cipher
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        level = {1: "NORMAL", 2: "FULL", 3: "EXTRA"}[cursor.fetchone()[0]]
    assert level == synchronous, level
    context.source.set("benchmark")
    actor = User.objects.get(username=USERNAME)
    counter = iter(range(1, 1 << 62))

    def ingest(path: str) -> None:
        n = next(counter)
        desc = Description(
            class_code=CLASS_CODE, department_code=DEPARTMENT, title=f"基准测试文件 {n}", date=RECORD_DATE
        )
        with open(path, "rb") as stream:
            create_record(
                desc,
                [IncomingFile(name=os.path.basename(path), stream=stream)],
                actor=actor,
                idempotency_key=f"bench-{uuid.uuid4()}",
            )

    before = Record.objects.count()

    def check(count: int) -> dict[str, Any]:
        # Sanity check, outside the timed region: every file became a record with a stored blob.
        created = Record.objects.count() - before - 1  # minus the warm-up record
        stored = Blob.objects.filter(state=Blob.STORED, suite=cipher).count()
        if created != count:
            raise SystemExit(f"expected {count} new records, found {created}")
        return {"records_created": created, "blobs_stored_total": stored, "synchronous": level}

    return ingest, check


def phase_interleaved(
    data_dir: Path, out_dir: Path, cipher: str, files: list[str], warmups: tuple[str, str]
) -> dict[str, Any]:
    """Baseline and medarchive on the same files in alternating rounds, in one process."""
    medarchive, check = _medarchive_ingest(data_dir, cipher, "FULL")
    baseline = _baseline_ingest(out_dir, cipher)
    baseline(warmups[0])
    medarchive(warmups[1])
    clock = time.perf_counter
    spent = {"baseline": 0.0, "medarchive": 0.0}
    round_ratios = []
    for number, start in enumerate(range(0, len(files), ROUND)):
        chunk = files[start : start + ROUND]
        order = (("baseline", baseline), ("medarchive", medarchive))
        took = {}
        for name, ingest in order if number % 2 == 0 else order[::-1]:
            began = clock()
            for path in chunk:
                ingest(path)
            took[name] = clock() - began
            spent[name] += took[name]
        round_ratios.append(took["baseline"] / took["medarchive"])
    ordered = sorted(round_ratios)
    result = {
        "files": len(files),
        "round": ROUND,
        "rounds": len(round_ratios),
        "baseline_files_per_s": len(files) / spent["baseline"],
        "medarchive_files_per_s": len(files) / spent["medarchive"],
        "ratio": spent["baseline"] / spent["medarchive"],
        "round_ratio_median": ordered[len(ordered) // 2],
        "round_ratio_p10": ordered[len(ordered) // 10],
        "round_ratio_p90": ordered[min(len(ordered) - 1, len(ordered) * 9 // 10)],
    }
    result.update(check(len(files)))
    return result


def _encryptor(cipher: str, key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if cipher == "aes-256-gcm":
        return AESGCM(key).encrypt

    def sm4_gcm(nonce: bytes, data: bytes, aad: bytes) -> bytes:
        encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(data) + encryptor.finalize()
        return body + encryptor.tag

    return sm4_gcm


def phase_baseline(out_dir: Path, cipher: str, files: list[str], warmup: str) -> dict[str, Any]:
    return _timed_loop(files, _baseline_ingest(out_dir, cipher), warmup)


def _baseline_ingest(out_dir: Path, cipher: str) -> Any:
    out_dir.mkdir(parents=True, exist_ok=True)
    key_size = 32 if cipher == "aes-256-gcm" else 16
    counter = iter(range(1 << 62))

    def ingest(path: str) -> None:
        n = next(counter)
        key, prefix = os.urandom(key_size), os.urandom(7)
        header = b"BASE" + prefix
        encrypt = _encryptor(cipher, key)
        sha256, sm3 = hashlib.sha256(), hashlib.new("sm3")
        fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".part")
        with open(path, "rb") as source, os.fdopen(fd, "wb") as sink:
            sink.write(header)
            index = 0
            while chunk := source.read(CHUNK):
                sha256.update(chunk)
                sm3.update(chunk)
                sink.write(encrypt(prefix + index.to_bytes(4, "big") + b"\0", chunk, header))
                index += 1
            sink.flush()
            os.fsync(sink.fileno())
        os.rename(tmp, out_dir / f"{n:06d}-{sha256.hexdigest()[:16]}{sm3.hexdigest()[:16]}")

    return ingest


def run_phase(args: argparse.Namespace) -> None:
    manifest = _load_manifest(Path(args.manifest))
    data_dir = Path(manifest["data_dir"])
    if args.phase == "setup":
        result = phase_setup(data_dir, args.cipher)
    elif args.phase == INTERLEAVED:
        warmups = manifest["warmup"][len(PHASES)], manifest["warmup"][len(PHASES) + 1]
        out_dir = Path(manifest["baseline_dir"]) / "interleaved"
        result = phase_interleaved(data_dir, out_dir, args.cipher, manifest["files"]["interleaved"], warmups)
    else:
        kind, size_class, *mode = args.phase.split("-")
        synchronous = "NORMAL" if mode == ["normal"] else "FULL"
        files = manifest["files"][size_class if synchronous == "FULL" else "small_normal"]
        warmup = manifest["warmup"][PHASES.index(args.phase)]  # one distinct file per phase: no dedup
        if kind == "baseline":
            result = phase_baseline(Path(manifest["baseline_dir"]) / size_class, args.cipher, files, warmup)
        else:
            result = phase_medarchive(data_dir, args.cipher, files, warmup, synchronous)
    print(json.dumps(result))


# ---------------------------------------------------------------- the driver (parent process)


def _generate(directory: Path, prefix: str, count: int, size: int) -> list[str]:
    paths = []
    for i in range(count):
        path = directory / f"{prefix}-{i:05d}.bin"
        with open(path, "wb") as handle:
            remaining = size
            while remaining:
                piece = os.urandom(min(remaining, CHUNK))
                handle.write(piece)
                remaining -= len(piece)
        paths.append(str(path))
    return paths


def _child(phase: str, manifest: Path, cipher: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDARCHIVE_") and k != "DATABASE_URL"}
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--phase",
        phase,
        "--manifest",
        str(manifest),
        "--cipher",
        cipher,
    ]
    proc = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"phase {phase} failed with exit status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine() -> dict[str, Any]:
    import cryptography
    import django

    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "loadavg_1min_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "django": django.get_version(),
        "cryptography": cryptography.__version__,
        "openssl": _openssl_version(),
        "source": _source_revision(),
    }


def _source_revision() -> str:
    """The commit measured, and whether the working tree differed from it (read-only git calls)."""
    root = Path(__file__).resolve().parent.parent
    git = ["git", "--no-optional-locks", "-C", str(root)]  # never touches the index
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}" if head else "unknown"


def _openssl_version() -> str:
    from cryptography.hazmat.backends.openssl.backend import backend

    return str(backend.openssl_version_text())


def _evaluate(phases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ratios = {}
    for size_class in ("small", "large"):
        med, base = phases[f"medarchive-{size_class}"], phases[f"baseline-{size_class}"]
        ratios[size_class] = {
            "mib_per_s": med["mib_per_s"] / base["mib_per_s"] if base["mib_per_s"] else 0.0,
            "files_per_s": med["files_per_s"] / base["files_per_s"] if base["files_per_s"] else 0.0,
        }
    memory_delta_kib = phases["medarchive-large"]["peak_rss_kib"] - phases["medarchive-small"]["peak_rss_kib"]
    memory_limit_kib = int(TARGET_MEMORY_FRACTION * LARGE_SIZE / KIB)
    small_rate = phases["medarchive-small"]["files_per_s"]
    large_ratio = ratios["large"]["mib_per_s"]
    targets = [
        {
            "target": "10 MiB files: medarchive MiB/s >= 60% of baseline",
            "measured": f"{large_ratio:.0%}",
            "pass": large_ratio >= TARGET_LARGE_RATIO,
        },
        {
            "target": "100 KiB files: medarchive >= 250 files/s",
            "measured": f"{small_rate:.1f} files/s",
            "pass": small_rate >= TARGET_SMALL_FILES_PER_S,
        },
        {
            "target": "peak RSS independent of file size (10 MiB phase - 100 KiB phase < 5 MiB)",
            "measured": f"{memory_delta_kib / KIB:+.1f} MiB",
            "pass": memory_delta_kib < memory_limit_kib,
        },
    ]
    mixed = phases[INTERLEAVED]
    targets.insert(
        0,
        {
            "target": f"100 KiB files: medarchive >= {TARGET_INTERLEAVED_RATIO:.0%} of the raw baseline "
            f"(interleaved rounds of {ROUND})",
            "measured": f"{mixed['ratio']:.0%} (rounds: median {mixed['round_ratio_median']:.0%}, "
            f"p10 {mixed['round_ratio_p10']:.0%}, p90 {mixed['round_ratio_p90']:.0%})",
            "pass": mixed["ratio"] >= TARGET_INTERLEAVED_RATIO,
        },
    )
    normal, full = phases["medarchive-small-normal"], phases["medarchive-small"]
    durability = {
        "normal_files_per_s": normal["files_per_s"],
        "full_files_per_s": full["files_per_s"],
        "full_over_normal": full["files_per_s"] / normal["files_per_s"] if normal["files_per_s"] else 0.0,
        "p50_ms_added": full["latency_ms"]["p50"] - normal["latency_ms"]["p50"],
    }
    return {"ratios": ratios, "targets": targets, "memory_delta_kib": memory_delta_kib, "durability": durability}


def _table(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        f"medarchive ingest benchmark — {report['date']} — cipher {cfg['cipher']}",
        f"machine: {report['machine']['cpus']} CPUs ({report['machine']['cpu_model']}), "
        f"Python {report['machine']['python']}, Django {report['machine']['django']}, "
        f"cryptography {report['machine']['cryptography']} ({report['machine']['openssl']}), "
        f"load average at start {report['machine']['loadavg_1min_at_start']:.2f}, "
        f"at end {report['machine']['loadavg_1min_at_end']:.2f} (the benchmark itself adds about 1)",
        f"source: {report['machine']['source']}",
        f"inputs: {cfg['small_count']} x {SMALL_SIZE // KIB} KiB, "
        f"{cfg['large_count']} x {LARGE_SIZE // MIB} MiB (os.urandom); MiB = 2**20 bytes; RSS figures in MiB",
        "",
        f"{'phase':<23} {'files':>6} {'MiB':>8} {'seconds':>8} {'files/s':>9} {'MiB/s':>8} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'peak RSS':>9} {'growth':>7} {'files/s 1st/last 10%':>21}",
    ]
    for name in PHASES:
        p = report["phases"][name]
        lines.append(
            f"{name:<23} {p['files']:>6} {p['bytes'] / MIB:>8.1f} {p['seconds']:>8.2f} "
            f"{p['files_per_s']:>9.1f} {p['mib_per_s']:>8.1f} "
            f"{p['latency_ms']['p50']:>7.2f} {p['latency_ms']['p95']:>7.2f} "
            f"{p['peak_rss_kib'] / KIB:>9.1f} {p['peak_growth_kib'] / KIB:>7.1f} "
            f"{p['files_per_s_first_tenth']:>12.1f} / {p['files_per_s_last_tenth']:<.1f}"
        )
    mixed = report["phases"][INTERLEAVED]
    lines.append(
        f"{INTERLEAVED:<23} {mixed['files']:>6} files, {mixed['rounds']} rounds of {mixed['round']}: "
        f"baseline {mixed['baseline_files_per_s']:.1f} files/s, medarchive {mixed['medarchive_files_per_s']:.1f} "
        f"files/s, ratio {mixed['ratio']:.0%}"
    )
    lines.append("")
    d = report["durability"]
    lines.append(
        f"durable commits (synchronous=FULL vs NORMAL, 100 KiB files): {d['full_files_per_s']:.1f} vs "
        f"{d['normal_files_per_s']:.1f} files/s ({d['full_over_normal']:.0%}), p50 {d['p50_ms_added']:+.2f} ms"
    )
    for size_class, label in (("small", "100 KiB"), ("large", "10 MiB")):
        r = report["ratios"][size_class]
        lines.append(
            f"ratio medarchive/baseline, {label:>7} files: MiB/s {r['mib_per_s']:.0%}, files/s {r['files_per_s']:.0%}"
        )
    if report["machine"]["loadavg_1min_at_start"] > BUSY_LOADAVG:
        lines.append(
            f"WARNING: the machine was busy when the run started (load average "
            f"{report['machine']['loadavg_1min_at_start']:.2f}); figures are not representative"
        )
    lines.append("")
    for t in report["targets"]:
        lines.append(f"[{'PASS' if t['pass'] else 'FAIL'}] {t['target']}: {t['measured']}")
    return "\n".join(line.rstrip() for line in lines)


def drive(args: argparse.Namespace) -> dict[str, Any]:
    def say(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    machine = _machine()  # before generating inputs, so the load average is other people's work
    base = Path(args.workdir).resolve() if args.workdir else None
    run_dir = Path(tempfile.mkdtemp(prefix="medarchive-bench-", dir=base))
    input_dir = Path(tempfile.mkdtemp(prefix="medarchive-bench-input-", dir=base))
    try:
        say(f"generating inputs in {input_dir} ...")
        warmup = _generate(input_dir, "warmup", len(PHASES) + 2, WARMUP_SIZE)
        manifest = {
            "data_dir": str(run_dir / "data"),
            "baseline_dir": str(run_dir / "baseline"),
            "warmup": warmup,
            "files": {
                "small": _generate(input_dir, "small", args.small_count, SMALL_SIZE),
                "small_normal": _generate(input_dir, "small-normal", args.small_count, SMALL_SIZE),
                "large": _generate(input_dir, "large", args.large_count, LARGE_SIZE),
                "interleaved": _generate(input_dir, "interleaved", args.small_count, SMALL_SIZE),
            },
        }
        manifest_path = run_dir / "manifest.json"
        manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
        say(f"initialising a fresh archive in {manifest['data_dir']} ({args.cipher}) ...")
        _child("setup", manifest_path, args.cipher)
        phases = {}
        for name in PHASES:
            say(f"phase {name} ...")
            phases[name] = _child(name, manifest_path, args.cipher)
            if name.startswith("baseline"):
                shutil.rmtree(run_dir / "baseline", ignore_errors=True)  # keep disk use bounded
        say(f"phase {INTERLEAVED} (baseline and medarchive in alternating rounds of {ROUND}) ...")
        phases[INTERLEAVED] = _child(INTERLEAVED, manifest_path, args.cipher)
    finally:
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(input_dir, ignore_errors=True)
        else:
            say(f"kept {run_dir} and {input_dir}")
    report = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "config": {
            "cipher": args.cipher,
            "small_count": args.small_count,
            "small_size": SMALL_SIZE,
            "large_count": args.large_count,
            "large_size": LARGE_SIZE,
            "chunk_size": CHUNK,
            "storage": "local",
            "database": "sqlite",
            "unit": "MiB = 2**20 bytes",
        },
        "machine": machine,
        "phases": phases,
    }
    machine["loadavg_1min_at_end"] = os.getloadavg()[0]
    report.update(_evaluate(phases))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="medarchive ingest throughput vs a raw hash+encrypt+fsync baseline")
    parser.add_argument("--small-count", type=int, default=3000, help="100 KiB files (default 3000)")
    parser.add_argument("--large-count", type=int, default=60, help="10 MiB files (default 60)")
    parser.add_argument("--cipher", choices=CIPHERS, default="aes-256-gcm")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    parser.add_argument("--workdir", help="create the temporary directories here (default: system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data and input directories")
    parser.add_argument("--phase", choices=("setup", *PHASES, INTERLEAVED), help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        run_phase(args)
        return
    if args.small_count < 1 or args.large_count < 1:
        parser.error("--small-count and --large-count must be at least 1")
    report = drive(args)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else _table(report))


if __name__ == "__main__":
    main()
