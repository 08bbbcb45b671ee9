"""Opening windows of a day (R4): weekly ranges, closed days, dated overrides.

Precedence, most specific first: a desk closed date, a dated override with special
hours, a public holiday, the weekly ranges. An override therefore opens a holiday on
purpose (e.g. a desk that works on a municipal holiday), while a closed date always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
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


def range_interval(policy: Policy, day: date, time_range: TimeRange) -> Interval:
    """The range on ``day`` as aware instants in the desk's zone."""
    tz = policy.timezone
    return Interval(
        datetime.combine(day, time_range.start, tzinfo=tz),
        datetime.combine(day, time_range.end, tzinfo=tz),
    )


def windows(policy: Policy, day: date) -> list[Interval]:
    """The open intervals of ``day`` (empty when closed)."""
    return [range_interval(policy, day, r) for r in day_hours(policy, day).ranges]


def local_date(policy: Policy, instant: datetime) -> date:
    return instant.astimezone(policy.timezone).date()


def days(first: date, last: date) -> list[date]:
    """Every date from ``first`` to ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
