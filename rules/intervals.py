"""Half-open time intervals and a per-technician busy timeline.

Terminology used across the project: an *interval* is ``[start, end)`` between two
time-zone-aware datetimes; *busy time* is a set of intervals during which a technician
cannot take a session. Everything here is pure and works on aware datetimes only: a naive
datetime is a bug (its zone is unknown), so it is refused instead of guessed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone reached code that needs to compare instants."""


def require_aware(value: datetime, what: str) -> datetime:
    """Return ``value`` unchanged, or raise if it has no UTC offset."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{what} must carry a time zone (got naive {value.isoformat()}); "
            "attach one with datetime.replace(tzinfo=ZoneInfo(...))"
        )
    return value


@dataclass(frozen=True, order=True, slots=True)
class Interval:
    """``[start, end)``; empty when ``start == end``. Both ends are aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_aware(self.start, "Interval.start")
        require_aware(self.end, "Interval.end")
        if self.end < self.start:
            raise ValueError(
                f"interval ends before it starts: {self.start.isoformat()} > {self.end.isoformat()}"
            )

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        """True when the two share any instant (touching ends do not overlap)."""
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end

    def widened(self, by: timedelta) -> Interval:
        return Interval(self.start - by, self.end + by)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union. Touching intervals are joined; empty ones dropped."""
    ordered = sorted(i for i in intervals if i.end > i.start)
    merged: list[Interval] = []
    for item in ordered:
        if merged and item.start <= merged[-1].end:
            last = merged[-1]
            if item.end > last.end:
                merged[-1] = Interval(last.start, item.end)
        else:
            merged.append(item)
    return merged


class BusyTimeline:
    """A technician's merged busy intervals, queried by bisection.

    Built once per request from the busy cache, then asked many times (once per
    candidate slot), so construction sorts and merges and each query is O(log n).
    """

    __slots__ = ("_ends", "_intervals", "_starts")

    def __init__(self, intervals: Iterable[Interval] = ()) -> None:
        self._intervals: Sequence[Interval] = merge(intervals)
        self._starts = [i.start for i in self._intervals]
        self._ends = [i.end for i in self._intervals]

    @property
    def intervals(self) -> Sequence[Interval]:
        return self._intervals

    def __len__(self) -> int:
        return len(self._intervals)

    def is_free(self, start: datetime, end: datetime) -> bool:
        """True when no busy interval shares an instant with ``[start, end)``."""
        # The first merged interval whose end is after `start` is the only candidate:
        # merged intervals are disjoint and sorted, so their ends are sorted too.
        index = bisect_left(self._ends, start)
        if index < len(self._ends) and self._ends[index] == start:
            index += 1  # touching at `start` is not an overlap
        return index >= len(self._starts) or self._starts[index] >= end

    def conflicts(self, start: datetime, end: datetime) -> list[Interval]:
        """The busy intervals overlapping ``[start, end)``, in order."""
        found: list[Interval] = []
        index = bisect_left(self._ends, start)
        while index < len(self._intervals) and self._starts[index] < end:
            if self._ends[index] > start:
                found.append(self._intervals[index])
            index += 1
        return found
