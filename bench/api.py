"""Benchmark: the running daemon over HTTP, each figure divided by a ceiling from the same run.

The machine is shared and small (2 cores), so absolute figures move from one run to the
next. Every measurement is therefore made twice, seconds apart, with the same load
generator and the same waitress settings: once against ``bench/ceiling.py`` (a WSGI app
that only answers, on ``daemon.web.server.HttpServer`` with its ``LIMITS``) and once
against ``expediente run``. The ratio daemon / ceiling is the figure to compare across
runs and machines; the absolute figures come with it.

For each scale (technicians × busy intervals each) a desk is built:

* busy time: a fixed set of intervals inside opening hours per technician (the same set
  at every scale, so the offered slots stay constant), and the rest outside opening hours
  (evenings, nights, weekends) but inside the window the daemon reads, so more intervals
  mean more rows read and more timeline to build, never fewer slots to compute;
* calendars: each technician's session calendar is a real collection on a real Radicale
  (tests/servers/radicale.py), synced by the daemon. Radicale recomputes its sync token
  from every object on each REPORT (~0.17 ms per object, see bench/sync.py), so 50
  calendars of 5,000 objects synced every 2 s would need Radicale alone to burn more than
  the machine. The bulk of the busy time is therefore placed in the store as a full sync
  leaves it (one calendar object per interval), under the sync token Radicale issued for
  the collection; the daemon's incremental syncs then see exactly what changes on the
  server during the run, as in production;
* history: two years of past sessions per technician (four a weekday, most completed, some
  cancelled or rescheduled), as a desk that has been in use has. They take no time in the
  window, but every read of sessions that only bounds them by ``start_ts < end`` of the
  window walks them all;
* the daemon runs as ``expediente run --clock-start`` on a Sunday at noon, so no slot of the
  14-day query passes its notice during a run.

Phases, for the ceiling and the daemon alike, with the load from ``bench/load.py`` in a
process of its own:

* slots, open loop: ``GET /api/v1/slots`` for 14 days at a fixed rate (50 and 100 req/s),
  latency from the scheduled send time. The requests arrive at random times (a Poisson
  process of that rate), the same times in every phase: evenly spaced ones beat in step
  with the daemon's periodic syncs, and the p99 of identical runs then depended on where
  the syncs happened to fall. For the daemon in turns, six rounds of 7.5 s (one of 3 s
  with ``--quick``) of calm then changes, each kind's percentiles taken over all its
  rounds' requests together (each round's p99 printed beside): a p99 of one phase rests
  on its few slowest requests, and identical phases on a shared machine differ by up to
  2× in it. Beside them, how late the load generator was to send (a generator short of
  CPU is a machine short of CPU) and the CPU steal (/proc/stat: time the hypervisor gave
  other guests):

  - calm: the default sync interval (60 s), nothing changing;
  - changes: the sync interval set to 2 s (the file edited, then SIGHUP, as an admin
    would), a technician's app PUTs an event into their calendar on Radicale every 2 s,
    and a client books a start past the 14 days queried (so the offered slots stay
    constant) every second. The syncs bring both into the store (a booking comes back
    as its session event, written by the outbox), which is what invalidates cached busy
    time. The bench watches the store until each PUT has landed.

  Every calendar syncs at the one interval, so the short one costs work of its own: the
  daemon's CPU with no requests at all, at either interval, is printed with the rest;
* throughput: ``wrk`` (closed loop) on the same URL, calm;
* bookings: ``POST /api/v1/bookings`` from 1, 8 and 32 closed-loop clients, back at the
  default interval and last, since they add sessions. Each request is for a distinct free
  start past the 14 days queried (a start is booked again only once every other start has
  had its turn, so concurrent requests never compete for one technician). Each phase
  starts with the outbox empty and is measured until every session it booked is written
  to its technician's calendar on Radicale ("written after": how long past the phase's
  end the last write landed), so its CPU per booking includes the calendar write;
* from the daemon: CPU per request (``/proc/<pid>/stat`` utime + stime over the phase and
  until the server has worked off what it queued; every thread, the syncs' share too;
  for the bookings also by thread group, from ``expediente_thread_cpu_seconds_total``),
  RSS idle (after start) and peak (``VmHWM`` at the end), and the lines it logged in each
  phase, of which waitress's ``Task queue depth`` warnings (one per request queued while
  its 8 threads are busy).

A request with no answer within ``TIMEOUT`` counts as infinitely slow in the percentiles
(``∞`` in the table). The ceiling's throughput is measured before and after the daemon's
phases; the spread between the two is how noisy the machine was.

Run: ``.venv/bin/python bench/api.py [--quick] [--json] [--breakdown] [--scale 10x2000 ...]``.
``--breakdown`` also takes the changes phase apart: the slots with each of its parts alone.
Network: 127.0.0.1 only. ``wrk`` must be installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import math
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

# tests.servers is not an installed package: it is found from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.base import ObjectChange
from daemon.availability import slots_document
from daemon.calendars import open_calendar
from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.metrics import proc_cpu_seconds
from daemon.service import Service
from daemon.store import Store
from daemon.web.http import Response
from rules.intervals import Interval
from tests.servers import CalDAVServer, CalendarHandle, free_port
from tests.servers.radicale import RadicaleServer

ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2027, 2, 28, 12, 0, tzinfo=TZ)  # a Sunday: no slot is near its notice
FIRST = date(2027, 3, 1)
QUERY_DAYS = 14
LAST = FIRST + timedelta(days=QUERY_DAYS - 1)
SLOTS_PATH = f"/api/v1/slots?type=standard&from={FIRST}&to={LAST}"
HORIZON_DAYS = 90  # room for every booking of a run past the 14 days queried
HORIZON_END = NOW.date() + timedelta(days=HORIZON_DAYS - 1)
RANGE_DAYS = 14  # a slots request for bookable starts asks for this many days at a time
IN_HOURS = 40  # busy intervals inside opening hours per technician, at every scale
HISTORY_DAYS = 730  # past sessions: two years of them before NOW
HISTORY_TIMES = ((9, 0), (10, 30), (14, 0), (16, 0))  # desk time, each weekday
CALM_INTERVAL = 60  # seconds: [sync] interval, the default
CHANGES_INTERVAL = 2  # seconds: short enough that each change lands before the next one
CHANGE_EVERY = 2.0  # seconds between the technician's PUTs
BOOKINGS_PER_SECOND = 1.0  # during the "changes" phases
RATES = (50, 100)  # requests/s offered, open loop
CLIENTS = (1, 8, 32)  # concurrent booking clients, closed loop
CONNECTIONS = 32  # the open-loop generator's keep-alive connections
WRK_CONNECTIONS = 16
# Open-loop requests arrive at random times (bench/load.py), the same times in every phase:
# calm and changes differ only in what the daemon does meanwhile.
ARRIVALS_SEED = 7
TIMEOUT = 10.0  # seconds a client waits for an answer before counting it a failure
GRACE = 5.0  # seconds past an open-loop phase a request still waiting may be sent
SETTLE_LIMIT = 120.0  # seconds a server may take to drain what a phase queued
POLL_S = 0.1  # how often the drain is looked at
QUEUE_WARNING = "Task queue depth"
PASSWORD = "s3cret"  # the throwaway Radicale's
TOKEN = "bench-admin-token-0123456789abcdef"


@dataclass(frozen=True)
class Scale:
    technicians: int
    intervals: int

    def __str__(self) -> str:
        return f"{self.technicians}x{self.intervals}"


@dataclass(frozen=True)
class Timing:
    phase: float  # seconds of each open-loop phase
    saturation: float  # seconds of each wrk run
    bookings: float  # seconds of each closed-loop booking phase
    idle: float  # seconds the idle daemon is watched
    rounds: int  # calm and changes phases of the daemon, in turns
    breakdown: bool = False  # also the changes phase taken apart (--breakdown)


FULL = (
    (Scale(10, 2000), Scale(50, 5000)),
    Timing(phase=7.5, saturation=8, bookings=6, idle=6, rounds=6),
)
QUICK = (
    (Scale(4, 500), Scale(10, 1000)),
    Timing(phase=3, saturation=2, bookings=1.5, idle=1.5, rounds=1),
)

CONFIG_HEAD = """
[desk]
name = "Bench desk"
holidays = {{ country = "BR", subdivision = "SP" }}

[booking]
horizon = "{horizon}d"
rate_limit = 0      # the benchmark's clients book from one address
refusal_limit = 0

[sync]
interval = "{interval}s"
stale_after = "1h"      # the calm interval syncs rarely; no calendar goes stale in a run

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
url = "{url}"
username = "{username}"
password_file = "secrets/caldav"
"""


# --------------------------------------------------------------------------- the desk


def weekday(day: date) -> bool:
    return day.weekday() < 5


def in_hours(rng: random.Random, days: int) -> Interval:
    """A busy interval inside the desk's opening hours (07:30-12:00, 13:00-17:30)."""
    while True:
        day = FIRST + timedelta(days=rng.randrange(days))
        if weekday(day):
            break
    minute = rng.choice([m for m in range(7 * 60 + 30, 17 * 60, 15) if not 11 * 60 < m < 13 * 60])
    start = datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(minutes=minute)
    return Interval(start, start + timedelta(minutes=rng.choice((15, 30, 60))))


def out_of_hours(rng: random.Random, window: Interval) -> Interval:
    """A busy interval inside ``window`` that touches no opening hours: a weekend, or a
    weekday from 17:45 to at most 07:30 the next morning."""
    days = (window.end - window.start).days
    day = (window.start + timedelta(days=rng.randrange(days))).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=TZ)
    length = timedelta(minutes=rng.choice((15, 30, 45, 60)))
    if weekday(day):
        # 17:45 up to 06:30 the next day: 12 h 45 min of possible starts.
        start = midnight + timedelta(hours=17, minutes=45 + 15 * rng.randrange(52))
    else:
        start = midnight + timedelta(minutes=15 * rng.randrange(92))  # ends by 24:00
    return Interval(start, start + length)


@dataclass
class Desk:
    scale: Scale
    config_path: Path
    config_text: str  # with {interval} still to fill
    store_path: Path
    handles: list[CalendarHandle]
    slots_body: bytes  # the daemon's answer to SLOTS_PATH, for the ceiling to send
    offered: int  # starts offered by SLOTS_PATH
    capacity: int  # technician-starts offered by SLOTS_PATH
    stored: int  # busy intervals in the store
    past: int  # past sessions in the store


def prepare(folder: Path, scale: Scale, radicale: CalDAVServer, port: int) -> Desk:
    """The configuration, the Radicale calendars and a store as syncs leave it."""
    (folder / "secrets").mkdir()
    (folder / "secrets" / "caldav").write_text(PASSWORD + "\n")
    (folder / "secrets" / "admin-token").write_text(TOKEN + "\n")
    (folder / "secrets" / "signing-key").write_text("bench-signing-key-0123456789\n")
    handles = [radicale.new_calendar(f"t{n}") for n in range(scale.technicians)]
    text = CONFIG_HEAD.format(horizon=HORIZON_DAYS, interval="{interval}", port=port)
    text += "".join(
        TECHNICIAN.format(n=n, url=h.url, username=radicale.username) for n, h in enumerate(handles)
    )
    path = folder / "expediente.toml"
    path.write_text(text.replace("{interval}", str(CALM_INTERVAL)))
    config = load_config(path)
    store = Store(config.store.path)
    service = Service(config, store, FixedClock(NOW))  # registers technicians and calendars
    window = service.cache_window(NOW)
    stored = 0
    for n, calendar in enumerate(config.calendars):
        # The sync state Radicale issues for the collection, through the adapter itself.
        adapter = open_calendar(calendar, TZ)
        try:
            synced = adapter.sync(None, window)
        finally:
            getattr(adapter, "close", lambda: None)()
        fixed = random.Random(f"in-hours-{n}")  # the same per technician at every scale
        rng = random.Random(f"out-of-hours-{n}-{scale}")
        blocks = [in_hours(fixed, HORIZON_DAYS) for _ in range(IN_HOURS)]
        blocks += [out_of_hours(rng, window) for _ in range(scale.intervals - IN_HOURS)]
        base = urlsplit(handles[n].url).path
        seeded = [
            ObjectChange(href=f"{base}seed-{i}.ics", uid=f"seed-{n}-{i}", etag='"1"', blocks=(b,))
            for i, b in enumerate(blocks)
        ]
        store.apply_sync(
            calendar.id, [*synced.changes, *seeded], full=True, state=synced.state, now=NOW
        )
        stored += len(seeded)
    slots = service.slots("standard", FIRST, LAST)
    body = Response.json(slots_document(config.policy, "standard", slots)).body
    store.close()
    written = [
        (c.technician, c.id, urlsplit(h.url).path)
        for c, h in zip(config.calendars, handles, strict=True)
    ]
    past = past_sessions(Path(config.store.path), written)
    return Desk(
        scale=scale,
        config_path=path,
        config_text=text,
        store_path=Path(config.store.path),
        handles=handles,
        slots_body=body,
        offered=len(slots),
        capacity=sum(len(s.technicians) for s in slots),
        stored=stored,
        past=past,
    )


def past_sessions(path: Path, calendars: list[tuple[str, str, str]]) -> int:
    """Two years of sessions behind NOW for each technician (``calendars``: technician,
    session calendar id, its path), written as the store keeps them once they are over,
    each with the event the outbox wrote for it (one transaction: through the store's API,
    each would be a booking and a transition with their own commits, hours at 50
    technicians)."""
    rows: list[tuple[object, ...]] = []
    for tech, calendar_id, base in calendars:
        day = NOW.date() - timedelta(days=HISTORY_DAYS)
        n = 0
        while day < NOW.date():
            if weekday(day):
                for hour, minute in HISTORY_TIMES:
                    start = int(datetime.combine(day, time_of_day(hour, minute), TZ).timestamp())
                    n += 1
                    status = "completed"
                    ended: int | None = start + 1800
                    checked: int | None = start + 120
                    if n % 10 == 0 or n % 15 == 0:
                        status = "cancelled" if n % 10 == 0 else "rescheduled"
                        ended = checked = None
                    uid = f"past-{tech}-{n}"
                    rows.append((
                        uid, "standard", start, start + 1800, tech, status, "Cliente Ltda",
                        "Maria", "+5511987654321", "remote", start - 86_400, "v1",
                        start - 86_400, start + 1800, checked, ended, uid, calendar_id,
                        f"{base}{uid}.ics",
                    ))  # fmt: skip
            day += timedelta(days=1)
    with closing(sqlite3.connect(path)) as db, db:
        db.executemany(
            "INSERT INTO sessions (id, type, start_ts, end_ts, technician_id, status, company, "
            "responsible_name, phone, remote_tool, rules_accepted_at, rules_version, "
            "created_at, updated_at, checked_in_at, ended_at, calendar_uid, calendar_id, "
            "calendar_href) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def write_config(desk: Desk, interval: int) -> None:
    desk.config_path.write_text(desk.config_text.replace("{interval}", str(interval)))


def booking(start: str) -> dict[str, Any]:
    return {
        "type": "standard", "start": start, "company": "Bench Ltda",
        "responsible_name": "Maria", "phone": "(11) 98765-4321", "email": "m@example.com",
        "remote_tool": "AnyDesk", "remote_id": "", "description": "", "accept_rules": True,
    }  # fmt: skip


def get_json(port: int, path: str) -> Any:
    return json.loads(get_bytes(port, path))


def get_bytes(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {payload[:200]!r}")
        return payload
    finally:
        conn.close()


_THREAD_CPU = re.compile(r'^expediente_thread_cpu_seconds_total\{threads="([^"]*)"\} (\S+)$', re.M)


def thread_cpu(port: int) -> dict[str, float]:
    """The daemon's CPU seconds so far by thread group, from its ``/metrics``."""
    text = get_bytes(port, "/metrics").decode()
    return {group: float(value) for group, value in _THREAD_CPU.findall(text)}


def free_starts(port: int, first: date, last: date) -> list[str]:
    """Every bookable (start, technician) place from ``first`` to ``last`` as a list of
    starts, ordered in rounds: each start once, then the starts with a second technician
    free, and so on, so that requests close in the list are for different starts."""
    slots: list[tuple[str, int]] = []
    day = first
    while day <= last:
        until = min(last, day + timedelta(days=RANGE_DAYS - 1))
        document = get_json(port, f"/api/v1/slots?type=standard&from={day}&to={until}")
        slots += [(s["start"], s["technicians"]) for s in document["slots"]]
        day = until + timedelta(days=1)
    most = max((count for _, count in slots), default=0)
    return [start for r in range(most) for start, count in slots if count > r]


# --------------------------------------------------------------------------- processes


@dataclass
class Window:
    """What a server process did during one phase."""

    seconds: float
    cpu: float  # seconds of CPU, all threads
    log_lines: int
    queue_warnings: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu, 3),
            "log_lines": self.log_lines,
            "queue_warnings": self.queue_warnings,
        }


class Server:
    """A server subprocess under measurement (the ceiling or the daemon), logging to a file."""

    def __init__(self, name: str, command: list[str], log: Path, port: int, ready: str) -> None:
        self.name = name
        self.log = log
        self.port = port
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while ready not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)

    def cpu(self) -> float:
        seconds = proc_cpu_seconds(Path(f"/proc/{self.process.pid}/stat"))
        if seconds is None:
            raise RuntimeError(f"no CPU figure for process {self.process.pid}: is it gone?")
        return seconds

    def memory_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def log_offset(self) -> int:
        return self.log.stat().st_size

    def text_since(self, offset: int) -> str:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def lines_since(self, offset: int) -> tuple[int, int]:
        """Lines logged since ``offset``, and how many of them are queue warnings."""
        lines = self.text_since(offset).splitlines()
        return len(lines), sum(QUEUE_WARNING in line for line in lines)

    def lines_by_logger(self) -> dict[str, int]:
        """Lines logged so far per logger (``<time> <time> LEVEL logger: message``)."""
        counts: dict[str, int] = {}
        for line in self.text_since(0).splitlines():
            parts = line.split(" ", 4)
            name = parts[3].rstrip(":") if len(parts) > 4 and parts[3].endswith(":") else "?"
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def settle(self) -> None:
        """Return once the server has worked off what the last phase queued: a client that
        gave up leaves its request in waitress's queue, and it still runs. Two quick
        answers in a row mean the queue ahead of them was empty."""
        deadline = time.monotonic() + SETTLE_LIMIT
        quick = 0
        while quick < 2 and time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=SETTLE_LIMIT)
            try:
                started = time.perf_counter()
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                quick = quick + 1 if time.perf_counter() - started < 0.25 else 0
            except OSError:
                quick = 0
            finally:
                conn.close()
            time.sleep(0.05)

    @contextmanager
    def watch(self, *, settle: bool = True) -> Iterator[list[Window]]:
        """Measure the body and, with ``settle``, the server's work it left queued: the
        window is in the list once both are done."""
        found: list[Window] = []
        offset, cpu, started = self.log_offset(), self.cpu(), time.perf_counter()
        yield found
        if settle:
            self.settle()
        seconds = time.perf_counter() - started
        lines, warnings = self.lines_since(offset)
        found.append(Window(seconds, self.cpu() - cpu, lines, warnings))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_ceiling(folder: Path, body: bytes) -> Server:
    port = free_port()
    (folder / "ceiling-body.json").write_bytes(body)
    command = [sys.executable, str(ROOT / "bench" / "ceiling.py"), "--port", str(port),
               "--body", str(folder / "ceiling-body.json")]  # fmt: skip
    return Server("ceiling", command, folder / f"ceiling-{port}.log", port, "ready")


def start_daemon(folder: Path, desk: Desk, port: int) -> Server:
    command = [sys.executable, "-m", "daemon.cli", "run", "--config", str(desk.config_path),
               "--clock-start", NOW.isoformat()]  # fmt: skip
    return Server("daemon", command, folder / "daemon.log", port, "ready:")


# --------------------------------------------------------------------------- load


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def generate(plan: dict[str, Any]) -> dict[str, Any]:
    """Run bench/load.py with ``plan``; its report."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py")],
        input=json.dumps(plan).encode(),
        capture_output=True,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def summary(stream: dict[str, Any], elapsed: float, ok: int) -> dict[str, Any]:
    """Counts and latencies of one stream; a request not answered ``ok`` counts as
    infinitely slow (a p99 is "at least this slow", never flattered by a failure)."""
    results = stream["results"]
    found = latencies(stream, ok)
    statuses: dict[str, int] = {}
    for _, _, status in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    answered = sum(1 for _, _, status in results if status == ok)
    return {
        "requests": len(results),
        "ok": answered,
        "statuses": statuses,
        "unsent": stream["unsent"],
        "per_second": answered / elapsed if elapsed else math.nan,
        "p50_ms": percentile(found, 0.50),
        "p99_ms": percentile(found, 0.99),
        "lag_ms": stream["lag_ms"],
        "lag_p99_ms": stream["lag_p99_ms"],
    }


def latencies(stream: dict[str, Any], ok: int) -> list[float]:
    """Each request's latency in ms; infinite for one not answered ``ok`` or not sent."""
    found = [latency if status == ok else math.inf for _, latency, status in stream["results"]]
    return found + [math.inf] * stream["unsent"]


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Open-loop phases run in turns with others, as one: the percentiles of all their
    requests together, counts and CPU summed, each round's p99 kept beside.

    A p99 of one 7.5 s phase at 100 req/s is decided by its 8 slowest requests; on a
    shared machine two identical phases differ by up to 2× in it. Pooled over rounds
    taken in turns with the phases they are compared with, the noise falls on both.
    """
    found: dict[str, Any] = {"rounds": len(runs)}
    for name in runs[0]:
        if not isinstance(runs[0][name], dict) or "latencies_ms" not in runs[0][name]:
            continue
        streams = [run[name] for run in runs]
        every = [value for stream in streams for value in stream.pop("latencies_ms")]
        statuses: dict[str, int] = {}
        for stream in streams:
            for status, count in stream["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        found[name] = {
            "requests": sum(stream["requests"] for stream in streams),
            "ok": sum(stream["ok"] for stream in streams),
            "statuses": statuses,
            "unsent": sum(stream["unsent"] for stream in streams),
            "per_second": statistics.mean(stream["per_second"] for stream in streams),
            "p50_ms": percentile(every, 0.50),
            "p99_ms": percentile(every, 0.99),
            "lag_ms": max(stream["lag_ms"] for stream in streams),
            "lag_p99_ms": max(stream["lag_p99_ms"] for stream in streams),
            "round_p99_ms": [stream["p99_ms"] for stream in streams],
        }
    servers = [run["server"] for run in runs]
    found["server"] = {key: sum(server[key] for server in servers) for key in servers[0]}
    sent = sum(found[name]["requests"] for name in found if isinstance(found[name], dict)
               and "requests" in found[name])  # fmt: skip
    found["cpu_ms_per_request"] = found["server"]["cpu_seconds"] * 1000 / sent if sent else math.nan
    found["rate"] = runs[0]["rate"]
    steals = [steal for run in runs if not math.isnan(steal := run.get("steal", math.nan))]
    found["steal"] = max(steals, default=math.nan)
    return found


def per_request(window: Window, requests: int) -> float:
    return window.cpu * 1000 / requests if requests else math.nan


def open_loop(
    server: Server,
    rate: float,
    duration: float,
    bookings: list[str] | None = None,
    *,
    keep_latencies: bool = False,
) -> dict[str, Any]:
    """Slots at ``rate`` per second, and the bookings given at BOOKINGS_PER_SECOND;
    ``keep_latencies`` for :func:`pooled`, which takes them out again."""
    streams: list[dict[str, Any]] = [
        {"name": "slots", "method": "GET", "path": SLOTS_PATH, "rate": rate}
    ]
    if bookings is not None:
        streams.append(
            {"name": "bookings", "method": "POST", "path": "/api/v1/bookings",
             "rate": BOOKINGS_PER_SECOND, "bodies": [booking(s) for s in bookings]}
        )  # fmt: skip
    plan = {"port": server.port, "mode": "open", "duration": duration, "timeout": TIMEOUT,
            "grace": GRACE, "connections": CONNECTIONS, "streams": streams,
            "arrivals": "random", "seed": ARRIVALS_SEED}  # fmt: skip
    stolen = steal_meter()
    with server.watch() as window:
        report = generate(plan)
    found: dict[str, Any] = {}
    for name, stream in report["streams"].items():
        ok = 201 if name == "bookings" else 200
        found[name] = summary(stream, report["elapsed"], ok)
        if keep_latencies:
            found[name]["latencies_ms"] = latencies(stream, ok)
    sent = sum(stream["requests"] for stream in found.values())
    found.update(
        rate=rate,
        server=window[0].as_dict(),
        cpu_ms_per_request=per_request(window[0], sent),
        steal=stolen(),
    )
    return found


def steal_meter() -> Callable[[], float]:
    """A meter of the machine's CPU time taken by its hypervisor for other guests, as a
    share of all CPU time from now until it is read: what no change to the daemon moves,
    and the likeliest cause when identical phases differ. NaN where /proc/stat has none."""

    def read() -> list[int]:
        with open("/proc/stat", encoding="ascii") as stat:
            return [int(field) for field in stat.readline().split()[1:]]

    try:
        before = read()
    except (OSError, ValueError):
        return lambda: math.nan

    def stolen() -> float:
        try:
            spent = [b - a for a, b in zip(before, read(), strict=False)]
        except (OSError, ValueError):
            return math.nan
        total = math.fsum(spent)
        return spent[7] / total if len(spent) > 7 and total else math.nan

    return stolen


def closed_loop(
    server: Server,
    clients: int,
    duration: float,
    starts: list[str],
    *,
    repeat: bool = False,
    written: bool = False,
) -> dict[str, Any]:
    """``clients`` booking one start after the other, each start of ``starts`` once (or,
    with ``repeat``, over and over).

    ``written`` (the daemon): the phase starts with nothing left in the outbox and its
    window lasts until every session it booked is written to its calendar, so its CPU
    per booking includes that write and no phase pays for the one before it (the outbox
    of a 1-client phase was still writing its 1,200 sessions into the 8-client one)."""
    plan = {"port": server.port, "mode": "closed", "duration": duration, "timeout": TIMEOUT,
            "connections": clients,
            "streams": [{"name": "bookings", "method": "POST", "path": "/api/v1/bookings",
                         "bodies": [booking(s) for s in starts], "repeat": repeat}]}  # fmt: skip
    threads: dict[str, float] = {}
    if written:
        outbox_empty(server.port)
        threads = thread_cpu(server.port)
    with server.watch() as window:
        report = generate(plan)
        written_after = outbox_empty(server.port) if written else math.nan
    found = summary(report["streams"]["bookings"], report["elapsed"], 201)
    found.update(
        clients=clients,
        server=window[0].as_dict(),
        cpu_ms_per_request=per_request(window[0], found["requests"]),
        written_after_s=written_after,
    )
    if written:
        # Which part of the daemon took that CPU: the requests, the calendar writes, ...
        used = {
            group: (seconds - threads.get(group, 0.0)) * 1000 / max(found["requests"], 1)
            for group, seconds in thread_cpu(server.port).items()
        }
        found["cpu_ms_per_request_by_threads"] = dict(
            sorted(used.items(), key=lambda item: item[1], reverse=True)
        )
    return found


def outbox_empty(port: int) -> float:
    """Wait until the daemon's outbox is empty (every booked session written to its
    calendar); the seconds it took, or infinity past ``SETTLE_LIMIT``."""
    started = time.perf_counter()
    while get_json(port, "/healthz")["outbox_depth"]:
        if time.perf_counter() - started > SETTLE_LIMIT:
            return math.inf
        # Not more often: the daemon's calendar writes wait for a gap in the requests
        # (daemon/loop.py, GIVE_WAY_GAP_S), and a poll every 20 ms left none.
        time.sleep(POLL_S)
    return time.perf_counter() - started


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def saturate(server: Server, duration: float) -> dict[str, Any]:
    """wrk, closed loop, on the slots URL: the most the server answers per second."""
    url = f"http://127.0.0.1:{server.port}{SLOTS_PATH}"
    command = ["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{duration:g}s",
               f"--timeout={TIMEOUT:g}s", "--latency", url]  # fmt: skip
    with server.watch() as window:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, out, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    requests = int(number(r"(\d+) requests in"))
    latency = {
        p: float(v) * _UNITS[u]
        for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    }
    return {
        "per_second": number(r"^Requests/sec:\s+([\d.]+)"),
        "requests": requests,
        "non_2xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "timeouts": int(number(r"Socket errors:.*timeout (\d+)")),
        "p50_ms": latency.get("50", math.nan),
        "p99_ms": latency.get("99", math.nan),
        "server": window[0].as_dict(),
        "cpu_ms_per_request": per_request(window[0], requests),
    }


class CalendarChanges:
    """A technician's calendar app: PUTs an event every ``CHANGE_EVERY`` seconds, and
    watches the store until the daemon's sync has brought each one in (its landing lag)."""

    EVENTS = 5  # the app edits these few events over and over

    def __init__(self, handle: CalendarHandle, store_path: Path, rng: random.Random) -> None:
        self.handle = handle
        self.store_path = store_path
        self.rng = rng
        self.version = 0
        self.puts = 0
        self.lags: list[float] = []
        self.missed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def event(self, uid: str) -> str:
        start = in_hours(self.rng, QUERY_DAYS).start.astimezone(ZoneInfo("UTC"))
        end = start + timedelta(minutes=30)
        self.version += 1
        return "\r\n".join([
            "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//technician app//EN",
            "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20270101T000000Z",
            f"DTSTART:{start:%Y%m%dT%H%M%SZ}", f"DTEND:{end:%Y%m%dT%H%M%SZ}",
            f"SEQUENCE:{self.version}", "SUMMARY:Visita a cliente", "END:VEVENT",
            "END:VCALENDAR", "",
        ])  # fmt: skip

    def _landed(self, db: sqlite3.Connection, uid: str, href: str, etag: str) -> bool:
        # By UID, which is indexed: by href alone SQLite scans every stored object, 13 ms
        # at 50 x 5,000, twenty times a second, a quarter of a core taken from the
        # machine the daemon is measured on.
        row = db.execute(
            "SELECT etag FROM calendar_objects WHERE uid = ? AND href = ?", (uid, href)
        ).fetchone()
        return row is not None and row[0] == etag

    def _run(self) -> None:
        db = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True)
        try:
            while not self._stop.is_set():
                tick = time.perf_counter()
                uid = f"change-{self.puts % self.EVENTS}"
                name = f"{uid}.ics"
                etag = self.handle.put_raw(name, self.event(uid))
                self.puts += 1
                href = self.handle.href(name)
                deadline = tick + 5 * CHANGES_INTERVAL
                while not self._landed(db, uid, href, etag):
                    if self._stop.is_set():  # the run ended first: neither landed nor missed
                        break
                    if time.perf_counter() > deadline:
                        self.missed += 1
                        break
                    time.sleep(0.05)
                else:
                    self.lags.append(time.perf_counter() - tick)
                self._stop.wait(max(0.0, tick + CHANGE_EVERY - time.perf_counter()))
        finally:
            db.close()

    @contextmanager
    def running(self) -> Iterator[None]:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="calendar-changes")
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()

    def as_dict(self) -> dict[str, Any]:
        return {
            "puts": self.puts,
            "landed": len(self.lags),
            "not_landed": self.missed,
            "landing_p50_s": percentile(self.lags, 0.5),
            "landing_max_s": max(self.lags, default=math.nan),
        }


# --------------------------------------------------------------------------- one scale


def run_scale(scale: Scale, timing: Timing, log: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {
        "scale": {"technicians": scale.technicians, "intervals": scale.intervals}
    }
    with (
        tempfile.TemporaryDirectory(prefix="bench-api-") as tmp,
        RadicaleServer(Path(tmp) / "radicale", password=PASSWORD) as radicale,
    ):
        folder = Path(tmp)
        port = free_port()
        desk = prepare(folder, scale, radicale, port)
        result["desk"] = {
            "stored_intervals": desk.stored,
            "past_sessions": desk.past,
            "offered_starts": desk.offered,
            "offered_places": desk.capacity,
            "setup_seconds": time.perf_counter() - started,
        }
        result["desk"]["busy_read_ms"] = busy_read_ms(desk)
        log(
            f"{scale}: desk ready, {desk.stored:,} intervals and {desk.past:,} past sessions stored"
        )
        result["ceiling"] = ceiling = measure_ceiling(folder, desk, timing)
        log(f"{scale}: ceiling measured")
        result["daemon"] = measure_daemon(folder, desk, port, timing, log)
        server = start_ceiling(folder, desk.slots_body)
        try:
            ceiling["saturation_after"] = saturate(server, timing.saturation)
        finally:
            server.stop()
    result["seconds"] = time.perf_counter() - started
    return result


def busy_read_ms(desk: Desk, runs: int = 11) -> float:
    """The store's read of one technician's calendar busy time over the daemon's window,
    median of ``runs`` with the file in the page cache: what a calendar change costs the
    refresher before any timeline is built (daemon/store/busy.py, ``busy_pairs``)."""
    config = load_config(desk.config_path)
    store = Store(config.store.path)
    try:
        window = Service(config, store, FixedClock(NOW)).cache_window(NOW)
        technician = config.policy.technicians[0].id
        spent = []
        for _ in range(runs):
            started = time.perf_counter()
            store.busy_pairs(technician, window)
            spent.append((time.perf_counter() - started) * 1000)
    finally:
        store.close()
    return statistics.median(spent)


def measure_ceiling(folder: Path, desk: Desk, timing: Timing) -> dict[str, Any]:
    found: dict[str, Any] = {}
    server = start_ceiling(folder, desk.slots_body)
    try:
        for rate in RATES:
            found[f"slots_{rate}"] = open_loop(server, rate, timing.phase)
        found["saturation_before"] = saturate(server, timing.saturation)
        for clients in CLIENTS:  # the ceiling books nothing: one body will do
            found[f"bookings_{clients}"] = closed_loop(
                server, clients, timing.bookings, [FIRST.isoformat()], repeat=True
            )
    finally:
        server.stop()
    return found


def measure_daemon(
    folder: Path, desk: Desk, port: int, timing: Timing, log: Callable[[str], None]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    write_config(desk, CALM_INTERVAL)
    daemon = start_daemon(folder, desk, port)
    try:
        found["log_lines_startup"] = daemon.lines_since(0)[0]
        time.sleep(1)
        found["rss_idle_kb"] = daemon.memory_kb("VmRSS")
        found["offered_starts"] = len(get_json(port, SLOTS_PATH)["slots"])
        found["idle_calm"] = idle(daemon, timing.idle)
        # Calm and changes in turns, round after round, each pooled over its rounds: the
        # ratio of their p99s is a target, and one phase each is too noisy to judge it.
        calm: dict[int, list[dict[str, Any]]] = {rate: [] for rate in RATES}
        changing: dict[int, list[dict[str, Any]]] = {rate: [] for rate in RATES}
        changes = CalendarChanges(desk.handles[0], desk.store_path, random.Random(12))
        later: list[str] = []
        for turn in range(timing.rounds):
            if turn:
                reload(daemon, desk, CALM_INTERVAL)
            for rate in RATES:
                calm[rate].append(open_loop(daemon, rate, timing.phase, keep_latencies=True))
                log(f"{desk.scale}: daemon, calm, {rate} req/s measured ({turn + 1})")
            if not turn:
                found["saturation"] = saturate(daemon, timing.saturation)
                later = free_starts(port, LAST + timedelta(days=1), HORIZON_END)
            reload(daemon, desk, CHANGES_INTERVAL)
            if not turn:
                found["idle_changes"] = idle(daemon, timing.idle)
            with changes.running():
                for rate in RATES:
                    wanted = int(timing.phase * BOOKINGS_PER_SECOND)
                    run = open_loop(daemon, rate, timing.phase, later[:wanted], keep_latencies=True)
                    changing[rate].append(run)
                    later = later[run["bookings"]["requests"] :]
                    log(f"{desk.scale}: daemon, changes, {rate} req/s measured ({turn + 1})")
        for rate in RATES:
            found[f"slots_{rate}_calm"] = pooled(calm[rate])
            found[f"slots_{rate}_changes"] = pooled(changing[rate])
        found["changes"] = changes.as_dict()
        if timing.breakdown:
            found["breakdown"], later = breakdown(daemon, desk, timing, later, log)

        reload(daemon, desk, CALM_INTERVAL)
        for clients in CLIENTS:
            found[f"bookings_{clients}"] = phase = closed_loop(
                daemon, clients, timing.bookings, later, written=True
            )
            later = later[phase["requests"] :]
        log(f"{desk.scale}: daemon, bookings measured")
        found["rss_peak_kb"] = daemon.memory_kb("VmHWM")
        found["log_lines_total"], found["queue_warnings_total"] = daemon.lines_since(0)
        found["log_lines_by_logger"] = daemon.lines_by_logger()
    finally:
        daemon.stop()
    return found


# What runs beside the slots requests in each part of the breakdown: the sync interval,
# whether the technician's app PUTs, whether a client books.
PARTS = {
    "calm": (CALM_INTERVAL, False, False),
    "syncs": (CHANGES_INTERVAL, False, False),
    "syncs, calendar changes": (CHANGES_INTERVAL, True, False),
    "syncs, bookings": (CHANGES_INTERVAL, False, True),
    "syncs, changes, bookings": (CHANGES_INTERVAL, True, True),
}
BREAKDOWN_RATE = RATES[-1]


def breakdown(
    daemon: Server, desk: Desk, timing: Timing, later: list[str], log: Callable[[str], None]
) -> tuple[dict[str, Any], list[str]]:
    """The changes phase taken apart: the slots at ``BREAKDOWN_RATE`` with each part of
    it alone (the short sync interval, the calendar app's PUTs, the bookings), in turns
    over ``timing.rounds`` rounds, pooled as the main phases are. Which part moves the
    p99 is what the next round of work is for; the bookings it makes come off ``later``."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PARTS}
    changes = CalendarChanges(desk.handles[0], desk.store_path, random.Random(13))
    for turn in range(timing.rounds):
        for name, (interval, puts, books) in PARTS.items():
            reload(daemon, desk, interval)
            wanted = int(timing.phase * BOOKINGS_PER_SECOND) if books else 0
            with changes.running() if puts else nullcontext():
                run = open_loop(
                    daemon,
                    BREAKDOWN_RATE,
                    timing.phase,
                    later[:wanted] if books else None,
                    keep_latencies=True,
                )
            if books:
                later = later[run["bookings"]["requests"] :]
            runs[name].append(run)
            log(f"{desk.scale}: daemon, breakdown, {name} measured ({turn + 1})")
    reload(daemon, desk, CALM_INTERVAL)
    return {name: pooled(phases) for name, phases in runs.items()}, later


def idle(server: Server, seconds: float) -> dict[str, Any]:
    """The daemon with no requests: what its syncs cost."""
    with server.watch(settle=False) as window:
        time.sleep(seconds)
    return window[0].as_dict()


def reload(daemon: Server, desk: Desk, interval: int) -> None:
    """Change the sync interval as an admin would: edit the file, SIGHUP."""
    offset = daemon.log_offset()
    write_config(desk, interval)
    daemon.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while "configuration reloaded" not in daemon.text_since(offset):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the daemon did not reload:\n{daemon.text_since(offset)}")
        time.sleep(0.1)
    daemon.settle()


# --------------------------------------------------------------------------- report


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else math.nan


def num(value: float, width: int, digits: int = 1) -> str:
    """A figure for the table: ``∞`` for a latency some request never had (no answer)."""
    if math.isinf(value):
        return f"{'∞':>{width}}"
    if math.isnan(value):
        return f"{'-':>{width}}"
    return f"{value:>{width},.{digits}f}"


def cpu_share(window: dict[str, Any]) -> str:
    return f"{100 * ratio(window['cpu_seconds'], window['seconds']):.0f} %"


def table(result: dict[str, Any]) -> str:
    ceiling, daemon, desk = result["ceiling"], result["daemon"], result["desk"]
    scale = result["scale"]
    same = daemon["offered_starts"] == desk["offered_starts"]  # computed in-process, and served
    lines = [
        f"== {scale['technicians']} technicians × {scale['intervals']:,} busy intervals: "
        f"{desk['stored_intervals']:,} stored, {desk.get('past_sessions', 0):,} past sessions; "
        f"the 14-day query offers {desk['offered_starts']}"
        f"{'' if same else ' (the running daemon ' + str(daemon['offered_starts']) + ')'} "
        f"starts ({desk['offered_places']:,} technician-places); run {result['seconds']:.0f} s",
        f"   one technician's calendar busy time read from the store (a change's rebuild): "
        f"{num(desk.get('busy_read_ms', math.nan), 0, 1)} ms",
        f"   idle daemon ({scale['technicians']} calendars): {cpu_share(daemon['idle_calm'])} of a "
        f"core with syncs every {CALM_INTERVAL} s, {cpu_share(daemon['idle_changes'])} every "
        f"{CHANGES_INTERVAL} s",
        "",
        f"{'GET /api/v1/slots (14 days), open loop':<42}  p50 ms   p99 ms  ×ceil p50  ×ceil p99  "
        "CPU ms/req  queue warn  log lines  failed",
    ]
    labels = ("ceiling", f"calm, syncs every {CALM_INTERVAL} s",
              f"changes, syncs every {CHANGES_INTERVAL} s")  # fmt: skip
    for rate in RATES:
        base = ceiling[f"slots_{rate}"]["slots"]
        phases = (ceiling[f"slots_{rate}"], daemon[f"slots_{rate}_calm"],
                  daemon[f"slots_{rate}_changes"])  # fmt: skip
        for n, (label, phase) in enumerate(zip(labels, phases, strict=True)):
            slots = phase["slots"]
            head = f"{rate} req/s" if n == 0 else ""
            versus = (
                " " * 22
                if n == 0
                else f"{num(ratio(slots['p50_ms'], base['p50_ms']), 9)}  "
                f"{num(ratio(slots['p99_ms'], base['p99_ms']), 9)}  "
            )
            failed = slots["requests"] - slots["ok"] + slots["unsent"]
            lines.append(
                f"  {head:<10}{label:<32}{num(slots['p50_ms'], 7)}  {num(slots['p99_ms'], 7)}  "
                f"{versus}{num(phase['cpu_ms_per_request'], 10, 2)}  "
                f"{phase['server']['queue_warnings']:>10,}  {phase['server']['log_lines']:>9,}  "
                f"{failed:>6}"
            )
    during = []
    for rate in RATES:
        booked = daemon[f"slots_{rate}_changes"]["bookings"]
        during.append(
            f"at {rate} req/s {booked['ok']}/{booked['requests'] + booked['unsent']} accepted, "
            f"p50 {num(booked['p50_ms'], 0, 0)} ms, p99 {num(booked['p99_ms'], 0, 0)} ms"
        )
    changes = daemon["changes"]
    rounds, ratios, machine = [], [], []
    for rate in RATES:
        calm, changed = daemon[f"slots_{rate}_calm"], daemon[f"slots_{rate}_changes"]
        rounds.append(
            f"{rate} req/s "
            + " ".join(num(p, 0) for p in calm["slots"]["round_p99_ms"])
            + " | "
            + " ".join(num(p, 0) for p in changed["slots"]["round_p99_ms"])
        )
        ratio_p99 = ratio(changed["slots"]["p99_ms"], calm["slots"]["p99_ms"])
        ratios.append(f"{num(ratio_p99, 0, 2)}× at {rate} req/s")
        machine.append(
            f"at {rate} req/s generator late to send p99 {num(calm['slots']['lag_p99_ms'], 0, 2)}"
            f" | {num(changed['slots']['lag_p99_ms'], 0, 2)} ms, CPU steal up to "
            f"{num(100 * calm['steal'], 0)} | {num(100 * changed['steal'], 0)} %"
        )
    lines += [
        f"  daemon phases: {daemon[f'slots_{RATES[0]}_calm']['rounds']} rounds of calm then "
        f"changes, pooled; p99 ms by round (calm | changes): " + "; ".join(rounds),
        "  slots p99 with changes / calm (pooled): " + ", ".join(ratios),
        "  the machine in those phases (calm | changes): " + "; ".join(machine),
        f"  bookings meanwhile, {BOOKINGS_PER_SECOND:g}/s: " + "; ".join(during),
        f"  calendar changes: {changes['puts']} PUTs on Radicale, {changes['landed']} seen in the "
        f"store (after p50 {num(changes['landing_p50_s'], 0)} s, max "
        f"{num(changes['landing_max_s'], 0)} s), {changes['not_landed']} not within "
        f"{5 * CHANGES_INTERVAL} s",
    ]
    if "breakdown" in daemon:
        parts = daemon["breakdown"]
        lines.append(
            f"  the changes phase taken apart, slots at {BREAKDOWN_RATE} req/s, pooled over "
            f"{parts['calm']['rounds']} rounds: p99 ms (× calm), daemon CPU ms/req"
        )
        base = parts["calm"]["slots"]["p99_ms"]
        for name, phase in parts.items():
            lines.append(
                f"    {name:<26}{num(phase['slots']['p99_ms'], 7)}  "
                f"({num(ratio(phase['slots']['p99_ms'], base), 0, 2)}×)  "
                f"{num(phase['cpu_ms_per_request'], 8, 2)}"
            )
    before, after, sat = (
        ceiling["saturation_before"],
        ceiling["saturation_after"],
        daemon["saturation"],
    )
    mean = (before["per_second"] + after["per_second"]) / 2
    lines += [
        "",
        f"{f'GET /api/v1/slots, wrk {WRK_CONNECTIONS} connections (closed loop)':<46}  req/s   "
        "p50 ms   p99 ms  CPU ms/req  queue warn  failed",
    ]
    for label, phase in (("ceiling, before the daemon", before), ("ceiling, after the daemon", after),
                         ("daemon, calm", sat)):  # fmt: skip
        lines.append(
            f"  {label:<44}{num(phase['per_second'], 7, 0)}  {num(phase['p50_ms'], 7)}  "
            f"{num(phase['p99_ms'], 7)}  {num(phase['cpu_ms_per_request'], 10, 2)}  "
            f"{phase['server']['queue_warnings']:>10,}  {phase['non_2xx'] + phase['timeouts']:>6}"
        )
    lines += [
        f"  daemon / ceiling: {ratio(sat['per_second'], mean):.2%} (ceiling: the mean of before and "
        f"after, which differ by {ratio(abs(before['per_second'] - after['per_second']), mean):.0%})",
        "",
        f"{'POST /api/v1/bookings, closed loop':<36}accepted/s   p50 ms   p99 ms  ceiling req/s  "
        "×ceiling  CPU ms/req  not 201  queue warn  written after s",
    ]
    for clients in CLIENTS:
        phase, base = daemon[f"bookings_{clients}"], ceiling[f"bookings_{clients}"]
        label = f"{clients} client" + ("s" if clients > 1 else "")
        lines.append(
            f"  {label:<34}{num(phase['per_second'], 10)}  {num(phase['p50_ms'], 7)}  "
            f"{num(phase['p99_ms'], 7)}  {num(base['per_second'], 13, 0)}  "
            f"{ratio(phase['per_second'], base['per_second']):>8.2%}  "
            f"{num(phase['cpu_ms_per_request'], 10, 2)}  {phase['requests'] - phase['ok']:>7}  "
            f"{phase['server']['queue_warnings']:>10,}  {num(phase['written_after_s'], 15)}"
        )
    for clients in CLIENTS:
        by_threads = daemon[f"bookings_{clients}"].get("cpu_ms_per_request_by_threads", {})
        lines.append(
            f"  daemon CPU ms per booking by threads, {clients} client"
            + ("s" if clients > 1 else "")
            + ": "
            + ", ".join(f"{group} {ms:.2f}" for group, ms in by_threads.items() if ms >= 0.005)
        )
    loggers = ", ".join(
        f"{name} {count:,}" for name, count in daemon["log_lines_by_logger"].items()
    )
    lines += [
        "",
        f"daemon RSS: idle {daemon['rss_idle_kb'] / 1024:.0f} MB, peak {daemon['rss_peak_kb'] / 1024:.0f} MB",
        f"daemon log: {daemon['log_lines_total']:,} lines ({daemon['log_lines_startup']} by the "
        f"time it was ready), of which {daemon['queue_warnings_total']:,} '{QUEUE_WARNING}'; "
        f"by logger: {loggers}",
        f"∞: more than {100 - 99}% (p99) or half (p50) of the requests got no answer within {TIMEOUT:g} s",
    ]
    return "\n".join(lines)


def finite(value: Any) -> Any:
    """``value`` with infinities and NaNs as None: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def parse_scale(text: str) -> Scale:
    technicians, _, intervals = text.partition("x")
    scale = Scale(int(technicians), int(intervals))
    if scale.technicians < 1 or scale.intervals < IN_HOURS:
        raise argparse.ArgumentTypeError(f"need ≥ 1 technician and ≥ {IN_HOURS} intervals")
    return scale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller scales (4x500, 10x1000) and short phases: under 2 minutes")  # fmt: skip
    parser.add_argument("--scale", type=parse_scale, action="append", metavar="TECHNICIANSxINTERVALS",
                        help="instead of the mode's scales (repeatable), e.g. 10x2000")  # fmt: skip
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of tables"
    )
    parser.add_argument("--breakdown", action="store_true",
                        help="also take the changes phase apart (syncs, calendar changes, bookings "
                        "alone): about 4 more minutes per scale")  # fmt: skip
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk)")
    scales, timing = QUICK if args.quick else FULL
    if args.breakdown:
        timing = dataclasses.replace(timing, breakdown=True)
    started = time.perf_counter()

    def progress(text: str) -> None:
        print(f"[{time.perf_counter() - started:4.0f} s] {text}", file=sys.stderr, flush=True)

    results = [run_scale(scale, timing, progress) for scale in args.scale or scales]
    if args.json:
        document = {"quick": args.quick, "timing": timing.__dict__, "scales": results}
        print(json.dumps(finite(document), indent=1))
    else:
        print("\n\n".join(table(r) for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
