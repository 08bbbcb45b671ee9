"""Prometheus metrics: counters kept in memory, gauges read from the store at scrape time.

Gauges that describe stored state (outbox depth, sync age, flagged sessions) are read
from SQLite when scraped rather than kept in memory, so they are right even after a
restart or a change made by the CLI in another process. Each daemon has its own
registry (tests run several in one process). ``expediente_leader`` says whether this
instance runs the background work, and which one does (several share a PostgreSQL store).
"""

from __future__ import annotations

import collections
import os
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.leader import Leadership
from daemon.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "expediente_syncs_total": ("Calendar syncs by outcome (ok, error).", ("calendar", "outcome")),
    "expediente_bookings_total": (
        "Booking requests by outcome (booked, replayed, rejected, slot_taken).",
        ("outcome",),
    ),
    "expediente_noshows_total": ("Sessions rescheduled after a no-show.", ()),
    "expediente_completed_total": ("Sessions completed after a check-in.", ()),
    "expediente_outbox_deliveries_total": (
        "Outbox items delivered or failed, by action.",
        ("action", "outcome"),
    ),
    "expediente_two_way_total": (
        "Technicians' edits to session events acted on (cancelled, moved, flagged).",
        ("kind",),
    ),
    "expediente_http_requests_total": ("HTTP requests by status class.", ("status",)),
    "expediente_leadership_changes_total": (
        "Times this instance took over the background work from another.",
        (),
    ),
}


class _StoreGauges(Collector):
    def __init__(self, store: Callable[[], Store], now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now

    def collect(self) -> Iterator[Metric]:
        store = self._store()
        now = self._now()
        depth = GaugeMetricFamily("expediente_outbox_depth", "Outbox items waiting.")
        depth.add_metric([], store.outbox_depth())
        yield depth
        age = GaugeMetricFamily(
            "expediente_calendar_sync_age_seconds",
            "Seconds since each calendar's last good sync (+Inf: never).",
            labels=["calendar"],
        )
        failures = GaugeMetricFamily(
            "expediente_calendar_consecutive_failures",
            "Failed syncs in a row per calendar.",
            labels=["calendar"],
        )
        for calendar in store.calendars():
            seconds = (
                float("inf")
                if calendar.last_sync_ok_at is None
                else (now - calendar.last_sync_ok_at).total_seconds()
            )
            age.add_metric([calendar.id], seconds)
            failures.add_metric([calendar.id], calendar.consecutive_failures)
        yield age
        yield failures
        flagged = GaugeMetricFamily(
            "expediente_sessions_flagged", "Sessions waiting for the admin's attention."
        )
        flagged.add_metric([], len(store.flagged_sessions()))
        yield flagged


class _LeaderGauges(Collector):
    def __init__(self, leadership: Leadership) -> None:
        self._leadership = leadership

    def collect(self) -> Iterator[Metric]:
        leading = GaugeMetricFamily(
            "expediente_leader",
            "1 while this instance runs the background work (sync, outbox, sweep), else 0.",
            labels=["instance", "leader"],
        )
        leader = self._leadership.leader() or ""
        leading.add_metric(
            [self._leadership.instance, leader], 1.0 if self._leadership.is_leader() else 0.0
        )
        yield leading


_NUMBERED = re.compile(r"[-_]?\d+")


def thread_group(name: str) -> str:
    """What a thread does, from its name without its numbers: ``waitress-3`` → ``waitress``,
    ``outbox-lane_1`` → ``outbox-lane``, ``Thread-7 (watch)`` → ``Thread (watch)``, so the
    label takes a few values however many threads come and go."""
    return _NUMBERED.sub("", name) or name


def proc_cpu_seconds(stat: Path) -> float | None:
    """User and system CPU of a process or thread from its ``/proc`` stat file (None: gone,
    or no ``/proc`` here). The fields after the command name, which may hold spaces and
    parentheses: utime and stime are the 12th and 13th (proc(5))."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _ThreadCpu(Collector):
    """CPU seconds of this process's threads, by what they do: the web requests
    (``waitress``), the outbox's calendar writes (``outbox-lane``), the syncs, the refresher
    that rebuilds busy time, the HTTP loop.

    The daemon is one Python process whose threads take turns on one core's worth of GIL.
    When it is slow under load, this says which part took the time: the bookings
    themselves, or their calendar writes, or the syncs. Read from ``/proc`` when scraped
    (Linux; elsewhere the family is empty). A thread that ended still counts with what it
    had used at the scrape before, so a group's counter never goes down.
    """

    def __init__(self, tasks: Path = Path("/proc/self/task")) -> None:
        self._tasks = tasks
        self._lock = threading.Lock()
        self._alive: dict[threading.Thread, tuple[str, float]] = {}
        self._ended: collections.defaultdict[str, float] = collections.defaultdict(float)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            alive: dict[threading.Thread, tuple[str, float]] = {}
            for thread in threading.enumerate():
                if thread.native_id is None:
                    continue
                seconds = proc_cpu_seconds(self._tasks / str(thread.native_id) / "stat")
                if seconds is not None:
                    alive[thread] = (thread_group(thread.name), seconds)
            for thread, (group, seconds) in self._alive.items():
                if thread not in alive:
                    self._ended[group] += seconds
            self._alive = alive
            totals = collections.defaultdict(float, self._ended)
            for group, seconds in alive.values():
                totals[group] += seconds
        family = CounterMetricFamily(
            "expediente_thread_cpu_seconds",
            "CPU seconds (user and system) of the daemon's threads, by what they do.",
            labels=["threads"],
        )
        for group, seconds in sorted(totals.items()):
            family.add_metric([group], seconds)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._counters = {
            name: Counter(name.removesuffix("_total"), help_, labels, registry=self.registry)
            for name, (help_, labels) in _COUNTERS.items()
        }
        self._gauges: _StoreGauges | None = None
        self.registry.register(_ThreadCpu())

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        counter = self._counters[name]
        (counter.labels(**labels) if labels else counter).inc(amount)

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (for tests and the CLI)."""
        found = self.registry.get_sample_value(name, labels)
        return found or 0.0

    def watch_store(self, store: Callable[[], Store], now: Callable[[], datetime]) -> None:
        if self._gauges is not None:
            self.registry.unregister(self._gauges)
        self._gauges = _StoreGauges(store, now)
        self.registry.register(self._gauges)

    def watch_leadership(self, leadership: Leadership) -> None:
        """Say which instance leads (``expediente_leader``), read at scrape time."""
        self.registry.register(_LeaderGauges(leadership))

    def render(self) -> bytes:
        return generate_latest(self.registry)
