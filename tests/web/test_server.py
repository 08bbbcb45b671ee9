"""The HTTP server as the daemon runs it (waitress, the whole app) against clients that
misbehave on the wire: bodies over the limit, chunked bodies that never end, connections
that trickle bytes to hold the server. Real sockets on 127.0.0.1; every socket timeout is
a guard against a hang, never a measurement.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import SERVER
from daemon.metrics import Metrics
from daemon.web.app import build_app
from daemon.web.http import MAX_BODY, App
from daemon.web.server import HttpServer
from tests.daemon.desk import make_desk, monday

GUARD = 20.0  # seconds before a stuck socket fails the test instead of hanging it


@pytest.fixture
def app(tmp_path: Path) -> App:
    desk = make_desk(tmp_path, monday(7, 0))
    return build_app(desk.service, desk.signer, Metrics())


@pytest.fixture
def server(app: App) -> Iterator[HttpServer]:
    running = HttpServer(app, "127.0.0.1", 0)
    running.start()
    yield running
    running.stop()


def connect(server: HttpServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=GUARD)


def answer(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of the answer on ``sock`` (read until the server closes it or the
    Content-Length is in)."""
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            if length is not None and len(body) >= length:
                return int(head.split(b" ", 2)[1]), body[:length]
        piece = sock.recv(65536)
        if not piece:
            return int(data.split(b" ", 2)[1]), data.partition(b"\r\n\r\n")[2]
        data += piece


def post_head(extra: str) -> bytes:
    return (
        "POST /api/v1/bookings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_a_body_over_the_limit_is_refused_by_its_length_before_it_is_sent(
    server: HttpServer,
) -> None:
    with connect(server) as sock:
        sock.sendall(post_head("Content-Length: 10000000\r\n"))  # and not one byte of it
        assert answer(sock)[0] == 413


def test_a_body_at_the_limit_reaches_the_app(server: HttpServer) -> None:
    with connect(server) as sock:
        sock.sendall(post_head(f"Content-Length: {MAX_BODY}\r\n") + b" " * MAX_BODY)
        status, body = answer(sock)
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_json"


def test_a_chunked_body_is_refused_as_it_passes_the_limit(server: HttpServer) -> None:
    # One chunk announced far larger than the limit, and bytes sent up to exactly one past
    # the limit (waitress counts the chunk's framing too): the body never ends, so only a
    # cap applied while reading answers. Sending more would leave bytes the server never
    # reads when it closes, and its kernel would reset the connection before the 413 is
    # read (a race seen on a loaded machine).
    head = b"100000\r\n"
    with connect(server) as sock:
        sock.sendall(post_head("Transfer-Encoding: chunked\r\n"))
        sock.sendall(head + b" " * (MAX_BODY + 1 - len(head)))
        assert answer(sock)[0] == 413


def test_a_chunked_body_within_the_limit_reaches_the_app(server: HttpServer) -> None:
    body = json.dumps({"type": "nope", "start": "2026-11-30T09:00:00-03:00"}).encode()
    with connect(server) as sock:
        sock.sendall(
            post_head("Transfer-Encoding: chunked\r\n")
            + f"{len(body):x}\r\n".encode()
            + body
            + b"\r\n0\r\n\r\n"
        )
        status, answered = answer(sock)
    assert status == 422, answered


def test_trickling_connections_do_not_stop_healthz_answering(server: HttpServer) -> None:
    # More than waitress's default connection limit (100), each sending a byte of its
    # headers every second so that no idle timeout ever applies.
    trickling = [connect(server) for _ in range(150)]
    for sock in trickling:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1.0):
            for sock in trickling:
                with contextlib.suppress(OSError):  # one the server closed
                    sock.sendall(b"x")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        with connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            status, body = answer(sock)
        assert status == 200 and json.loads(body)["status"] == "ok"
    finally:
        stop.set()
        thread.join(GUARD)
        for sock in trickling:
            sock.close()


def test_a_request_still_arriving_after_the_deadline_is_closed(app: App) -> None:
    server = HttpServer(app, "127.0.0.1", 0, request_deadline=1.0)
    server.start()
    try:
        with connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            closed = False
            for _ in range(int(GUARD / 0.2)):  # a byte every 0.2 s: never idle
                try:
                    sock.sendall(b"x")
                    readable, _, _ = select.select([sock], [], [], 0.2)
                    if readable and not sock.recv(1024):
                        closed = True
                except OSError:  # reset: closed with our bytes unread
                    closed = True
                if closed:
                    break
            assert closed, "the trickling connection was never closed"
        # The server itself goes on answering.
        with connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert answer(sock)[0] == 200
    finally:
        server.stop()


def test_the_nginx_example_keeps_in_step_with_the_daemon() -> None:
    """deploy/nginx.conf repeats facts the daemon owns; this is where they meet."""
    text = (Path(__file__).parents[2] / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    (size,) = re.findall(r"^\s*client_max_body_size (\d+)k;", text, re.MULTILINE)
    assert int(size) * 1024 == MAX_BODY
    (upstream,) = re.findall(r"^\s*server (127\.0\.0\.1:\d+);", text, re.MULTILINE)
    assert upstream == next(s.default for s in SERVER.settings if s.name == "listen")
    passes = text.count("proxy_pass http://expediente;")
    # Replaced, never appended: the daemon trusts the last address of the header.
    assert text.count("proxy_set_header X-Forwarded-For $remote_addr;") == passes >= 1
    assert "$proxy_add_x_forwarded_for" not in text


def test_an_answer_leaves_in_one_send_header_and_body_together(
    server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """waitress sends the header and the body apart, and between the two sends another
    thread (a booking, a sync) can take the interpreter while the client waits for the
    body. The daemon's server sends them together."""
    import waitress.channel

    sent: list[bytes] = []
    real = waitress.channel.HTTPChannel.send

    def send(self: object, data: bytes, do_close: bool = True) -> int:
        sent.append(bytes(data))
        return real(self, data, do_close)  # type: ignore[no-any-return]

    monkeypatch.setattr(waitress.channel.HTTPChannel, "send", send)
    with contextlib.closing(connect(server)) as sock:
        for path in ("/healthz", "/api/v1/slots?from=2026-12-01&to=2026-12-02"):
            sent.clear()
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            status, body = answer(sock)
            assert status == 200
            assert json.loads(body)
            assert len(sent) == 1, f"{path}: {[len(s) for s in sent]} bytes in each send"
            assert sent[0].startswith(b"HTTP/1.1 200") and sent[0].endswith(body)


def threads_app(seen: list[tuple[str, str]]) -> App:
    """A WSGI app that answers every path with its name, noting which thread answered."""

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        path = str(environ["PATH_INFO"])
        seen.append((path, threading.current_thread().name))
        body = path.encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])  # type: ignore[operator]
        return [body]

    return app  # type: ignore[return-value]


def get_all(sock: socket.socket, paths: list[str]) -> list[bytes]:
    """Send a GET of each path at once (pipelined), then read the answers in order."""
    sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for p in paths))
    bodies = []
    buffered = b""
    for _ in paths:
        while True:
            head, sep, rest = buffered.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if sep and length and len(rest) >= int(length.group(1)):
                size = int(length.group(1))
                assert head.startswith(b"HTTP/1.1 200")
                bodies.append(rest[:size])
                buffered = rest[size:]
                break
            piece = sock.recv(65536)
            assert piece, "the server closed the connection"
            buffered += piece
    return bodies


def test_what_the_app_answers_at_once_is_answered_by_the_loop_thread() -> None:
    """No worker thread to wake for a request the app answers from memory: the loop's
    thread, which read it, answers it. Everything else goes to the workers."""
    seen: list[tuple[str, str]] = []
    server = HttpServer(
        threads_app(seen), "127.0.0.1", 0, at_once=lambda method, path: path == "/quick"
    )
    server.start()
    try:
        with contextlib.closing(connect(server)) as sock:
            for path in ("/quick", "/other", "/quick"):
                assert get_all(sock, [path]) == [path.encode()]
            # Pipelined: answered in order, each by the thread its kind goes to.
            paths = ["/quick", "/quick", "/other", "/quick"]
            assert get_all(sock, paths) == [p.encode() for p in paths]
    finally:
        server.stop()
    by_loop = [path for path, thread in seen if thread == "http"]
    by_workers = [path for path, thread in seen if thread != "http"]
    assert by_loop[:2] == ["/quick", "/quick"]
    assert "/other" not in by_loop
    assert by_workers.count("/other") == 2


def test_a_failing_at_once_decision_leaves_the_request_to_a_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[str, str]] = []

    def broken(method: str, path: str) -> bool:
        raise RuntimeError("a bug in deciding")

    server = HttpServer(threads_app(seen), "127.0.0.1", 0, at_once=broken)
    server.start()
    try:
        with contextlib.closing(connect(server)) as sock:
            assert get_all(sock, ["/a", "/b"]) == [b"/a", b"/b"]
    finally:
        server.stop()
    assert [thread != "http" for _, thread in seen] == [True, True]
    assert "a bug in deciding" in caplog.text


def test_the_daemon_answers_a_slot_listing_on_the_loop_thread(app: App) -> None:
    """Once the busy time is built, the slot listing (the request the booking page repeats)
    is answered at once; the first one, which builds it, and the health check are not."""
    seen: list[str] = []

    def watched(environ: dict[str, object], start_response: object) -> object:
        seen.append(threading.current_thread().name)
        return app(environ, start_response)  # type: ignore[arg-type]

    server = HttpServer(watched, "127.0.0.1", 0, at_once=app.answers_at_once)
    server.start()
    slots = "/api/v1/slots?from=2026-12-01&to=2026-12-02"
    try:
        with contextlib.closing(connect(server)) as sock:
            for path in (slots, slots, "/healthz", slots):
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                status, body = answer(sock)
                assert status == 200 and json.loads(body)
    finally:
        server.stop()
    assert [name == "http" for name in seen] == [False, True, False, True]
