"""Benchmark: free slots for 20 technicians over 60 days, 2,000 busy intervals each.

A tenth of each technician's busy intervals come from recurring events. Three costs are
timed apart because they are paid at different moments in the daemon:

* expansion: iCalendar text → intervals (connectors.ical), once per changed event at
  sync time;
* cold: from the store on disk to slots, what the first request pays after a sync has
  landed (the store's ``busy_version`` moved, so every technician's cached timeline is
  stale). Measured through the daemon's own parts, ``Service.slots`` over a real
  ``Store`` file: the SQLite read of every technician's busy time in the daemon's window,
  the timelines built from it, the sessions laid over them, then the slots. This is
  the number the target (< 50 ms, < 50 MB) is about;
* warm: ``Service.slots`` again with nothing changed, the timelines cached: what a
  request usually pays.

The cold figure is also split into its parts, each timed on its own: the SQLite read
(``Store.busy_pairs`` for every technician), the timeline build
(``BusyTimeline.from_timestamps``) and the slot query on built timelines.

Run: ``.venv/bin/python bench/slots.py [--runs N] [--quick]``. Prints medians of the
runs and peak memory; a temporary folder holds the store; no network.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.base import ObjectChange
from connectors.ical import busy_from_ics
from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.service import Service
from daemon.store import Store
from rules.intervals import BusyTimeline
from rules.slots import Slot, free_slots

TZ = ZoneInfo("America/Sao_Paulo")
TECHNICIANS = 20
DAYS = 60
SINGLE = 1800
RECURRING_EVENTS = 25  # weekly, 8 occurrences each: 200 intervals, a tenth
FIRST = date(2027, 3, 1)
NOW = datetime(2027, 2, 28, 12, 0, tzinfo=TZ)
TARGET_MS = 50  # cold slots
TARGET_MB = 50  # peak memory of a cold computation

# Opening hours, session types and grid are the defaults (the seed policy); no holidays,
# so every weekday of the 60 days is open.
CONFIG = """
[desk]
holidays = false

[booking]
horizon = "{horizon}d"

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
"""


def calendar_text(rng: random.Random) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN"]
    for n in range(SINGLE):
        day = FIRST + timedelta(days=rng.randrange(DAYS))
        start = datetime(
            day.year, day.month, day.day, rng.randrange(6, 18), rng.choice((0, 15, 30, 45))
        )
        length = timedelta(minutes=rng.choice((15, 30, 45, 60, 90)))
        lines += _event(f"single-{n}", start, start + length)
    for n in range(RECURRING_EVENTS):
        day = FIRST + timedelta(days=rng.randrange(7))
        start = datetime(day.year, day.month, day.day, rng.randrange(7, 17), 0)
        lines += _event(
            f"weekly-{n}", start, start + timedelta(minutes=60), "RRULE:FREQ=WEEKLY;COUNT=8"
        )
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def _event(uid: str, start: datetime, end: datetime, *extra: str) -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20270101T000000Z",
        f"DTSTART;TZID=America/Sao_Paulo:{start:%Y%m%dT%H%M%S}",
        f"DTEND;TZID=America/Sao_Paulo:{end:%Y%m%dT%H%M%S}",
        "SUMMARY:private",
        *extra,
        "END:VEVENT",
    ]


def timed(runs: int, setup: Callable[[], object], work: Callable[[], object]) -> list[float]:
    """Milliseconds of ``work`` in each of ``runs`` runs, ``setup`` (untimed) before each."""
    found = []
    for _ in range(runs):
        setup()
        started = time.perf_counter()
        work()
        found.append((time.perf_counter() - started) * 1000)
    return found


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 runs instead of --runs")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    rng = random.Random(20261125)
    last = FIRST + timedelta(days=DAYS - 1)

    with tempfile.TemporaryDirectory(prefix="bench-slots-") as tmp:
        path = Path(tmp) / "expediente.toml"
        path.write_text(
            CONFIG.format(horizon=DAYS + 1)
            + "".join(TECHNICIAN.format(n=n) for n in range(TECHNICIANS))
        )
        config = load_config(path, check_secrets=False)
        store = Store(config.store.path)
        service = Service(config, store, FixedClock(NOW))
        window = service.cache_window(NOW)
        calendars = {c.technician: c.id for c in config.calendars}

        texts = {t.id: calendar_text(rng) for t in config.policy.technicians}
        started = time.perf_counter()
        expanded = {tech: busy_from_ics(text, window, TZ) for tech, text in texts.items()}
        expansion_ms = (time.perf_counter() - started) * 1000
        counts = [len(result.intervals) for result in expanded.values()]

        # As a full sync leaves the store: one object per event, its occurrences as blocks.
        started = time.perf_counter()
        for tech, result in expanded.items():
            changes = [
                ObjectChange(href=f"/{tech}/{uid}.ics", uid=uid, etag='"1"', blocks=tuple(blocks))
                for uid, blocks in result.by_uid.items()
            ]
            store.apply_sync(calendars[tech], changes, full=True, state=None, now=NOW)
        fill_ms = (time.perf_counter() - started) * 1000
        size = Path(config.store.path).stat().st_size

        edits = 0

        def sync_lands() -> None:
            """One event edited on t0's calendar: the store's busy_version moves."""
            nonlocal edits
            edits += 1
            block = expanded["t0"].intervals[0]
            edit = ObjectChange(href="/t0/edited.ics", uid="edited", etag=f'"{edits}"',
                                blocks=(block,))  # fmt: skip
            store.apply_sync(calendars["t0"], [edit], full=False, state=None, now=NOW)

        def query() -> list[Slot]:
            return service.slots("standard", FIRST, last)

        cold_ms = timed(runs, sync_lands, query)
        warm_ms = timed(runs, lambda: None, query)
        slots = query()

        pairs: dict[str, list[tuple[int, int]]] = {}
        technicians = [t.id for t in config.policy.technicians]

        def read() -> None:
            pairs.update({tech: store.busy_pairs(tech, window) for tech in technicians})

        read_ms = timed(runs, lambda: None, read)
        build_ms = timed(
            runs, lambda: None, lambda: [BusyTimeline.from_timestamps(p) for p in pairs.values()]
        )
        built = {tech: BusyTimeline.from_timestamps(p) for tech, p in pairs.items()}
        query_ms = timed(
            runs,
            lambda: None,
            lambda: free_slots(config.policy, "standard", FIRST, last, NOW, built),
        )

        sync_lands()
        tracemalloc.start()
        query()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        store.close()

    print(
        f"technicians: {TECHNICIANS}, days: {DAYS}, busy intervals each: {min(counts)}-{max(counts)}"
    )
    print(
        f"expansion (sync time, once per changed event): {expansion_ms:.0f} ms for {sum(counts)} intervals"
    )
    print(
        f"store on disk: {sum(counts)} intervals written in {fill_ms:.0f} ms (one full sync per "
        f"calendar), {size / 2**20:.1f} MB"
    )
    cold = statistics.median(cold_ms)
    print(
        f"slots, cold (a sync landed: store on disk → slots): median {cold:.1f} ms over {runs} "
        f"runs  (target < {TARGET_MS} ms: {'PASS' if cold < TARGET_MS else 'FAIL'})"
    )
    print(f"  of which, each timed alone: SQLite read {median(read_ms)}, timelines built "
          f"{median(build_ms)}, slot query {median(query_ms)}")  # fmt: skip
    print(f"slots, warm (nothing changed, timelines cached): median {median(warm_ms)}")
    print(
        f"slots, cold, peak traced memory: {peak / 2**20:.1f} MB  (target < {TARGET_MB} MB: "
        f"{'PASS' if peak < TARGET_MB * 2**20 else 'FAIL'}); process max RSS: {rss:.0f} MB"
    )
    print(f"free slots found: {len(slots)}")


if __name__ == "__main__":
    main()
