"""Opening windows of a day (R4): weekly ranges, closed days, dated overrides.

Precedence, most specific first: a desk closed date, a dated override with special
hours, a public holiday, the weekly ranges. An override therefore opens a holiday on
purpose (e.g. a desk that works on a municipal holiday), while a closed date always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from rules.intervals import Interval
from rules.model import Policy, TimeRange

ClosedReason = Literal["closed_date", "holiday", "weekly"]


@dataclass(frozen=True, slots=True)
class DayHours:
    """The ranges a day is open, or why it is closed (``ranges`` empty)."""

    day: date
    ranges: tuple[TimeRange, ...]
    closed: ClosedReason | None = None
    label: str = ""  # the holiday's or closed date's name, for messages


def day_hours(policy: Policy, day: date) -> DayHours:
    """Resolve one calendar day of the desk's zone into its opening ranges."""
    if day in policy.closed_dates:
        return DayHours(day, (), "closed_date", policy.closed_dates[day])
    if day in policy.overrides:
        ranges = policy.overrides[day]
        return DayHours(day, ranges, None if ranges else "closed_date")
    holiday = policy.holidays.get(day)
    if holiday is not None:
        return DayHours(day, (), "holiday", holiday)
    ranges = policy.weekly.get(day.weekday(), ())
    return DayHours(day, ranges, None if ranges else "weekly")


def range_interval(policy: Policy, day: date, time_range: TimeRange) -> Interval | None:
    """The range on ``day`` as instants in UTC, or None when the day's clock change
    leaves nothing of it.

    Both ends are wall-clock times in the desk's zone, read as PEP 495 says: a time the
    clocks skip means the instant it would be by the offset before the change, and a time
    they repeat means its first occurrence. Ranges are UTC so that stepping through them
    and comparing them counts real time: Python compares and subtracts two datetimes of
    the same ``ZoneInfo`` by their wall clocks, which is wrong across a change.
    """
    tz = policy.timezone
    start = datetime.combine(day, time_range.start, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day, time_range.end, tzinfo=tz).astimezone(UTC)
    return Interval(start, end) if start < end else None


def windows(policy: Policy, day: date) -> list[Interval]:
    """The open intervals of ``day`` in UTC (empty when closed)."""
    spans = (range_interval(policy, day, r) for r in day_hours(policy, day).ranges)
    return [span for span in spans if span is not None]


def local_date(policy: Policy, instant: datetime) -> date:
    return instant.astimezone(policy.timezone).date()


def days(first: date, last: date) -> list[date]:
    """Every date from ``first`` to ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
