"""Prometheus metrics: counters kept in memory, gauges read from the store at scrape time.

Gauges that describe stored state (outbox depth, sync age, flagged sessions) are read
from SQLite when scraped rather than kept in memory, so they are right even after a
restart or a change made by the CLI in another process. Each daemon has its own
registry (tests run several in one process). ``expediente_leader`` says whether this
instance runs the background work, and which one does (several share a PostgreSQL store).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
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


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._counters = {
            name: Counter(name.removesuffix("_total"), help_, labels, registry=self.registry)
            for name, (help_, labels) in _COUNTERS.items()
        }
        self._gauges: _StoreGauges | None = None

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
