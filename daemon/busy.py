"""An in-memory view of every technician's busy time, rebuilt only when it changed.

Availability requests are the hot path (the booking page asks for two weeks of slots on
every load), so they must not read thousands of rows from SQLite each time. Busy time has
two parts that change at very different rates:

* calendar busy time (thousands of intervals per technician) changes when a sync lands or
  a session's status or time changes: the store's ``busy_version`` (kept by triggers)
  moves then, and only then is it re-read;
* sessions (a handful per technician) change with every booking: the store's
  ``data_version`` moves on any commit, from this process or another (the CLI), and the
  sessions are re-read and laid over the cached calendar timeline.

A stale view can only hide a free slot for a moment, never cause a double booking: the
booking insert re-checks inside its own transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rules.intervals import BusyTimeline, Interval

Loader = Callable[[str, Interval], Sequence[tuple[float, float]]]
# (technician, window, a session to leave out) -> its active sessions' pairs
SessionLoader = Callable[[str, Interval, str | None], Sequence[tuple[float, float]]]


@dataclass
class _Entry:
    version: int
    window: Interval
    timeline: BusyTimeline


class BusyCache:
    def __init__(
        self,
        calendar_loader: Loader,
        session_loader: SessionLoader,
        *,
        busy_version: Callable[[], int],
        data_version: Callable[[], int],
    ) -> None:
        self._calendar_loader = calendar_loader
        self._session_loader = session_loader
        self._busy_version = busy_version
        self._data_version = data_version
        self._lock = threading.Lock()
        self._calendar: dict[str, _Entry] = {}
        self._combined: dict[str, _Entry] = {}

    def timeline(
        self, technician_id: str, window: Interval, without: str | None = None
    ) -> BusyTimeline:
        """``without`` leaves one session out (a rebooking's old time): read fresh, not
        cached, since it serves a single booking."""
        if without is not None:
            calendar = self._calendar_timeline(technician_id, window)
            return calendar.with_pairs(self._session_loader(technician_id, window, without))
        version = self._data_version()
        with self._lock:
            entry = self._combined.get(technician_id)
        if entry is not None and entry.version == version and entry.window.contains(window):
            return entry.timeline
        calendar = self._calendar_timeline(technician_id, window)
        timeline = calendar.with_pairs(self._session_loader(technician_id, window, None))
        with self._lock:
            self._combined[technician_id] = _Entry(version, window, timeline)
        return timeline

    def _calendar_timeline(self, technician_id: str, window: Interval) -> BusyTimeline:
        version = self._busy_version()
        with self._lock:
            entry = self._calendar.get(technician_id)
        if entry is not None and entry.version == version and entry.window.contains(window):
            return entry.timeline
        timeline = BusyTimeline.from_timestamps(self._calendar_loader(technician_id, window))
        with self._lock:
            self._calendar[technician_id] = _Entry(version, window, timeline)
        return timeline
