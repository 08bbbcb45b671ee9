"""Benchmark: one booking's CPU in the daemon's own code, without HTTP or other threads.

``bench/api.py`` measures bookings over HTTP, where waitress, the load generator, the
calendar writes and the syncs share the machine and the interpreter lock with them, so a
change of a tenth of a millisecond in the booking path disappears in the noise between two
runs. This calls the daemon's WSGI app directly (``daemon.web.app.build_app`` on a real
``Service`` and SQLite ``Store``), on the desk ``bench/api.py`` builds (the same busy time
and two years of history), with the daemon's refresher but no outbox, no syncs and no
server: the CPU a booking request costs, its commit to disk included. After the one-client
run, the daemon's outbox (``daemon/outbox.py``, one item after the other, on this thread)
delivers what those bookings queued: each session's event written to the desk's Radicale
and its notice. This thread's CPU for it, per booking, is what the outbox costs the daemon
beside the request: the event's iCalendar text, the PUT's HTTP client, the bookkeeping
(Radicale runs in a process of its own and is not counted, nor is the refresher).

Each run copies the prepared store, books ``--bookings`` distinct free starts past the
14 days the slots bench queries (one client, then ``--clients`` threads), and reports the
process CPU per booking; the median of ``--runs`` runs is printed with the spread. The CPU
moves by a fifth from one run to the next on a shared machine; the SQL statements a
booking runs (counted with one client) do not, and say what a change removed.

Run: ``.venv/bin/python bench/booking.py [--scale 50x5000] [--runs 5]``. Network: a
Radicale on 127.0.0.1, for the desk and the outbox's writes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import api
from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.metrics import Metrics
from daemon.outbox import OutboxWorker
from daemon.refresh import Refresher
from daemon.service import Service
from daemon.signing import Signer
from daemon.store import Store
from daemon.sync import Calendars
from daemon.web.app import build_app
from tests import wsgi
from tests.servers import free_port
from tests.servers.radicale import RadicaleServer

SCALES = (api.Scale(50, 5000),)


def starts(service: Service, count: int) -> list[str]:
    """Free starts past the slots bench's 14 days, each technician-place once, spread
    over starts first (as ``bench.api.free_starts``)."""
    slots = service.slots("standard", api.LAST + timedelta(days=1), api.HORIZON_END)
    most = max((len(s.technicians) for s in slots), default=0)
    found = [s.start.isoformat() for r in range(most) for s in slots if len(s.technicians) > r]
    if len(found) < count:
        raise SystemExit(f"only {len(found)} free places, {count} wanted: ask for fewer")
    return found[:count]


class Run(NamedTuple):
    cpu_ms: float  # process CPU per booking
    statements: float  # SQL statements per booking (one client)
    outbox_cpu_ms: float  # this thread's CPU per booking delivering its outbox (one client)


def one_run(desk: api.Desk, folder: Path, bookings: int, clients: int, outbox: bool) -> Run:
    """ms of process CPU per booking, ``clients`` threads booking ``bookings`` starts, and,
    with one client, the SQL statements per booking (those SQLite runs for the client's
    thread: its reads and the transactions it writes in) and, with ``outbox``, the CPU of
    delivering what the bookings queued."""
    shutil.copy(desk.store_path, folder / "bench.db")
    config = load_config(desk.config_path)
    store = Store(folder / "bench.db")
    try:
        service = Service(config, store, FixedClock(api.NOW), refresher=Refresher())
        signer = Signer(b"bench-signing-key-0123456789")
        app = build_app(service, signer, Metrics())
        queue = [json.dumps(api.booking(s)).encode() for s in starts(service, bookings)]
        lock = threading.Lock()
        failed: list[str] = []
        statements = [0]
        if clients == 1:  # the client is this thread: its connection is the one it uses

            def count(_: str) -> None:
                statements[0] += 1

            store._connection().set_trace_callback(count)

        def post(body: bytes) -> None:
            status, _, answer = wsgi.call(app, wsgi.environ("POST", "/api/v1/bookings", body))
            if status != 201:
                failed.append(f"{status}: {answer[:200]!r}")

        def client() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                post(body)

        cpu = time.process_time()
        if clients == 1:
            client()
        else:
            threads = [threading.Thread(target=client) for _ in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        spent = time.process_time() - cpu
        if failed:
            raise SystemExit(f"{len(failed)} bookings refused, first: {failed[0]}")
        booked = Run(spent * 1000 / bookings, statements[0] / bookings, 0.0)
        if clients > 1 or not outbox:
            return booked
        calendars = Calendars(service)
        worker = OutboxWorker(service, calendars, signer, Metrics())
        cpu = time.thread_time()
        while (report := worker.flush()).delivered:
            if report.errors or report.deferred:
                raise SystemExit(f"the outbox did not deliver: {report}")
        spent = time.thread_time() - cpu
        calendars.close()
        if store.outbox_depth():
            raise SystemExit(f"{store.outbox_depth()} outbox items left undelivered")
        return booked._replace(outbox_cpu_ms=spent * 1000 / bookings)
    finally:
        store.close()


def run_scale(
    scale: api.Scale, runs: int, bookings: int, clients: int, outbox: bool
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-booking-") as tmp,
        RadicaleServer(Path(tmp) / "radicale", password=api.PASSWORD) as radicale,
    ):
        folder = Path(tmp)
        desk = api.prepare(folder, scale, radicale, free_port())
        work = folder / "run"
        work.mkdir()
        found: dict[str, Any] = {"scale": str(scale), "bookings": bookings}
        for threads in (1, clients):
            measured = [one_run(desk, work, bookings, threads, outbox) for _ in range(runs)]
            found[f"cpu_ms_{threads}"] = spread([run.cpu_ms for run in measured])
            if threads == 1:
                found["statements"] = statistics.median(run.statements for run in measured)
                if outbox:
                    found["outbox_cpu_ms"] = spread([run.outbox_cpu_ms for run in measured])
    return found


def spread(figures: list[float]) -> dict[str, float]:
    return {"median": statistics.median(figures), "min": min(figures), "max": max(figures)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=api.parse_scale, action="append",
                        metavar="TECHNICIANSxINTERVALS", help="instead of 50x5000")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (5)")
    parser.add_argument("--bookings", type=int, default=1000, help="bookings per run (1000)")
    parser.add_argument("--clients", type=int, default=8, help="threads of the second figure")
    parser.add_argument("--no-outbox", action="store_true",
                        help="book only: no outbox delivered to Radicale")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args()
    results = [
        run_scale(scale, args.runs, args.bookings, args.clients, not args.no_outbox)
        for scale in args.scale or SCALES
    ]
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    for found in results:
        print(f"{found['scale']}: daemon CPU per booking (WSGI app called directly, "
              f"{found['bookings']} bookings a run, median [min–max]); "
              f"{found['statements']:.2f} SQL statements per booking")  # fmt: skip
        for key, figure in found.items():
            if key.startswith("cpu_ms_"):
                threads = key.removeprefix("cpu_ms_")
                print(f"  {threads:>2} thread(s): {figure['median']:.2f} ms "
                      f"[{figure['min']:.2f}–{figure['max']:.2f}]")  # fmt: skip
        if "outbox_cpu_ms" in found:
            figure = found["outbox_cpu_ms"]
            print(f"  its outbox (calendar write and notice, one thread's CPU): "
                  f"{figure['median']:.2f} ms [{figure['min']:.2f}–{figure['max']:.2f}]")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
