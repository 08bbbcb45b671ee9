"""Free slots as the outside world sees them: one document shape for the CLI and the API.

Busy time comes from wherever the caller has it (the store's cache, live calendars,
.ics files); this module only turns rules' slots into the documented shape (docs/api.md).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from rules.intervals import BusyTimeline, Interval
from rules.model import Policy
from rules.slots import Slot, free_slots

# Days the daemon reasons about: far enough from datetime's limits (years 1 and 9999) that
# a day's window, a zone conversion or a horizon added to them never overflows.
FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(9000, 12, 31)
DATE_LIMITS = f"{FIRST_DATE.year}–{LAST_DATE.year}"


def supported(value: date) -> bool:
    """Whether ``value`` (a date, or a datetime's date) lies within the supported years."""
    day = value.date() if isinstance(value, datetime) else value
    return FIRST_DATE <= day <= LAST_DATE


def iso(value: datetime, policy: Policy) -> str:
    """ISO 8601 with offset, in the desk's zone, to the second."""
    return value.astimezone(policy.timezone).isoformat(timespec="seconds")


def date_range_window(policy: Policy, first: date, last: date) -> Interval:
    """The instants covered by desk-zone days ``first``..``last``, both included."""
    tz = policy.timezone
    return Interval(
        datetime.combine(first, time(0), tzinfo=tz),
        datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz),
    )


def compute_slots(
    policy: Policy,
    type_name: str,
    first: date,
    last: date,
    now: datetime,
    busy: Mapping[str, Sequence[Interval]],
    eligible: Collection[str] | None = None,
) -> list[Slot]:
    timelines = {tech: BusyTimeline(intervals) for tech, intervals in busy.items()}
    return free_slots(policy, type_name, first, last, now, timelines, eligible)


def _slot_time(value: datetime, zone: tzinfo) -> str:
    """:func:`iso` of a slot's start or end, remembered (:func:`_remembered_time`).

    The key carries ``fold``: two datetimes of one zone compare equal by their wall time
    alone, so without it the two 01:30 of a night the clocks go back would share one
    text, and one of them would get the other's offset. With it, equal keys are one
    instant (one zone: the same wall time and fold; two zones: the same UTC time)."""
    return _remembered_time(value, value.fold, zone)


@functools.lru_cache(maxsize=8192)
def _remembered_time(value: datetime, fold: int, zone: tzinfo) -> str:
    """A slots answer is computed again after every booking and calendar change, in the
    process that answers requests, and formatting its few hundred grid times was 40 % of
    that (py-spy): a zone conversion and a format, 2.6 µs each, against a fraction of a
    microsecond remembered. 8,192 instants: two weeks of 15-minute grids for several
    session types."""
    del fold  # in the key only
    return value.astimezone(zone).isoformat(timespec="seconds")


def slots_document(policy: Policy, type_name: str, slots: Sequence[Slot]) -> dict[str, Any]:
    """``{"timezone", "type", "slots": [{"start", "end", "technicians"}]}`` (docs/api.md)."""
    zone = policy.timezone
    return {
        "timezone": zone.key,
        "type": type_name,
        "slots": [
            {
                "start": _slot_time(slot.start, zone),
                "end": _slot_time(slot.end, zone),
                "technicians": len(slot.technicians),
            }
            for slot in slots
        ],
    }


def slots_body(policy: Policy, type_name: str, counted: Sequence[tuple[datetime, int]]) -> bytes:
    """The API's slots answer from :func:`rules.slots.free_counts`: byte for byte the
    compact UTF-8 JSON of :func:`slots_document` for the same slots (a test holds them to
    it), without building the document. Each slot's text but its count is remembered
    (:func:`_slot_head`), so after a booking or a calendar change the answer costs little
    more than joining them."""
    zone = policy.timezone
    duration = policy.session_types[type_name].duration
    head = (
        f'{{"timezone":{json.dumps(zone.key, ensure_ascii=False)},'
        f'"type":{json.dumps(type_name, ensure_ascii=False)},"slots":['
    )
    items = ",".join(f"{_slot_head(start, duration, zone)}{count}}}" for start, count in counted)
    return f"{head}{items}]}}".encode()


@functools.lru_cache(maxsize=8192)
def _slot_head(start: datetime, duration: timedelta, zone: tzinfo) -> str:
    """A slot's JSON up to its count. ``start`` comes in UTC, where equal datetimes are
    one instant (see :func:`_slot_time` for local ones); sized as
    :func:`_remembered_time`."""
    end = start + duration
    return f'{{"start":"{_slot_time(start, zone)}","end":"{_slot_time(end, zone)}","technicians":'
