"""Benchmark: bookings per second and slots p99 with one and three instances on PostgreSQL,
against SQLite on one instance.

Each setup is real processes on this machine: ``expediente run`` once or three times,
the store a SQLite file or a PostgreSQL server from Debian's packages (started as in the
tests, ``tests/servers/postgres.py``), the technicians' calendars on a real Radicale. The
load spreads its requests round-robin over the instances, as a reverse proxy would:

* bookings: ``--clients`` closed-loop clients POST bookings for the starts the desk offers
  over the next weeks (each twice: once per technician) for ``--seconds``; bookings decided
  per second (accepted, or refused as taken: both are a full booking transaction), and
  any other answer counted by its code;
* slots: as many closed-loop clients GET 14 days of slots; requests per second and the
  latency percentiles.

The machine is shared (2 cores): three instances on it compete with each other and with
PostgreSQL, so the figures say what the store and the write lock cost, not what three
machines would do. Compare runs made back to back.

Run: ``.venv/bin/python bench/instances.py [--seconds 10] [--clients 8] [--json]``.
Network: 127.0.0.1 only. Needs Debian's ``postgresql`` package (.ci/run installs it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

# tests.servers is not an installed package: it is found from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.daemon.desk import monday, write_config
from tests.e2e.harness import Process, http
from tests.factories import booking
from tests.servers import free_port
from tests.servers.postgres import PostgresServer
from tests.servers.radicale import RadicaleServer

SETTINGS: dict[str, dict[str, object]] = {
    "booking": {"rate_limit": 0, "refusal_limit": 0, "horizon": "60d"},
    "sync": {"interval": "60s", "stale_after": "30m"},
}


@dataclass
class Figures:
    setup: str
    bookings_per_s: float
    booked: int
    taken: int
    other: dict[str, int]  # other answers to the bookings, by status and error code
    slots_per_s: float
    slots_p50_ms: float
    slots_p99_ms: float


def free_starts(url: str) -> list[datetime]:
    """Every start the desk offers from next week to the 60-day horizon (``SETTINGS``),
    as its slots answer lists them (closed days and hours left out)."""
    first, last = monday(0, weeks=1).date(), (monday(0) + timedelta(days=55)).date()
    status, body = http("GET", url + f"/api/v1/slots?type=standard&from={first}&to={last}")
    if status != 200:
        raise SystemExit(f"the slots answer was {status}: {body}")
    return [datetime.fromisoformat(slot["start"]) for slot in body["slots"]]


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def closed_loop(
    clients: int, seconds: float, request: Callable[[int], int]
) -> list[tuple[int, float]]:
    """``clients`` threads sending ``request(n)`` back to back for ``seconds``; each
    answer's status and latency."""
    results: list[tuple[int, float]] = []
    lock = threading.Lock()
    counter = itertools.count()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < deadline:
            n = next(counter)
            began = time.perf_counter()
            status = request(n)
            with lock:
                results.append((status, time.perf_counter() - began))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@contextmanager
def desk(
    folder: Path, radicale: RadicaleServer, instances: int, dsn: str | None
) -> Iterator[list[Process]]:
    calendars = {"ana": radicale.new_calendar(), "bruno": radicale.new_calendar()}
    started: list[Process] = []
    try:
        for n in range(instances):
            home = folder / f"app{n + 1}"
            port = free_port()
            settings = dict(SETTINGS)
            write_config(home, calendars, port=port, settings=settings)
            if dsn is not None:
                (home / "secrets" / "postgres-dsn").write_text(dsn + "\n")
                settings["store"] = {"kind": "postgresql", "dsn_file": "secrets/postgres-dsn"}
            path = write_config(home, calendars, port=port, settings=settings)
            process = Process(path, port, monday(7, 0), home / "daemon.log")
            process.start()
            started.append(process)
        yield started
    finally:
        for process in started:
            process.stop()


def measure(setup: str, processes: list[Process], clients: int, seconds: float) -> Figures:
    urls = [p.url for p in processes]
    starts = free_starts(urls[0])
    first, last = monday(0, weeks=1).date(), (monday(0, weeks=1) + timedelta(days=13)).date()
    query = f"/api/v1/slots?type=standard&from={first}&to={last}"

    def get_slots(n: int) -> int:
        return http("GET", urls[n % len(urls)] + query)[0]

    codes: dict[str, int] = {}

    def book(n: int) -> int:
        start = starts[(n // 2) % len(starts)]
        status, body = http("POST", urls[n % len(urls)] + "/api/v1/bookings", booking(start))
        if status not in (201, 409):
            error = body.get("error", {}) if isinstance(body, dict) else {}
            codes_of = [v.get("code") for v in error.get("violations") or []] or [error.get("code")]
            key = f"{status} {','.join(str(c) for c in codes_of)}"
            codes[key] = codes.get(key, 0) + 1
        return status

    closed_loop(clients, 1.0, get_slots)  # warm the caches
    slots = closed_loop(clients, seconds, get_slots)
    bookings = closed_loop(clients, seconds, book)
    statuses = [status for status, _ in bookings]
    other = dict(codes)
    latencies = [latency for status, latency in slots if status == 200]
    return Figures(
        setup=setup,
        bookings_per_s=(statuses.count(201) + statuses.count(409)) / seconds,
        booked=statuses.count(201),
        taken=statuses.count(409),
        other=other,
        slots_per_s=len(latencies) / seconds,
        slots_p50_ms=percentile(latencies, 0.50) * 1000,
        slots_p99_ms=percentile(latencies, 0.99) * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="expediente-bench-") as temp:
        root = Path(temp)
        radicale = RadicaleServer(root / "radicale")
        postgres = PostgresServer()
        with radicale:
            try:
                postgres.start()
                setups = (("sqlite, 1 instance", 1, None), ("postgresql, 1 instance", 1, True),
                          ("postgresql, 3 instances", 3, True))  # fmt: skip
                for n, (name, count, on_pg) in enumerate(setups):
                    dsn = postgres.create_database() if on_pg else None
                    with desk(root / f"setup{n}", radicale, count, dsn) as processes:
                        results.append(measure(name, processes, args.clients, args.seconds))
            finally:
                postgres.close()
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
        return
    print(f"{args.clients} clients, {args.seconds:g} s per phase")
    print(f"{'setup':<26}{'bookings/s':>11}{'slots/s':>9}{'p50 ms':>8}{'p99 ms':>8}")
    for r in results:
        print(
            f"{r.setup:<26}{r.bookings_per_s:>11.1f}{r.slots_per_s:>9.1f}"
            f"{r.slots_p50_ms:>8.1f}{r.slots_p99_ms:>8.1f}"
            + (f"  ({r.other} answers neither 201 nor 409)" if r.other else "")
        )


if __name__ == "__main__":
    main()
