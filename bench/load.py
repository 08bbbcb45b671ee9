"""Load generator for bench/api.py, run as a process of its own: open loop or closed loop.

bench/api.py starts it with a JSON plan on stdin and reads a JSON report from stdout, so
the client never shares a GIL with the server it measures or with the orchestrator.

* ``open``: requests go out on a schedule fixed before the run, whatever the server does:
  evenly (request *k* of a stream at *k* / rate seconds), or with ``"arrivals": "random"``
  at random times, as independent users arrive (the stream's ``duration`` × ``rate``
  requests at uniformly drawn times, which is a Poisson process of that rate given its
  count), drawn from ``seed`` so that phases run with the same seed get the very same
  times. Even arrivals beat in step with the server's own periodic work (syncs every
  2 s, one every 40 ms): the same requests meet it round after round, and which ones
  depends on where each run's syncs happen to fall: the syncs' effect on the slots p99
  came out at 1.28 and 2.14 × calm in identical runs. Latency is measured from the *scheduled* send time,
  so a request that waited for a free connection because the server was slow counts that
  wait (no coordinated omission: a stalled server shows as the whole queue of late
  requests, not as one slow one). ``connections`` keep-alive connections carry the
  requests, like that many browsers; when all are busy the next request waits, late.
* ``closed``: ``connections`` clients each send their next request when the previous one
  is answered, for ``duration`` seconds or until the request bodies run out. Latency is
  from the send.

The plan: ``{"port", "mode", "duration", "connections", "timeout" (seconds to wait for
an answer), "grace" (open loop: seconds past ``duration`` a late request may still be
sent), "arrivals" and "seed" (open loop, optional: see above), "streams": [{"name", "method",
"path", "rate" (open only), "bodies" (JSON documents, one per request, each used once;
optional in an open plan), "repeat" (closed only: use the bodies over and over)}]}``.
A closed plan has one stream, with bodies (wrk does closed-loop GETs). The report: per stream, each request's
``[scheduled_s, latency_ms, status]`` (status 0: no answer in time), plus ``unsent``
(scheduled but still waiting for a connection at the end of the grace), and the largest
``lag_ms`` and the p99 ``lag_p99_ms`` between a request's scheduled and actual send: a
generator late to send was itself short of CPU, and says so.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    stream: str
    method: str
    path: str
    body: bytes | None
    at: float  # seconds after the start (open loop), 0 (closed loop)


@dataclass
class Stream:
    results: list[tuple[float, float, int]] = field(default_factory=list)
    unsent: int = 0
    lags_ms: list[float] = field(default_factory=list)


class Connection:
    """One keep-alive connection, reopened after an error."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def send(self, request: Request) -> int:
        """The answer's status; 0 when the exchange failed or timed out (the connection is
        dropped then)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.conn.connect()
            assert self.conn.sock is not None
            # Without it small requests can wait for the server's delayed ACK (~40 ms).
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        headers = {"Content-Type": "application/json"} if request.body is not None else {}
        try:
            self.conn.request(request.method, request.path, body=request.body, headers=headers)
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            return 0


def schedule(plan: dict[str, Any]) -> list[Request]:
    """Every request of an open-loop plan, in the order they are due."""
    found: list[Request] = []
    duration = plan["duration"]
    arrivals = plan.get("arrivals", "even")
    if arrivals not in ("even", "random"):
        raise ValueError(f"arrivals: {arrivals!r} is neither 'even' nor 'random'")
    rng = random.Random(plan.get("seed", 0))
    for stream in plan["streams"]:
        bodies = stream.get("bodies")
        count = int(duration * stream["rate"])
        if bodies is not None:
            count = min(count, len(bodies))
        if arrivals == "random":
            times = sorted(rng.uniform(0.0, duration) for _ in range(count))
        else:
            times = [k / stream["rate"] for k in range(count)]
        for k, at in enumerate(times):
            body = None if bodies is None else json.dumps(bodies[k]).encode()
            found.append(Request(stream["name"], stream["method"], stream["path"], body, at))
    found.sort(key=lambda r: r.at)
    return found


def closed_request(plan: dict[str, Any], k: int) -> Request | None:
    """Request ``k`` of a closed-loop plan: body ``k``, or with ``repeat`` the bodies over
    and over; None when they ran out."""
    (stream,) = plan["streams"]
    bodies = stream["bodies"]
    if k >= len(bodies) and not stream.get("repeat"):
        return None
    body = json.dumps(bodies[k % len(bodies)]).encode()
    return Request(stream["name"], stream["method"], stream["path"], body, 0.0)


def run(plan: dict[str, Any]) -> dict[str, Any]:
    open_loop = plan["mode"] == "open"
    pending = schedule(plan) if open_loop else []
    streams = {s["name"]: Stream() for s in plan["streams"]}
    lock = threading.Lock()
    position = 0
    started = time.perf_counter()
    stop_sending = started + plan["duration"] + (plan["grace"] if open_loop else 0.0)

    def next_request() -> Request | None:
        nonlocal position
        with lock:
            if time.perf_counter() >= stop_sending:
                return None
            if not open_loop:
                position += 1
                return closed_request(plan, position - 1)
            if position >= len(pending):
                return None
            position += 1
            return pending[position - 1]

    def worker() -> None:
        connection = Connection(plan["port"], plan["timeout"])
        while (request := next_request()) is not None:
            due = started + request.at
            if open_loop:
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            sent = time.perf_counter()
            status = connection.send(request)
            done = time.perf_counter()
            origin = due if open_loop else sent
            record = streams[request.stream]
            with lock:
                record.results.append((request.at, (done - origin) * 1000, status))
                record.lags_ms.append((sent - due) * 1000 if open_loop else 0.0)
        if connection.conn is not None:
            connection.conn.close()

    threads = [threading.Thread(target=worker) for _ in range(plan["connections"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if open_loop:
        for request in pending[position:]:
            streams[request.stream].unsent += 1
    return {
        "elapsed": elapsed,
        "streams": {
            name: {
                "results": s.results,
                "unsent": s.unsent,
                "lag_ms": max(s.lags_ms, default=0.0),
                "lag_p99_ms": _p99(s.lags_ms),
            }
            for name, s in streams.items()
        },
    }


def _p99(values: list[float]) -> float:
    """Nearest rank, as bench/api.py's percentiles; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def main() -> None:
    plan = json.load(sys.stdin)
    json.dump(run(plan), sys.stdout)


if __name__ == "__main__":
    main()
