"""`medarchive listen hl7`: the HL7 v2 MLLP listener (MDM^T02/T04, ORU^R01, ADT^A03)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from pathlib import Path
from typing import Annotated

import typer

from medarchive.cli import runtime
from medarchive.cli.listen import listen
from medarchive.cli.output import console, fail

DEFAULT_MAX_MB = 64  # ~47 MiB of document; larger files go through the REST API, which streams


@listen.command("hl7")
@runtime.handles_errors
def listen_hl7(
    as_user: Annotated[
        str, typer.Option("--as", help="The interface account (role interface) that records are created as.")
    ],
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one; the ready line names it).")] = 2575,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    allow: Annotated[
        list[str] | None,
        typer.Option(help="Sender address or network allowed to connect (repeatable). Default: loopback only."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Threads that archive messages in parallel.")] = 4,
    frame_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds without data inside a frame before it is answered as truncated.")
    ] = 30.0,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate chain: serve MLLP over TLS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option(help="PEM CA bundle: require senders to present a certificate it signed.")
    ] = None,
    max_mb: Annotated[
        int, typer.Option("--max-mb", min=1, help="Largest message in MiB (base64 documents included).")
    ] = DEFAULT_MAX_MB,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every message, not only refusals.")] = False,
) -> None:
    """Listen for HL7 v2 messages over MLLP and archive them as --as USERNAME.

    Each message is answered with an ACK: AA (archived, or a repeat of an archived control ID),
    AE (content error, e.g. unknown department, missing PID-3, bad base64) or AR (rejected:
    unsupported type or version, bad MSH-2, undecodable, truncated frame). Stop with Ctrl+C or SIGTERM.
    """
    runtime.setup()
    runtime.ensure_initialised()
    from django.conf import settings

    from medarchive.capture.hl7 import mllp
    from medarchive.capture.hl7.handler import Handler, close_connections
    from medarchive.security.roles import Role

    user = runtime.actor(as_user)
    if user.role != Role.INTERFACE:
        fail(f"{as_user} has role {user.role}; the listener needs an interface account", code=3, field="--as")
    try:
        allowed = mllp.networks(allow) if allow else mllp.LOOPBACK
    except ValueError as exc:
        fail(str(exc), code=2, field="--allow")
    tls = _tls(tls_cert, tls_key, tls_client_ca)
    if verbose:
        logging.getLogger("medarchive.capture.hl7").setLevel(logging.INFO)
    # A message is held in memory while it is parsed: keep it bounded. base64 is 4/3 of the document;
    # no message needs to be larger than the largest upload in base64 plus its segments.
    max_bytes = min(max_mb * 1024 * 1024, settings.CONFIG.max_upload_bytes * 4 // 3 + 1024 * 1024)
    handler = Handler(user_id=user.pk)
    server = mllp.Server(
        mllp.Settings(
            host=host,
            port=port,
            workers=workers,
            max_bytes=max_bytes,
            frame_timeout=frame_timeout,
            allow=allowed,
            tls=tls,
        ),
        handle=handler,
        reject=handler.reject,
        on_worker_exit=close_connections,
    )

    def ready(address: tuple[str, int]) -> None:
        scheme = "MLLP/TLS" if tls else "MLLP"
        console.print(
            f"medarchive HL7 listener ({scheme}) on {address[0]}:{address[1]} as {user.username}  (Ctrl+C to stop)",
            highlight=False,
            soft_wrap=True,
        )
        sys.stdout.flush()

    try:
        asyncio.run(server.serve(ready))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", code=1, field="--port")
    console.print("medarchive HL7 listener stopped", highlight=False)


def _tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> ssl.SSLContext | None:
    if cert is None:
        if key is not None or client_ca is not None:
            fail("--tls-key and --tls-client-ca need --tls-cert", code=2, field="--tls-cert")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        fail(f"cannot load the TLS certificate or key: {exc}", code=2, field="--tls-cert")
    return context


def register(app: typer.Typer) -> None:
    """`listen hl7` is added to the `listen` group by the decorator above, at import."""
