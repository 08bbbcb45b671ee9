"""Benchmark: free slots for 20 technicians over 60 days, 2,000 busy intervals each.

A tenth of each technician's busy intervals come from recurring events. Two phases are
timed separately because they run at different moments in the daemon:

* expansion: iCalendar text → intervals (connectors.ical), done once per changed event
  at sync time;
* slots: busy intervals → free slots (rules), done on every availability request. This
  is the number the target (< 50 ms, < 50 MB) is about.

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

from daemon.availability import compute_slots, date_range_window
from rules.model import Policy, SessionType, Technician, TimeRange

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

    now = datetime(2027, 2, 28, 12, 0, tzinfo=TZ)
    timings = []
    slots = []
    for _ in range(args.runs):
        started = time.perf_counter()
        slots = compute_slots(desk, "standard", FIRST, last, now, busy)
        timings.append((time.perf_counter() - started) * 1000)
    tracemalloc.start()
    compute_slots(desk, "standard", FIRST, last, now, busy)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(
        f"technicians: {TECHNICIANS}, days: {DAYS}, busy intervals per technician: {min(counts)}-{max(counts)}"
    )
    print(f"expansion (sync time, once): {expansion_ms:.0f} ms for {sum(counts)} intervals")
    print(
        f"slots: median {statistics.median(timings):.1f} ms, min {min(timings):.1f} ms over {args.runs} runs"
    )
    print(
        f"slots: peak traced memory {peak / 2**20:.1f} MB; process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    print(f"free slots found: {len(slots)}")


if __name__ == "__main__":
    main()
