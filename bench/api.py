"""Benchmark: the running daemon's HTTP API, measured from outside the process.

A desk of 10 technicians with 2,000 busy intervals each (in the store, as syncs leave
them) runs as ``expediente run`` in a subprocess; this script is the client, over real
HTTP on 127.0.0.1 with keep-alive connections. It prints:

* ``GET /api/v1/slots`` for 14 days: p50/p99 latency from one client, and requests/s
  from several concurrent clients; the booking page's p50/p99;
* ``POST /api/v1/bookings``: bookings per second (each a free slot, validated, inserted
  in its own transaction, queued for the calendar);
* the daemon's RSS when idle and its peak under load (``/proc``).

The client shares the machine's cores with the daemon, so throughput figures are a
floor. Run: ``.venv/bin/python bench/api.py [--requests N] [--clients N]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.base import ObjectChange
from daemon.config import load_config
from daemon.store import Store
from rules.intervals import Interval

TZ = ZoneInfo("America/Sao_Paulo")
TECHNICIANS = 10
INTERVALS = 2000
NOW = datetime(2027, 3, 1, 7, 0, tzinfo=TZ)  # a Monday morning
TOKEN = "bench-admin-token-0123456789abcdef"

CONFIG_HEAD = """
[desk]
name = "Bench desk"
holidays = {{ country = "BR", subdivision = "SP" }}

[booking]
horizon = "30d"
rate_limit = 0  # one client books every slot

[sync]
interval = "1h"
stale_after = "2h"

[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[store]
path = "bench.db"
"""

TECHNICIAN = """
[[technicians]]
id = "t{n}"
name = "Tech {n}"
[technicians.calendar]
kind = "caldav"
url = "http://127.0.0.1:9/t{n}/"
username = "t{n}"
password_file = "secrets/caldav"
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(folder: Path, port: int, rng: random.Random) -> Path:
    (folder / "secrets").mkdir()
    (folder / "secrets" / "caldav").write_text("x\n")
    (folder / "secrets" / "admin-token").write_text(TOKEN + "\n")
    (folder / "secrets" / "signing-key").write_text("bench-signing-key-0123456789\n")
    text = CONFIG_HEAD.format(port=port)
    text += "".join(TECHNICIAN.format(n=n) for n in range(TECHNICIANS))
    path = folder / "expediente.toml"
    path.write_text(text)
    config = load_config(path)
    store = Store(config.store.path)
    from daemon.clock import FixedClock
    from daemon.service import Service

    Service(config, store, FixedClock(NOW))  # registers technicians and calendars
    for calendar in config.calendars:
        blocks = []
        for _ in range(INTERVALS):
            day = NOW + timedelta(days=rng.randrange(32))
            start = day.replace(hour=rng.randrange(6, 19), minute=rng.choice((0, 15, 30, 45)))
            blocks.append(Interval(start, start + timedelta(minutes=rng.choice((10, 15, 20)))))
        changes = [
            ObjectChange(href=f"{i}.ics", uid=f"u{i}", etag='"1"', blocks=(b,))
            for i, b in enumerate(blocks)
        ]
        store.apply_sync(calendar.id, changes, full=True, state=None, now=NOW)
    store.close()
    return path


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes, float]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        started = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        return response.status, payload, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--bookings", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        path = prepare(Path(tmp), port, rng)
        log = Path(tmp) / "daemon.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "run", "--config", str(path),
                 "--clock-start", NOW.isoformat()],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "ready:" not in log.read_text():
                if time.monotonic() > deadline or daemon.poll() is not None:
                    print(log.read_text())
                    return 1
                time.sleep(0.1)
            time.sleep(1)
            idle_rss = rss_kb(daemon.pid)
            slots_path = "/api/v1/slots?from=2027-03-01&to=2027-03-14"
            client = Client(port)
            status, payload, _ = client.request("GET", slots_path)
            assert status == 200, payload
            offered = json.loads(payload)["slots"]
            latencies = []
            for _ in range(args.requests):
                status, _, took = client.request("GET", slots_path)
                assert status == 200
                latencies.append(took * 1000)

            page_latencies = []
            for _ in range(200):
                status, _, took = client.request("GET", "/book/standard")
                assert status == 200
                page_latencies.append(took * 1000)

            counts = [0] * args.clients

            def hammer(index: int, until: float) -> None:
                own = Client(port)
                while time.perf_counter() < until:
                    status, _, _ = own.request("GET", slots_path)
                    assert status == 200
                    counts[index] += 1

            until = time.perf_counter() + 5.0
            threads = [
                threading.Thread(target=hammer, args=(i, until)) for i in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            throughput = sum(counts) / 5.0

            booked = 0
            started = time.perf_counter()
            for slot in offered[: args.bookings]:
                body = {
                    "type": "standard", "start": slot["start"], "company": "Bench Ltda",
                    "responsible_name": "Maria", "phone": "(11) 98765-4321",
                    "email": "m@example.com", "remote_tool": "AnyDesk", "remote_id": "",
                    "description": "", "accept_rules": True,
                }  # fmt: skip
                status, payload, _ = client.request("POST", "/api/v1/bookings", body)
                booked += status == 201
            booking_seconds = time.perf_counter() - started
            peak_rss = rss_kb(daemon.pid, "VmHWM")
        finally:
            daemon.terminate()
            daemon.wait(30)
    print(f"desk: {TECHNICIANS} technicians x {INTERVALS} busy intervals; 14-day slot query")
    print(f"slots offered in 14 days: {len(offered)}")
    print(
        f"GET /api/v1/slots, 1 client, {args.requests} requests: "
        f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms"
        f"  (target p99 < 20 ms: {'PASS' if percentile(latencies, 0.99) < 20 else 'FAIL'})"
    )
    print(f"GET /api/v1/slots, {args.clients} clients for 5 s: {throughput:.0f} requests/s")
    print(
        f"GET /book/standard (the booking page, 7 days of slots), 1 client, 200 requests: "
        f"p50 {statistics.median(page_latencies):.1f} ms, "
        f"p99 {percentile(page_latencies, 0.99):.1f} ms"
    )
    attempted = min(args.bookings, len(offered))
    print(
        f"POST /api/v1/bookings: {booked}/{attempted} booked, "
        f"{attempted / booking_seconds:.0f} bookings/s"
    )
    print(
        f"daemon RSS: idle {idle_rss / 1024:.0f} MB, peak under load {peak_rss / 1024:.0f} MB"
        f"  (target < 100 MB: {'PASS' if peak_rss < 100 * 1024 else 'FAIL'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
