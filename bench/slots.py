"""Benchmark: free slots for 20 technicians over 60 days, 2,000 busy intervals each.

A tenth of each technician's busy intervals come from recurring events. Two phases are
timed separately because they run at different moments in the daemon:

* expansion: iCalendar text → intervals (connectors.ical), done once per changed event
  at sync time;
* slots: busy intervals as the store keeps them (epoch seconds) → per-technician
  timelines → free slots (rules). This is the number the target (< 50 ms, < 50 MB) is
  about. The daemon keeps timelines cached between changes, so the query alone (printed
  too) is what a request usually pays.

Run: ``.venv/bin/python bench/slots.py [--runs N]``. Prints wall-clock medians and peak
memory; no network, no files.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import time
import tracemalloc
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.ical import busy_from_ics
from daemon.availability import date_range_window
from rules.intervals import BusyTimeline
from rules.model import Policy, SessionType, Technician, TimeRange
from rules.slots import Slot, free_slots

TZ = ZoneInfo("America/Sao_Paulo")
TECHNICIANS = 20
DAYS = 60
SINGLE = 1800
RECURRING_EVENTS = 25  # weekly, 8 occurrences each: 200 intervals, a tenth
FIRST = date(2027, 3, 1)


def policy() -> Policy:
    day = (TimeRange.parse("07:30-12:00"), TimeRange.parse("13:00-17:30"))
    return Policy(
        timezone=TZ,
        weekly={d: day for d in range(5)},
        session_types={
            "standard": SessionType(
                "standard", "Atendimento remoto", timedelta(minutes=30), timedelta(minutes=15)
            )
        },
        technicians=tuple(Technician(f"t{n}", f"Tech {n}") for n in range(TECHNICIANS)),
        horizon=timedelta(days=DAYS + 1),
    )


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(20261125)
    desk = policy()
    last = FIRST + timedelta(days=DAYS - 1)
    window = date_range_window(desk, FIRST, last)
    texts = {t.id: calendar_text(rng) for t in desk.technicians}

    started = time.perf_counter()
    busy = {tech: busy_from_ics(text, window, TZ).intervals for tech, text in texts.items()}
    expansion_ms = (time.perf_counter() - started) * 1000
    counts = [len(v) for v in busy.values()]

    # As the store returns them: epoch seconds, ordered by start (an index scan).
    rows = {
        tech: sorted((i.start.timestamp(), i.end.timestamp()) for i in intervals)
        for tech, intervals in busy.items()
    }
    now = datetime(2027, 2, 28, 12, 0, tzinfo=TZ)

    def whole() -> list[Slot]:
        timelines = {tech: BusyTimeline.from_timestamps(pairs) for tech, pairs in rows.items()}
        return free_slots(desk, "standard", FIRST, last, now, timelines)

    cached = {tech: BusyTimeline.from_timestamps(pairs) for tech, pairs in rows.items()}
    whole_ms, query_ms = [], []
    slots: list[Slot] = []
    for _ in range(args.runs):
        started = time.perf_counter()
        slots = whole()
        whole_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        free_slots(desk, "standard", FIRST, last, now, cached)
        query_ms.append((time.perf_counter() - started) * 1000)
    tracemalloc.start()
    whole()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"technicians: {TECHNICIANS}, days: {DAYS}, busy intervals each: {min(counts)}-{max(counts)}"
    )
    print(
        f"expansion (sync time, once per changed event): {expansion_ms:.0f} ms for {sum(counts)} intervals"
    )
    print(
        f"slots, whole (timelines + slots): median {statistics.median(whole_ms):.1f} ms over {args.runs} runs"
    )
    print(f"slots, query on cached timelines: median {statistics.median(query_ms):.1f} ms")
    print(f"slots, peak traced memory: {peak / 2**20:.1f} MB; process max RSS: {rss:.0f} MB")
    print(f"free slots found: {len(slots)}")


if __name__ == "__main__":
    main()
