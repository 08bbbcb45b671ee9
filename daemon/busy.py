"""An in-memory view of every technician's busy time, rebuilt only when the store changed.

Availability requests are the hot path (the booking page asks for two weeks of slots on
every load), so they must not read thousands of rows from SQLite each time. The store's
``data_version`` moves whenever anything commits, from this process or another (the CLI),
and the cache reloads then. A stale view can only hide a free slot for a moment, never
cause a double booking: the booking insert re-checks inside its own transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rules.intervals import BusyTimeline, Interval

Loader = Callable[[str, Interval], Sequence[tuple[float, float]]]


@dataclass
class _Entry:
    version: int
    window: Interval
    timeline: BusyTimeline


class BusyCache:
    def __init__(self, loader: Loader, version: Callable[[], int]) -> None:
        self._loader = loader
        self._version = version
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def timeline(self, technician_id: str, window: Interval) -> BusyTimeline:
        version = self._version()
        with self._lock:
            entry = self._entries.get(technician_id)
        if entry is not None and entry.version == version and entry.window.contains(window):
            return entry.timeline
        timeline = BusyTimeline.from_timestamps(self._loader(technician_id, window))
        with self._lock:
            self._entries[technician_id] = _Entry(version, window, timeline)
        return timeline
