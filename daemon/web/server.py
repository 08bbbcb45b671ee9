"""The production HTTP server (waitress) with a graceful stop.

waitress's own ``close()`` cancels queued requests and drops open connections; on SIGTERM
we want the opposite: stop accepting, let requests already received finish and their
answers reach the client, then close.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

log = logging.getLogger("expediente.http")


class HttpServer:
    def __init__(self, app: Any, host: str, port: int, *, threads: int = 8) -> None:
        self._server: Any = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="expediente",
            clear_untrusted_proxy_headers=True,
            channel_timeout=30,
        )
        self.host = host
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests (up to ``timeout``), then close."""
        server = self._server
        if not self._thread.is_alive():
            return
        server.accepting = False
        try:
            server.del_channel()
            server.socket.close()
        except OSError:  # pragma: no cover - already closed
            pass
        server.pull_trigger()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._busy():
            time.sleep(0.02)
        server.task_dispatcher.shutdown(
            cancel_pending=False, timeout=max(0.1, deadline - time.monotonic())
        )
        wasyncore.close_all(server._map)
        self._thread.join(timeout=5)

    def _busy(self) -> bool:
        """Whether any connection has a request being answered or bytes not yet sent."""
        for channel in list(self._server._map.values()):
            if channel is self._server or not hasattr(channel, "requests"):
                continue
            if channel.requests or channel.total_outbufs_len:
                return True
        return False
