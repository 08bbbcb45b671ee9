"""The ceiling for bench/api.py: a minimal WSGI app on the daemon's own waitress settings.

``daemon.web.server.HttpServer`` with its ``LIMITS`` and the daemon's 8 worker threads,
serving an app that does nothing but answer: a GET gets the bytes of ``--body`` (the
daemon's own slots document, so the same bytes cross the socket), a POST has its body
read and gets them with 201. Its GETs are answered by the server's loop thread, as the
daemon answers a slot listing from memory; its POSTs by a worker, as a booking is. What
the daemon achieves divided by what this achieves, on the same machine in the same run,
is the figure that survives a noisy machine.

Run by bench/api.py: ``python bench/ceiling.py --port N --body FILE``; it prints
``ready`` once listening and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from daemon.web.server import HttpServer


def minimal_app(body: bytes) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST":
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            start_response("201 Created", headers)
        else:
            start_response("200 OK", headers)
        return [body]

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    server = HttpServer(
        minimal_app(args.body.read_bytes()),
        "127.0.0.1",
        args.port,
        at_once=lambda method, path: method == "GET",
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print("ready", flush=True)
    stop.wait()
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
