"""Half-open time intervals and a per-technician busy timeline.

Terminology used across the project: an *interval* is ``[start, end)`` between two
time-zone-aware datetimes; *busy time* is a set of intervals during which a technician
cannot take a session. Everything here is pure and works on aware datetimes only: a naive
datetime is a bug (its zone is unknown), so it is refused instead of guessed.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, compress
from operator import gt, lt


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


def later(start: datetime, by: timedelta) -> datetime:
    """``start + by`` in elapsed time, in ``start``'s zone.

    Python adds a timedelta to the wall clock of a ``ZoneInfo`` datetime: 01:30 + 30 min on
    the night clocks go back is 02:00 local, 90 real minutes later. Going through UTC
    keeps the length; the result is shown in the zone again, with the offset right.
    """
    require_aware(start, "start")
    return (start.astimezone(UTC) + by).astimezone(start.tzinfo)


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
        """True when the two share any instant (touching ends do not; empty ones never do)."""
        return (
            self.start < other.end
            and other.start < self.end
            and self.start < self.end
            and other.start < other.end
        )

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end

    def widened(self, by: timedelta) -> Interval:
        return Interval(self.start - by, self.end + by)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union. Touching intervals are joined; empty ones dropped."""
    return [Interval(start, end) for start, end in _merged_pairs(intervals)]


def _merged_pairs(intervals: Iterable[Interval]) -> list[tuple[datetime, datetime]]:
    # Sorting (start, end) tuples compares in C; sorting the dataclasses would call a
    # Python __lt__ per comparison, which dominated building a 2,000-interval timeline.
    pairs = sorted((i.start, i.end) for i in intervals if i.end > i.start)
    merged: list[tuple[datetime, datetime]] = []
    for start, end in pairs:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


MASKS_KEPT = 16  # query sets each timeline keeps the answer to (BusyTimeline.free_mask_kept)


class BusyTimeline:
    """A technician's merged busy intervals, queried by bisection.

    Built once from the busy cache, then asked many times (once per candidate slot), so
    construction sorts and merges and each query is O(log n). Ends are kept as POSIX
    timestamps: comparing aware datetimes of different zones calls ``utcoffset()`` on
    every comparison, which dominated slot listing.
    """

    __slots__ = ("_ends", "_masks", "_starts")

    def __init__(self, intervals: Iterable[Interval] = ()) -> None:
        self._merge((i.start.timestamp(), i.end.timestamp()) for i in intervals)

    @classmethod
    def from_timestamps(cls, pairs: Iterable[tuple[float, float]]) -> BusyTimeline:
        """Build from ``(start, end)`` POSIX timestamps, as the store keeps them: no
        datetime is made, which is most of the cost for thousands of intervals."""
        timeline = cls.__new__(cls)
        timeline._merge(pairs)
        return timeline

    def _merge(self, raw: Iterable[tuple[float, float]]) -> None:
        self._masks: dict[bytes, bytes] = {}
        # Built from C-level iterators (sorted, accumulate, map, compress) rather than a
        # Python loop: a cold start builds 20 technicians x 2,000 intervals at once.
        pairs = sorted(raw)
        starts_all = [p[0] for p in pairs]
        ends_all = [p[1] for p in pairs]
        nonempty = list(map(lt, starts_all, ends_all))
        if not all(nonempty):
            starts_all = list(compress(starts_all, nonempty))
            ends_all = list(compress(ends_all, nonempty))
        if not starts_all:
            self._starts: array[float] = array("d")
            self._ends: array[float] = array("d")
            return
        reach = list(accumulate(ends_all, max))  # the furthest end seen so far
        # A new merged interval begins where a start lies beyond everything before it.
        breaks = list(map(gt, starts_all[1:], reach[:-1]))
        # Kept as arrays of doubles, 16 bytes an interval instead of 64 in lists of
        # Python numbers: the daemon holds two timelines per technician (calendar time, and
        # calendar time with sessions) for 50 technicians x 5,000 intervals and more.
        self._starts = array("d", [starts_all[0], *compress(starts_all[1:], breaks)])
        self._ends = array("d", [*compress(reach[:-1], breaks), reach[-1]])

    def with_pairs(self, pairs: Sequence[tuple[float, float]]) -> BusyTimeline:
        """This timeline plus a few more busy pairs (sessions on top of calendar time);
        ``self`` is unchanged.

        Done after every booking for its technician, so it costs O(k log n) searches and
        C-level copies of the untouched runs rather than a sort of all n intervals: the
        k pairs are merged among themselves, then each is laid into place by bisection,
        absorbing the intervals it overlaps or touches (as :meth:`_merge` would).
        """
        if not pairs:
            return self
        extra = BusyTimeline.from_timestamps(pairs)
        starts, ends = self._starts, self._ends
        out_starts: array[float] = array("d")
        out_ends: array[float] = array("d")
        done = 0  # intervals of self before this index are in the output
        for start, end in zip(extra._starts, extra._ends, strict=True):
            first = bisect_left(ends, start, done)  # the first that reaches `start`
            out_starts.extend(starts[done:first])
            out_ends.extend(ends[done:first])
            after = bisect_right(starts, end, first)  # the first beginning past `end`
            if after > first:
                start = min(start, starts[first])
                end = max(end, ends[after - 1])
            if out_ends and out_ends[-1] >= start:
                out_ends[-1] = max(out_ends[-1], end)
            else:
                out_starts.append(start)
                out_ends.append(end)
            done = after
        out_starts.extend(starts[done:])
        out_ends.extend(ends[done:])
        timeline = BusyTimeline.__new__(BusyTimeline)
        timeline._starts, timeline._ends = out_starts, out_ends
        timeline._masks = {}
        return timeline

    def same_as(self, other: BusyTimeline) -> bool:
        """The same busy time (compared at C speed, no interval made)."""
        return self._starts == other._starts and self._ends == other._ends

    @property
    def intervals(self) -> Sequence[Interval]:
        return [
            Interval(_instant(s), _instant(e))
            for s, e in zip(self._starts, self._ends, strict=True)
        ]

    def __len__(self) -> int:
        return len(self._starts)

    def is_free(self, start: datetime, end: datetime) -> bool:
        """True when no busy interval shares an instant with ``[start, end)``."""
        return self.is_free_at(start.timestamp(), end.timestamp())

    def is_free_at(self, start: float, end: float) -> bool:
        """:meth:`is_free` on POSIX timestamps, for callers that convert once per slot."""
        # The first merged interval ending after `start` is the only candidate: merged
        # intervals are disjoint and sorted, so their ends are sorted too.
        index = bisect_right(self._ends, start)  # an interval ending at `start` only touches
        return index >= len(self._starts) or self._starts[index] >= end

    def free_mask(self, queries: Sequence[tuple[float, float]]) -> list[bool]:
        """:meth:`is_free_at` for many ``(start, end)`` queries sorted by start.

        One merge-like pass instead of a bisection per query: slot listing asks every
        technician about every candidate of the range, already in order.
        """
        starts, ends = self._starts, self._ends
        count = len(ends)
        index = 0
        mask = []
        for start, end in queries:
            # Queries come sorted, so each search starts where the last one stopped.
            index = bisect_right(ends, start, index)
            mask.append(index >= count or starts[index] >= end)
        return mask

    def free_mask_kept(self, queries: Sequence[tuple[float, float]], key: bytes) -> bytes:
        """:meth:`free_mask` as bytes (1 free, 0 busy), kept on the timeline for ``key``,
        which names ``queries`` exactly (see :func:`query_key`).

        After a booking or a calendar change only one technician's timeline is new; the
        others are the same objects, so the slot answer computed again asks only the new
        one (at 50 technicians, most of that computation). A timeline never changes, so
        an answer kept is never wrong; the few query sets asked (types, ranges, and the
        notice moving the first start) are kept, and all dropped when more are asked.
        """
        found = self._masks.get(key)
        if found is None:
            found = bytes(self.free_mask(queries))
            if len(self._masks) >= MASKS_KEPT:
                self._masks.clear()  # one C call: safe against another thread's insert
            self._masks[key] = found
        return found

    def conflicts(self, start: datetime, end: datetime) -> list[Interval]:
        """The busy intervals overlapping ``[start, end)``, in order."""
        lo, hi = start.timestamp(), end.timestamp()
        found: list[Interval] = []
        index = bisect_right(self._ends, lo)
        while index < len(self._starts) and self._starts[index] < hi:
            found.append(Interval(_instant(self._starts[index]), _instant(self._ends[index])))
            index += 1
        return found


def query_key(queries: Sequence[tuple[float, float]]) -> bytes:
    """A key naming ``queries`` exactly, for :meth:`BusyTimeline.free_mask_kept`: bytes
    hash once and compare as memory, where a tuple of tuples rehashes every pair."""
    return array("d", [t for pair in queries for t in pair]).tobytes()


def _instant(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
