"""Read-path benchmark: medarchive's REST API against a minimal Django view on the same server, same run.

    python benchmarks/api.py [--records N] [--clients 16] [--seconds 5] [--rounds 3] [--servers serve,...] [--json]

What it does (see docs/benchmarks.md):

1. Builds a fresh embedded archive (SQLite + local blobs) in a child process: migrate, initialise, one
   department, one archivist, N records with a small PDF each, and an API token for the archivist.
2. Writes a minimal Django project (one view answering `{"ok": true}`, no middleware, no database).
3. For each server kind it starts both applications on that server with the same workers and
   threads, then alternates short rounds of load (each route, then the reference) so a noisy
   neighbour slows both alike. Load comes from a separate process: `--clients` threads, each with
   one keep-alive connection, as many requests as they can in `--seconds`.
4. Prints requests/s, p50/p95/p99 latency, errors per route, the ratio to the reference, and
   PASS/FAIL for the issue's target (`GET /api/v1/records/{id}` >= 0.30 of the reference).

Server kinds: `serve` (what `medarchive serve` runs: gunicorn's arbiter with waitress workers, see
docs/adr/0021-production-server.md; the reference then runs on the same worker class with the same
settings), and for comparisons `gunicorn` (its gthread worker), `granian` and `waitress` (one process)
started by their own command lines for both applications.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

PASSWORD = "Bench-Mark-2026"
USERNAME = "bench-archivist"
DEPARTMENT = "BENCH"
TARGET_RECORD_RATIO = 0.30
SERVERS = ("serve", "gunicorn", "granian", "waitress")

REFERENCE_APP = textwrap.dedent('''
    """The reference: the least a Django view served by this server can cost. It borrows medarchive's
    settings (so medarchive's server worker finds the limits it reads) but no middleware and one URL."""
    from django.conf import settings

    from medarchive import settings as medarchive_settings

    values = {name: getattr(medarchive_settings, name) for name in dir(medarchive_settings) if name.isupper()}
    settings.configure(**{**values, "ROOT_URLCONF": __name__, "MIDDLEWARE": [], "DEBUG": False})
    from django.core.wsgi import get_wsgi_application
    from django.http import JsonResponse
    from django.urls import path


    def ping(request):
        return JsonResponse({"ok": True})


    urlpatterns = [path("ping", ping)]
    application = get_wsgi_application()
''')


# ---------------------------------------------------------------- the archive (child process)


def build_archive(data_dir: Path, records: int) -> dict[str, Any]:
    os.environ["MEDARCHIVE_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "medarchive.settings"
    import io

    import django

    django.setup()
    from medarchive.capture.services import Description, IncomingFile, create_record
    from medarchive.cli.admin import initialise
    from medarchive.cli.runtime import setup
    from medarchive.core.services import add_department
    from medarchive.security.services import add_user, create_token

    setup(migrate=True)
    initialise()
    add_department(DEPARTMENT, "基准测试科", actor=None)
    user = add_user(USERNAME, actor=None, role="archivist", password=PASSWORD)
    ids = []
    for n in range(records):
        desc = Description(
            class_code="WS",
            department_code=DEPARTMENT,
            title=f"基准测试记录 {n}",
            date="2025-03-01",
            responsible="张三",
        )
        body = io.BytesIO(b"%PDF-1.7\n" + os.urandom(2048))
        ids.append(str(create_record(desc, [IncomingFile(name=f"记录{n}.pdf", stream=body)], actor=user).pk))
    _, raw = create_token(user, actor=user, name="benchmark")
    return {"token": raw, "ids": ids}


# ---------------------------------------------------------------- load (child process)


def run_load(job: dict[str, Any]) -> dict[str, Any]:
    host, port = job["host"], job["port"]
    paths: list[str] = job["paths"]
    headers = job.get("headers", {})
    deadline = time.monotonic() + job["seconds"]
    lock = threading.Lock()
    latencies: list[float] = []
    errors: dict[str, int] = {}

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        mine, bad = [], {}
        n = offset
        while time.monotonic() < deadline:
            path = paths[n % len(paths)]
            n += 1
            began = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                bad[type(exc).__name__] = bad.get(type(exc).__name__, 0) + 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
                continue
            mine.append(time.perf_counter() - began)
            if status != 200:
                bad[str(status)] = bad.get(str(status), 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for key, count in bad.items():
                errors[key] = errors.get(key, 0) + count

    threads = [threading.Thread(target=client, args=(i * 7,)) for i in range(job["clients"])]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"requests": len(latencies), "seconds": time.monotonic() - began, "latencies": latencies, "errors": errors}


# ---------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(kind: str, app: str, *, port: int, workers: int, threads: int, data_dir: Path) -> list[str]:
    py = sys.executable
    if kind == "serve" and app == "medarchive":
        return [
            py, "-m", "medarchive", "--data-dir", str(data_dir), "serve",
            "--port", str(port), "--workers", str(workers), "--threads", str(threads),
        ]  # fmt: skip
    module = "medarchive.wsgi:application" if app == "medarchive" else "reference_app:application"
    if kind == "serve":  # the reference on the server `medarchive serve` runs, configured the same way
        return [
            py, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "medarchive.serving.worker.WaitressWorker", "--threads", str(threads),
            "--keep-alive", "30", "--log-level", "warning", "--no-control-socket", module,
        ]  # fmt: skip
    if kind == "gunicorn":
        return [
            py, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "30",
            "--log-level", "warning", module,
        ]  # fmt: skip
    if kind == "granian":
        return [
            py, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads), "--log-level", "warning", module,
        ]  # fmt: skip
    if kind == "waitress":
        return [py, "-m", "waitress", f"--listen=127.0.0.1:{port}", f"--threads={threads * workers}", module]
    raise ValueError(kind)


class Server:
    def __init__(self, kind: str, app: str, *, workers: int, threads: int, run_dir: Path, data_dir: Path) -> None:
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDARCHIVE_") and k != "DATABASE_URL"}
        env["MEDARCHIVE_DATA_DIR"] = str(data_dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(run_dir), env.get("PYTHONPATH")]))
        self.log = (run_dir / f"{kind}-{app}.log").open("w")
        self.proc = subprocess.Popen(
            _command(kind, app, port=self.port, workers=workers, threads=threads, data_dir=data_dir),
            cwd=run_dir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, path: str, headers: dict[str, str]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", path, headers=headers)
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"server on port {self.port} did not answer {path}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _load(port: int, paths: list[str], headers: dict[str, str], clients: int, seconds: float) -> dict[str, Any]:
    job = {"host": "127.0.0.1", "port": port, "paths": paths, "headers": headers, "clients": clients}
    job["seconds"] = seconds
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--load"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def _summary(parts: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(x for p in parts for x in p["latencies"])
    seconds = sum(p["seconds"] for p in parts)
    errors: dict[str, int] = {}
    for p in parts:
        for key, count in p["errors"].items():
            errors[key] = errors.get(key, 0) + count

    def pct(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * q))] if latencies else 0.0

    return {
        "requests": len(latencies),
        "seconds": seconds,
        "per_s": len(latencies) / seconds if seconds else 0.0,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "errors": errors,
    }


def measure(kind: str, args: argparse.Namespace, run_dir: Path, data_dir: Path, archive: dict[str, Any]) -> dict:
    auth = {"Authorization": f"Bearer {archive['token']}"}
    routes = {
        "GET /api/v1/records/{id}": [f"/api/v1/records/{i}" for i in archive["ids"]],
        "GET /api/v1/records (list, 25 per page)": [f"/api/v1/records?page={p}" for p in range(1, 5)],
    }
    options = {"workers": args.workers, "threads": args.threads, "run_dir": run_dir, "data_dir": data_dir}
    reference = Server(kind, "reference", **options)
    medarchive = Server(kind, "medarchive", **options)
    try:
        reference.wait("/ping", {})
        medarchive.wait(routes["GET /api/v1/records/{id}"][0], auth)
        _load(reference.port, ["/ping"], {}, args.clients, 1.0)  # warm both up (imports, connections)
        for paths in routes.values():
            _load(medarchive.port, paths, auth, args.clients, 1.0)
        parts: dict[str, list[dict[str, Any]]] = {"reference": [], **{name: [] for name in routes}}
        for number in range(args.rounds):
            order = [("reference", reference.port, ["/ping"], {})]
            order += [(name, medarchive.port, paths, auth) for name, paths in routes.items()]
            for name, port, paths, headers in order if number % 2 == 0 else order[::-1]:
                parts[name].append(_load(port, paths, headers, args.clients, args.seconds))
    finally:
        reference.stop()
        medarchive.stop()
    result = {name: _summary(p) for name, p in parts.items()}
    ref = result["reference"]["per_s"]
    for name in routes:
        result[name]["ratio"] = result[name]["per_s"] / ref if ref else 0.0
    return result


# ---------------------------------------------------------------- driver


def _table(report: dict[str, Any]) -> str:
    cfg, machine = report["config"], report["machine"]
    lines = [
        f"medarchive API benchmark — {report['date']}",
        f"machine: {machine['cpus']} CPUs, Python {machine['python']}, load average at start "
        f"{machine['loadavg_at_start']:.2f}",
        f"{cfg['records']} records; {cfg['clients']} clients with keep-alive; {cfg['rounds']} rounds of "
        f"{cfg['seconds']} s per route; {cfg['workers']} workers x {cfg['threads']} threads",
        "",
        f"{'server':<9} {'route':<40} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'ratio':>6}  errors",
    ]
    for kind, result in report["servers"].items():
        for name, r in result.items():
            ratio = f"{r['ratio']:.0%}" if "ratio" in r else ""
            label = "minimal Django view (reference)" if name == "reference" else name
            lines.append(
                f"{kind:<9} {label:<40} {r['per_s']:>8.1f} {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} "
                f"{r['p99_ms']:>7.2f} {ratio:>6}  {r['errors'] or ''}"
            )
    lines.append("")
    for t in report["targets"]:
        lines.append(f"[{'PASS' if t['pass'] else 'FAIL'}] {t['target']}: {t['measured']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="per route and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--servers", default="serve", help=f"comma-separated, from {', '.join(SERVERS)}")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        print(json.dumps(run_load(json.loads(sys.stdin.read()))))
        return
    if args.build:
        print(json.dumps(build_archive(Path(args.build), args.records)))
        return
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if unknown := set(kinds) - set(SERVERS):
        parser.error(f"unknown server kinds: {', '.join(sorted(unknown))}")
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_at_start": os.getloadavg()[0]}
    run_dir = Path(tempfile.mkdtemp(prefix="medarchive-api-bench-"))
    try:
        (run_dir / "reference_app.py").write_text(REFERENCE_APP, encoding="utf-8")
        data_dir = run_dir / "data"
        print(f"building an archive of {args.records} records in {data_dir} ...", file=sys.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDARCHIVE_") and k != "DATABASE_URL"}
        built = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--build", str(data_dir), "--records", str(args.records)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if built.returncode != 0:
            raise SystemExit(built.stderr)
        archive = json.loads(built.stdout.strip().splitlines()[-1])
        servers = {}
        for kind in kinds:
            print(f"measuring on {kind} ...", file=sys.stderr)
            servers[kind] = measure(kind, args, run_dir, data_dir, archive)
    finally:
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    targets = []
    for kind, result in servers.items():
        ratio = result["GET /api/v1/records/{id}"]["ratio"]
        targets.append(
            {
                "target": f"{kind}: GET /api/v1/records/{{id}} >= {TARGET_RECORD_RATIO:.0%} of the minimal Django view",
                "measured": f"{ratio:.0%}",
                "pass": ratio >= TARGET_RECORD_RATIO,
            }
        )
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {k: getattr(args, k) for k in ("records", "clients", "seconds", "rounds", "workers", "threads")},
        "machine": machine,
        "servers": {
            kind: {name: {k: v for k, v in r.items() if k != "latencies"} for name, r in result.items()}
            for kind, result in servers.items()
        },
        "targets": targets,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else _table(report))


if __name__ == "__main__":
    main()
