"""The one place the time is read. Everything else receives ``now`` from a Clock.

Every read of the wall clock in the daemon goes through :func:`wall_clock`, so the test
suite can forbid it in one place (``tests/conftest.py``): a test that forgets to pass its
fixed clock fails at once instead of on the day real time passes its fixed date.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...


def wall_clock() -> datetime:
    """The real current instant, aware, in UTC: the only read of the system clock."""
    return datetime.now(UTC)


class SystemClock:
    def now(self) -> datetime:
        return wall_clock()


class FixedClock:
    """A clock tests move by hand: time passes only when told to, no sleeping."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, value: datetime) -> None:
        with self._lock:
            self._now = value.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


class ShiftedClock:
    """Real time moved to start at a given instant (``expediente run --clock-start``).

    For end-to-end tests and rehearsals in a subprocess: the daemon believes it is, say,
    Monday 08:55 and time flows normally from there, so a no-show deadline arrives after
    a real minute instead of depending on when the test happens to run.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ShiftedClock needs an aware datetime")
        self._offset = start.astimezone(UTC) - wall_clock()

    def now(self) -> datetime:
        return wall_clock() + self._offset
