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

from daemon.errors import UserError

log = logging.getLogger("expediente.http")


class HttpServer:
    """waitress, with its event loop driven here so that stopping is done by the loop's own
    thread: closing sockets from another thread while it polls them races (EBADF)."""

    def __init__(
        self, app: Any, host: str, port: int, *, threads: int = 8, behind_proxy: bool = False
    ) -> None:
        # Behind a reverse proxy on this machine, the client's address (what the rate limit
        # counts) is the one the proxy puts in X-Forwarded-For; without one, such headers
        # from the network are dropped so no client can pick its own address.
        proxy: dict[str, Any] = (
            {
                "trusted_proxy": "127.0.0.1",
                "trusted_proxy_count": 1,
                "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
            }
            if behind_proxy
            else {}
        )
        try:
            self._server: Any = create_server(
                app,
                host=host,
                port=port,
                threads=threads,
                ident="expediente",
                clear_untrusted_proxy_headers=True,
                channel_timeout=30,
                **proxy,
            )
        except OSError as error:  # in use, or an address this machine does not have
            raise UserError(
                f"cannot listen on {host}:{port} ([server] listen): {error.strerror or error}"
            ) from None
        self.host = host
        self.port = int(self._server.effective_port)
        self._stopping = threading.Event()
        self._grace = 10.0
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests (up to ``timeout``), then close."""
        if not self._thread.is_alive():
            return
        self._grace = timeout
        self._stopping.set()
        self._server.pull_trigger()
        self._thread.join(timeout + 5)

    def _run(self) -> None:
        server = self._server
        socket_map = server._map
        while not self._stopping.is_set():
            wasyncore.loop(timeout=0.2, map=socket_map, use_poll=True, count=1)
        # Stop accepting: the listening socket leaves the map and closes.
        server.accepting = False
        server.del_channel()
        server.socket.close()
        deadline = time.monotonic() + self._grace
        while time.monotonic() < deadline and self._busy():
            wasyncore.loop(timeout=0.05, map=socket_map, use_poll=True, count=1)
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=1)
        wasyncore.close_all(socket_map)

    def _busy(self) -> bool:
        """Whether any connection has a request being answered or bytes not yet sent."""
        for channel in list(self._server._map.values()):
            if channel is self._server or not hasattr(channel, "requests"):
                continue
            if channel.requests or channel.total_outbufs_len:
                return True
        return False
