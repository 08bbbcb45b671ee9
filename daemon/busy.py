"""An in-memory view of every technician's busy time, rebuilt only when the store changes.

Availability requests are the hot path (a booking page asks for two weeks of slots on
every load), so they must not read thousands of rows from SQLite each time. The store
bumps a version on every write that can change busy time; readers rebuild a technician's
timeline lazily when the version moved.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rules.intervals import BusyTimeline, Interval

Loader = Callable[[str, Interval], Sequence[Interval]]


@dataclass
class _Entry:
    version: int
    window: Interval
    timeline: BusyTimeline


class BusyCache:
    """Per-technician timelines over a window, invalidated by :meth:`invalidate`."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._version = 0
        self._entries: dict[str, _Entry] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._version += 1

    def timeline(self, technician_id: str, window: Interval) -> BusyTimeline:
        with self._lock:
            version = self._version
            entry = self._entries.get(technician_id)
        if entry is not None and entry.version == version and entry.window.contains(window):
            return entry.timeline
        timeline = BusyTimeline(self._loader(technician_id, window))
        with self._lock:
            if self._version == version:
                self._entries[technician_id] = _Entry(version, window, timeline)
        return timeline
