"""Bookings per client address per window (``[booking] rate_limit`` / ``rate_window``).

A sliding window of the instants each address was granted a booking. ``now`` is passed
in (the service's clock), so tests move time by hand and nothing here reads the clock.
A slot is reserved before booking and given back when the booking is not accepted:
concurrent submissions from one address cannot slip past the limit between the check
and the write, and a form corrected after an error does not count twice.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import datetime, timedelta


class RateLimiter:
    """``limit`` grants per key in any ``window``; ``limit=None`` grants everything."""

    def __init__(self, limit: int | None, window: timedelta) -> None:
        if window <= timedelta(0):
            raise ValueError("the rate window must be positive")
        self.limit = limit
        self.window = window
        self._granted: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, now: datetime) -> float | None:
        """Reserve one grant at ``now``: ``None`` when granted, else seconds to wait."""
        if self.limit is None:
            return None
        with self._lock:
            self._forget_before(now - self.window)
            stamps = self._granted.setdefault(key, deque())
            if len(stamps) >= self.limit:
                wait = (stamps[0] + self.window - now).total_seconds()
                return float(max(1, math.ceil(wait)))
            stamps.append(now)
            return None

    def release(self, key: str, now: datetime) -> None:
        """Give back a grant reserved at ``now`` (the booking was not accepted)."""
        if self.limit is None:
            return
        with self._lock:
            stamps = self._granted.get(key)
            if stamps is not None and now in stamps:
                stamps.remove(now)
                if not stamps:
                    del self._granted[key]

    def _forget_before(self, cutoff: datetime) -> None:
        """Drop grants older than the window, so memory is bounded by recent addresses."""
        for key in list(self._granted):
            stamps = self._granted[key]
            while stamps and stamps[0] <= cutoff:
                stamps.popleft()
            if not stamps:
                del self._granted[key]
