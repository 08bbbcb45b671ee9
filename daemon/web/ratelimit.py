"""Booking attempts per client per window (``[booking] rate_limit``, ``refusal_limit``,
``rate_window``).

Two sliding windows of instants per client: bookings granted, and attempts refused.
Refusals have a budget of their own so that a person correcting a form spends no booking,
and a bound because each refusal writes an audit entry: without one, a single client could
grow the store as fast as it can send requests.

``now`` is passed in (the service's clock), so tests move time by hand and nothing here
reads the clock. A booking is reserved before booking and given back when it is not
accepted: concurrent submissions from one client cannot slip past the limit between the
check and the write. A client is its address; an IPv6 client is its /64, the block one
subscriber gets, so walking through its own addresses does not reset the count.

Several instances on one PostgreSQL store share the counts (:class:`SharedRateLimiter`):
a client spreading its attempts over the instances behind a proxy is counted once.
"""

from __future__ import annotations

import bisect
import ipaddress
import math
import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable


def client_key(address: str) -> str:
    """The key a client address is counted under: IPv6 by its /64, others as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class RateLimiter:
    """``limit`` bookings and ``refusal_limit`` refusals per client in any ``window``;
    ``None`` for either does not limit it."""

    def __init__(
        self, limit: int | None, window: timedelta, refusal_limit: int | None = None
    ) -> None:
        if window <= timedelta(0):
            raise ValueError("the rate window must be positive")
        self.limit = limit
        self.refusal_limit = refusal_limit
        self.window = window
        self._granted: dict[str, deque[datetime]] = {}
        self._refused: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def acquire(self, address: str, now: datetime) -> float | None:
        """Reserve one booking at ``now``: ``None`` when granted, else seconds to wait
        (for a booking, or for a refusal, to leave the window)."""
        if self.limit is None and self.refusal_limit is None:
            return None
        key = client_key(address)
        with self._lock:
            self._forget_before(now - self.window)
            waits = [
                self._wait(self._granted.get(key), self.limit, now),
                self._wait(self._refused.get(key), self.refusal_limit, now),
            ]
            wait = max((w for w in waits if w is not None), default=None)
            if wait is not None:
                return wait
            if self.limit is not None:
                self._granted.setdefault(key, deque()).append(now)
            return None

    def release(self, address: str, now: datetime, *, refused: bool = False) -> None:
        """Give back the booking reserved at ``now`` (it was not accepted); ``refused``
        (the booking was refused, and audited) counts it against the refusal budget."""
        key = client_key(address)
        with self._lock:
            stamps = self._granted.get(key)
            if stamps is not None and now in stamps:
                stamps.remove(now)
                if not stamps:
                    del self._granted[key]
            if refused and self.refusal_limit is not None:
                # In order: requests of one client can finish out of order.
                bisect.insort(self._refused.setdefault(key, deque()), now)

    def _wait(
        self, stamps: deque[datetime] | None, limit: int | None, now: datetime
    ) -> float | None:
        if limit is None or stamps is None or len(stamps) < limit:
            return None
        return float(max(1, math.ceil((stamps[0] + self.window - now).total_seconds())))

    def _forget_before(self, cutoff: datetime) -> None:
        """Drop instants older than the window, so memory is bounded by recent clients."""
        for table in (self._granted, self._refused):
            for key in list(table):
                stamps = table[key]
                while stamps and stamps[0] <= cutoff:
                    stamps.popleft()
                if not stamps:
                    del table[key]


@runtime_checkable
class RateBook(Protocol):
    """A store that keeps the windows for every instance (the PostgreSQL store)."""

    def rate_acquire(
        self,
        client: str,
        now: datetime,
        window: timedelta,
        limit: int | None,
        refusal_limit: int | None,
    ) -> float | None: ...

    def rate_release(self, client: str, now: datetime, *, refused: bool) -> None: ...


class SharedRateLimiter(RateLimiter):
    """:class:`RateLimiter`'s windows kept in the store, so every instance counts them."""

    def __init__(
        self,
        book: RateBook,
        limit: int | None,
        window: timedelta,
        refusal_limit: int | None = None,
    ) -> None:
        super().__init__(limit, window, refusal_limit)
        self.book = book

    def acquire(self, address: str, now: datetime) -> float | None:
        if self.limit is None and self.refusal_limit is None:
            return None
        return self.book.rate_acquire(
            client_key(address), now, self.window, self.limit, self.refusal_limit
        )

    def release(self, address: str, now: datetime, *, refused: bool = False) -> None:
        if self.limit is None and self.refusal_limit is None:
            return
        self.book.rate_release(
            client_key(address), now, refused=refused and self.refusal_limit is not None
        )


def limiter_for(
    store: object, limit: int | None, window: timedelta, refusal_limit: int | None
) -> RateLimiter:
    """The limiter for ``store``: shared through it when it can keep the windows (several
    instances on PostgreSQL), in memory otherwise (one instance on SQLite)."""
    if isinstance(store, RateBook):
        return SharedRateLimiter(store, limit, window, refusal_limit)
    return RateLimiter(limit, window, refusal_limit)
