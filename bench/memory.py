"""Benchmark: the daemon's memory, idle and at its peak, on bench/api.py's desk, in a minute.

``bench/api.py`` measures RSS in passing, at the end of a ten-minute run. This measures
only memory, the same way (``VmRSS`` one second after ``expediente run`` is ready,
``VmHWM`` at the end), on the same desk (technicians' calendars on a real Radicale, the
store as syncs leave it), under a shortened version of api.py's load that goes through each
of its kinds of work:

* ``wrk`` with 16 connections on the slots URL (8 s);
* the sync interval set to 2 s by SIGHUP, then 10 s of a technician's calendar app PUTting
  an event every 2 s, slots at 50 requests/s and a booking every second;
* back to the default interval by SIGHUP, then closed-loop bookings from 8 and from 32
  clients (6 s each).

The desk is built once per scale and the daemon started ``--runs`` times, each on a fresh
copy of the store: the figures move by a megabyte or two from one start to the next. With
``--reads``, it also times reading one technician's busy time from the store (the read a
rebuild makes) with the page cache the daemon gives its connections and with SQLite's
default, round robin over the technicians as rebuilds after syncs would go.

Run: ``.venv/bin/python bench/memory.py [--scale 10x2000 ...] [--runs 2] [--reads] [--json]``.
Network: 127.0.0.1 only. ``wrk`` must be installed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

# tests.servers is not an installed package: it is found from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import api
from daemon.store import Store
from daemon.store.base import BULK_CACHE_KIB
from rules.intervals import Interval
from tests.servers import free_port
from tests.servers.radicale import RadicaleServer

SCALES = (api.Scale(10, 2000), api.Scale(50, 5000))
CHANGES_SECONDS = 10.0
BOOKING_SECONDS = 6.0
SATURATION_SECONDS = 8.0
SQLITE_DEFAULT_CACHE = -2000  # KiB, SQLite's own default
READ_ROUNDS = 3


def mb(kib: int) -> float:
    return kib / 1024


def one_run(folder: Path, desk: api.Desk, pristine: Path, port: int) -> dict[str, Any]:
    """Start the daemon on a fresh copy of the store, load it, and read its memory."""
    for suffix in ("-wal", "-shm"):
        Path(f"{desk.store_path}{suffix}").unlink(missing_ok=True)
    shutil.copy(pristine, desk.store_path)
    api.write_config(desk, api.CALM_INTERVAL)
    daemon = api.start_daemon(folder, desk, port)
    found: dict[str, Any] = {}
    try:
        time.sleep(1)  # as bench/api.py
        found["idle_kib"] = daemon.memory_kb("VmRSS")
        found["threads_idle"] = int(daemon.memory_kb("Threads"))
        api.saturate(daemon, SATURATION_SECONDS)
        found["after_saturation_kib"] = daemon.memory_kb("VmRSS")
        later = api.free_starts(port, api.LAST + timedelta(days=1), api.HORIZON_END)
        api.reload(daemon, desk, api.CHANGES_INTERVAL)
        changes = api.CalendarChanges(desk.handles[0], desk.store_path, random.Random(12))
        with changes.running():
            phase = api.open_loop(
                daemon, 50, CHANGES_SECONDS, later[: int(CHANGES_SECONDS * api.BOOKINGS_PER_SECOND)]
            )
        later = later[phase["bookings"]["requests"] :]
        found["after_changes_kib"] = daemon.memory_kb("VmRSS")
        api.reload(daemon, desk, api.CALM_INTERVAL)
        for clients in (8, 32):
            done = api.closed_loop(daemon, clients, BOOKING_SECONDS, later)
            later = later[done["requests"] :]
            found[f"after_bookings_{clients}_kib"] = daemon.memory_kb("VmRSS")
        found["peak_kib"] = daemon.memory_kb("VmHWM")
        found["end_kib"] = daemon.memory_kb("VmRSS")
        found["threads_end"] = int(daemon.memory_kb("Threads"))
    finally:
        daemon.stop()
    return found


def reads(store_path: Path, technicians: int) -> dict[str, float]:
    """Median and p90 ms of reading one technician's busy pairs, per page-cache size."""
    window = Interval(api.NOW - timedelta(days=1), api.NOW + timedelta(days=api.HORIZON_DAYS))
    found: dict[str, float] = {}
    for label, kib in (("daemon", -BULK_CACHE_KIB), ("sqlite_default", SQLITE_DEFAULT_CACHE)):
        with Store(store_path) as store:
            store._connection().execute(f"PRAGMA cache_size = {kib}")
            store._local.bulk = True  # the busy read keeps the size set here
            names = [f"t{n}" for n in range(technicians)]
            for name in names:  # the operating system's cache, warm for both settings
                store.busy_pairs(name, window)
            times = []
            for _ in range(READ_ROUNDS):
                for name in names:
                    started = time.perf_counter()
                    store.busy_pairs(name, window)
                    times.append((time.perf_counter() - started) * 1000)
        times.sort()
        found[f"{label}_p50_ms"] = statistics.median(times)
        found[f"{label}_p90_ms"] = times[int(0.9 * len(times))]
    return found


def run_scale(scale: api.Scale, runs: int, with_reads: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"scale": str(scale), "runs": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp,
        RadicaleServer(Path(tmp) / "radicale", password=api.PASSWORD) as radicale,
    ):
        folder = Path(tmp)
        port = free_port()
        desk = api.prepare(folder, scale, radicale, port)
        pristine = folder / "pristine.db"
        shutil.copy(desk.store_path, pristine)
        if with_reads:
            result["reads"] = reads(pristine, scale.technicians)
        for _ in range(runs):
            result["runs"].append(one_run(folder, desk, pristine, port))
    return result


def table(result: dict[str, Any]) -> str:
    lines = [f"== {result['scale']}: daemon RSS, MB"]
    lines.append(
        f"  {'run':<4}{'idle':>7}{'wrk':>7}{'changes':>9}{'8 bk':>7}{'32 bk':>7}"
        f"{'end':>7}{'peak':>7}  threads idle/end"
    )
    for n, run in enumerate(result["runs"], 1):
        lines.append(
            f"  {n:<4}{mb(run['idle_kib']):>7.1f}{mb(run['after_saturation_kib']):>7.1f}"
            f"{mb(run['after_changes_kib']):>9.1f}{mb(run['after_bookings_8_kib']):>7.1f}"
            f"{mb(run['after_bookings_32_kib']):>7.1f}{mb(run['end_kib']):>7.1f}"
            f"{mb(run['peak_kib']):>7.1f}  {run['threads_idle']}/{run['threads_end']}"
        )
    found = result.get("reads")
    if found:
        lines.append(
            f"  one technician's busy read: {found['daemon_p50_ms']:.1f} ms p50, "
            f"{found['daemon_p90_ms']:.1f} ms p90 with the daemon's {BULK_CACHE_KIB} KiB page "
            f"cache; {found['sqlite_default_p50_ms']:.1f} / {found['sqlite_default_p90_ms']:.1f}"
            " ms with SQLite's default 2,000 KiB"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=api.parse_scale, action="append",
                        metavar="TECHNICIANSxINTERVALS", help="instead of 10x2000 and 50x5000")  # fmt: skip
    parser.add_argument("--runs", type=int, default=2, help="daemon starts per scale (2)")
    parser.add_argument("--reads", action="store_true", help="time the busy read too")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk)")
    results = [run_scale(scale, args.runs, args.reads) for scale in args.scale or SCALES]
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print("\n\n".join(table(r) for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
