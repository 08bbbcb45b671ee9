"""The production HTTP server (waitress) with a graceful stop and deliberate limits.

waitress's own ``close()`` cancels queued requests and drops open connections; on SIGTERM
we want the opposite: stop accepting, let requests already received finish and their
answers reach the client, then close.

Facing clients directly, waitress's defaults let one client exhaust it: bodies up to 1 GB
are read (and spooled to disk) before the application can refuse them, 100 connections
are all it serves at once, and its idle timeout restarts at every byte received, so a
client trickling bytes keeps a connection for ever. :data:`LIMITS` sets each limit on
purpose, and the loop here closes a connection whose request is still arriving
:data:`REQUEST_DEADLINE` seconds after it began. On the internet, a reverse proxy in front
(``deploy/nginx.conf``) is still the way: TLS, per-address connection limits, buffering.
This module is the one door to waitress's internals (its event loop, its channels).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ThreadedTaskDispatcher, WSGITask

from daemon.errors import UserError
from daemon.web.http import MAX_BODY, AtOnce

log = logging.getLogger("expediente.http")

# One connection's request must have arrived whole (headers and body, at most ~100 KiB)
# this many seconds after its first byte: generous for a phone on a bad network, short
# for a client that trickles bytes to hold connections.
REQUEST_DEADLINE = 30.0

LIMITS: dict[str, int] = {
    # The application's own body limit, enforced before reading: by Content-Length, or as
    # a chunked body passes it (waitress refuses at >=, hence the +1).
    "max_request_body_size": MAX_BODY + 1,
    # Request line and headers: a manage link and two small cookies need far less.
    "max_request_header_size": 32 * 1024,
    # Bodies stay in memory (they are at most MAX_BODY): nothing a client sends is
    # written to disk.
    "inbuf_overflow": MAX_BODY + 1,
    # An answer bigger than this (only a long feed comes near) waits for a slow reader in
    # a temporary file, not in memory.
    "outbuf_overflow": 1024 * 1024,
    # A worker thread waits for the client only when this much is unsent; every answer
    # here is far smaller, so no slow reader holds a thread.
    "outbuf_high_watermark": 16 * 1024 * 1024,
    # Connections served at once; past it waitress stops accepting, and everyone waits.
    # Each costs a file descriptor (systemd's soft limit is 1024) and at most the header
    # and body limits in memory (~100 KiB): 500 stay under 50 MiB.
    "connection_limit": 500,
    # An idle connection (keep-alive, or opened and silent) is closed after this...
    "channel_timeout": 30,
    # ...checked this often (waitress's 30 s default would make it up to a minute).
    "cleanup_interval": 5,
}


class _Task(WSGITask):  # type: ignore[misc]  # waitress has no type hints
    """waitress's task, sending an answer's header and the start of its body together.

    waitress writes the header and then the body, and each write is a send on the
    socket. The interpreter is released during a send, and a thread waiting for it (a
    booking, a calendar sync) takes it: the body then waits until that thread lets go,
    a millisecond or two under load, while the client has only the header. Sent together,
    the answer leaves in one send once the application is done.
    """

    def write(self, data: bytes) -> None:
        if self.wrote_header or not data:
            super().write(data)
            return
        channel = self.channel
        held: list[bytes] = []
        channel.write_soon = held.append  # this task's thread alone writes to the channel
        try:
            super().write(data)
        finally:
            del channel.write_soon
        if held:
            channel.write_soon(b"".join(held))


class _Channel(HTTPChannel):  # type: ignore[misc]
    task_class = _Task


class _Dispatcher(ThreadedTaskDispatcher):  # type: ignore[misc]
    """waitress's hand-over of requests to the worker threads, except for those the loop
    answers itself.

    A request queued for a worker is answered once that thread holds the interpreter, and
    under load another thread has it: a booking, a calendar sync, a rebuild, each of them
    letting go and taking it back at every database call or socket operation, which a
    thread woken to wait for it rarely catches. The loop's thread already holds it when a
    request arrives, so a request that costs a fraction of a millisecond and waits on
    nothing (a slot listing answered from the cache) is answered there, without a second
    thread to schedule. The loop answers it at the end of its pass over the sockets
    (:meth:`answer_held`): waitress asks for the hand-over while it holds the connection's
    request lock, which answering takes too.
    """

    def __init__(self, at_once: AtOnce) -> None:
        super().__init__()
        self._at_once = at_once
        self._loop: int | None = None  # the loop thread's ident, once it runs
        self._held: list[HTTPChannel] = []

    def add_task(self, channel: HTTPChannel) -> None:
        if threading.get_ident() == self._loop and self._answers_at_once(channel):
            self._held.append(channel)
        else:
            super().add_task(channel)

    def _answers_at_once(self, channel: HTTPChannel) -> bool:
        # One request on the connection and nothing of an earlier answer unsent: writing
        # the answer then never waits for the client to read (waitress waits past its
        # high-water mark, for a flush only this thread would do).
        if len(channel.requests) != 1 or channel.total_outbufs_len:
            return False
        request = channel.requests[0]
        if request.error:
            return False
        try:
            return bool(self._at_once(request.command, request.path))
        except Exception:
            log.exception("deciding where to answer %s %s", request.command, request.path)
            return False

    def run_here(self) -> None:
        """Called by the loop's thread before it serves: the thread that answers at once."""
        self._loop = threading.get_ident()

    def answer_held(self) -> None:
        """Answer, on the loop's thread, the requests it kept (and any request that came
        in right behind one on its connection and can be answered at once too)."""
        while self._held:
            channel = self._held.pop(0)
            try:
                channel.service()
            except Exception:  # waitress's workers log and go on; so does the loop
                log.exception("answering on %r", channel)


class HttpServer:
    """waitress, with its event loop driven here so that stopping is done by the loop's own
    thread: closing sockets from another thread while it polls them races (EBADF)."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        threads: int = 8,
        behind_proxy: bool = False,
        request_deadline: float = REQUEST_DEADLINE,
        at_once: AtOnce | None = None,
    ) -> None:
        """``at_once``: which requests the loop's thread answers itself (see
        :class:`_Dispatcher`); none without it. Only requests whose answer waits on
        nothing (no lock another thread holds, no network): every other connection waits
        while the loop answers."""
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
        self._dispatcher = _Dispatcher(at_once or (lambda method, path: False))
        self._dispatcher.set_thread_count(threads)
        try:
            self._server: Any = create_server(
                app,
                host=host,
                port=port,
                threads=threads,
                _dispatcher=self._dispatcher,
                ident="expediente",
                clear_untrusted_proxy_headers=True,
                **LIMITS,
                **proxy,
            )
        except OSError as error:  # in use, or an address this machine does not have
            self._dispatcher.shutdown(timeout=1)
            raise UserError(
                f"cannot listen on {host}:{port} ([server] listen): {error.strerror or error}"
            ) from None
        self._server.channel_class = _Channel
        self.host = host
        self.port = int(self._server.effective_port)
        self._stopping = threading.Event()
        self._grace = 10.0
        self._deadline = request_deadline
        # fd -> (the request being received on it, when it was first seen)
        self._arriving: dict[int, tuple[object, float]] = {}
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
        # If the loop saw the flag first, it has already closed its wake-up pipe and there
        # is nothing left to wake (EBADF: a race seen under load).
        with contextlib.suppress(OSError):
            self._server.pull_trigger()
        self._thread.join(timeout + 5)

    def _run(self) -> None:
        server = self._server
        socket_map = server._map
        dispatcher = self._dispatcher
        dispatcher.run_here()
        next_check = time.monotonic()
        while not self._stopping.is_set():
            wasyncore.loop(timeout=0.2, map=socket_map, use_poll=True, count=1)
            dispatcher.answer_held()
            now = time.monotonic()
            if now >= next_check:
                self._close_overdue(now)
                next_check = now + min(1.0, self._deadline / 2)
        # Stop accepting: the listening socket leaves the map and closes.
        server.accepting = False
        server.del_channel()
        server.socket.close()
        deadline = time.monotonic() + self._grace
        while time.monotonic() < deadline and self._busy():
            wasyncore.loop(timeout=0.05, map=socket_map, use_poll=True, count=1)
            dispatcher.answer_held()
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=1)
        wasyncore.close_all(socket_map)

    def _close_overdue(self, now: float) -> None:
        """Close connections whose request is still arriving past the deadline.

        waitress keeps the request being received in ``channel.request`` (a new object per
        request) until it is complete; one seen for longer than the deadline is a client
        that sends too slowly, or on purpose a byte at a time.
        """
        arriving: dict[int, tuple[object, float]] = {}
        for fd, channel in list(self._server._map.items()):
            request = getattr(channel, "request", None)
            if request is None or getattr(channel, "requests", None):
                continue
            seen = self._arriving.get(fd)
            since = seen[1] if seen is not None and seen[0] is request else now
            if now - since > self._deadline:
                log.debug("closing a connection from %s: request not complete in %.0f s",
                         channel.addr[0] if channel.addr else "?", self._deadline)  # fmt: skip
                channel.will_close = True  # closed by the loop, as waitress's timeout does
            else:
                arriving[fd] = (request, since)
        self._arriving = arriving

    def _busy(self) -> bool:
        """Whether any connection has a request being answered or bytes not yet sent."""
        for channel in list(self._server._map.values()):
            if channel is self._server or not hasattr(channel, "requests"):
                continue
            if channel.requests or channel.total_outbufs_len:
                return True
        return False
