"""A gunicorn worker that serves with waitress on the sockets gunicorn listens on.

gunicorn brings the process model a production server needs: N workers, one listening socket shared
between them, restart of a worker that dies or hangs (heartbeat), graceful reload on HUP and graceful
stop on TERM. waitress brings the HTTP parser that carries medarchive's body gate (serving/gated.py)
and threads for blocking Django views. The worker runs waitress's event loop one poll at a time so it
can tell gunicorn it is alive and notice when it is asked to stop.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from gunicorn.workers.base import Worker
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server

from medarchive.core import gate
from medarchive.serving.gated import HEADER_LIMIT, gated_channel

POLL_SECONDS = 0.5
FORWARDED = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port"}


class WaitressWorker(Worker):
    def run(self) -> None:
        BaseWSGIServer.channel_class = gated_channel()
        proxy = settings.CONFIG.trusted_proxy
        # Behind the configured proxy only: the client's address and scheme from its X-Forwarded-* headers;
        # from anyone else those headers are dropped (clear_untrusted_proxy_headers).
        forwarded = (
            {"trusted_proxy": proxy, "trusted_proxy_count": 1, "trusted_proxy_headers": FORWARDED} if proxy else {}
        )
        server: Any = create_server(
            self.wsgi,
            sockets=[listener.sock for listener in self.sockets],
            threads=self.cfg.threads,
            ident="medarchive",
            max_request_body_size=gate.upload_limit() + 1,  # waitress refuses a body of this size or more
            max_request_header_size=HEADER_LIMIT,
            channel_timeout=max(self.cfg.keepalive, 30),
            clear_untrusted_proxy_headers=True,
            **forwarded,
        )
        sockets_map = server._map if hasattr(server, "_map") else server.map
        try:
            while self.alive:
                self.notify()
                wasyncore.loop(timeout=POLL_SECONDS, map=sockets_map, count=1)
                if self.ppid != os.getppid():
                    break  # the arbiter is gone: stop rather than serve orphaned
        finally:
            self._drain(sockets_map)
            server.task_dispatcher.shutdown(timeout=self.cfg.graceful_timeout)
            wasyncore.close_all(sockets_map)

    def _drain(self, sockets_map: dict[int, Any]) -> None:
        """Stop (TERM, or the old workers of a HUP reload) without losing a request: accept no more
        connections (the shared socket's queue goes to the other workers), and keep the loop running
        until every request already received or being received is answered, up to `graceful_timeout`.
        Only then are idle keep-alive connections closed."""
        for dispatcher in list(sockets_map.values()):
            if isinstance(dispatcher, BaseWSGIServer):
                dispatcher.del_channel(sockets_map)  # the socket stays open: gunicorn owns it
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while time.monotonic() < deadline and any(_busy(ch) for ch in list(sockets_map.values())):
            self.notify()
            wasyncore.loop(timeout=0.05, map=sockets_map, count=1)


FIRST_REQUEST_GRACE = 1.0  # a connection accepted just before the stop gets this long to send its request


def _busy(channel: Any) -> bool:
    """A connection with a request half received, queued, being served or not yet sent in full; or one
    accepted just before the stop whose client has not sent its request yet (closing it would reset it)."""
    if not isinstance(channel, HTTPChannel):
        return False
    unheard = (
        channel.last_activity == channel.creation_time and time.time() - channel.creation_time < FIRST_REQUEST_GRACE
    )
    return bool(unheard or channel.request is not None or channel.requests or channel.total_outbufs_len)
