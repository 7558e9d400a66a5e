"""CLI start-up: a simple query against `medarchive --help`, alternating, on a fresh archive of N records.

    python benchmarks/cli.py [--records 2000] [--runs 7] [--json]

Issue #9 part 6: `medarchive records list --json` over 2,000 records within 3x of `medarchive --help`.
Each command runs in a fresh interpreter (as a user runs it); the two alternate so a busy neighbour slows
both alike; medians are compared. The archive is built once, before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 3.0
USER, PASSWORD = "bench-archivist", "Bench-Mark-2026"


def _build(data_dir: Path, records: int) -> None:
    os.environ["MEDARCHIVE_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "medarchive.settings"
    import io

    import django

    django.setup()
    from medarchive.capture.services import Description, IncomingFile, create_record
    from medarchive.cli.admin import initialise
    from medarchive.cli.runtime import setup
    from medarchive.core.services import add_department
    from medarchive.security.services import add_user

    setup(migrate=True)
    initialise()
    add_department("BENCH", "基准测试科", actor=None)
    user = add_user(USER, actor=None, role="archivist", password=PASSWORD)
    for n in range(records):
        desc = Description(class_code="WS", department_code="BENCH", title=f"记录 {n}", date="2025-03-01")
        create_record(
            desc, [IncomingFile(name=f"{n}.pdf", stream=io.BytesIO(b"%PDF-1.7\n" + os.urandom(512)))], actor=user
        )


def _time(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--build", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build:
        _build(Path(args.build), args.records)
        return
    run_dir = Path(tempfile.mkdtemp(prefix="medarchive-cli-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDARCHIVE_") and k != "DATABASE_URL"}
    try:
        data_dir = run_dir / "data"
        print(f"building an archive of {args.records} records ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--build", str(data_dir), "--records", str(args.records)],
            env=env,
            check=True,
        )
        base = [sys.executable, "-m", "medarchive"]
        commands = {
            "--help": [*base, "--help"],
            "records list --json": [*base, "--data-dir", str(data_dir), "records", "list", "--json", "--as", USER],
        }
        for command in commands.values():
            _time(command, env)  # warm the page cache and the bytecode
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(_time(command, env))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["records list --json"] / medians["--help"]
    report = {
        "records": args.records,
        "runs": args.runs,
        "median_s": medians,
        "ratio": ratio,
        "target": f"records list --json <= {TARGET_RATIO:g}x --help",
        "pass": ratio <= TARGET_RATIO,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, value in medians.items():
        print(f"{name:<22} median {value:.3f} s  (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"[{'PASS' if report['pass'] else 'FAIL'}] {report['target']}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
