"""Busy time of a parsed calendar, and one CalDAV object as an :class:`ObjectChange`.

Free, not busy: ``TRANSP:TRANSPARENT``, ``STATUS:CANCELLED``, Outlook's
``X-MICROSOFT-CDO-BUSYSTATUS:FREE``, zero-length timed events, ``FREEBUSY;FBTYPE=FREE``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Component

from connectors.base import ObjectChange, Problem
from connectors.ical.parse import parse_calendar
from connectors.ical.recurrence import _group_by_uid, _Reader
from connectors.ical.session import parse_session_event
from connectors.ical.times import _Report, _uid_of
from rules.intervals import Interval

__all__ = ["BusyResult", "busy_from_ics", "describe_ics", "describe_object", "expand_busy"]

_FREE_FBTYPES = frozenset({"FREE"})  # any other FBTYPE (incl. x-names) is busy: RFC 5545 §3.2.9


@dataclass(frozen=True)
class BusyResult:
    """Busy occurrences overlapping the window (sorted, unclipped, not merged).

    ``by_uid`` groups the same intervals by the UID of the event (``""`` for events and
    free/busy blocks that have none).
    """

    intervals: list[Interval]
    problems: list[Problem]
    by_uid: dict[str, list[Interval]] = field(default_factory=dict)


def busy_from_ics(
    data: str | bytes, window: Interval, desk_tz: ZoneInfo, *, calendar: str = ""
) -> BusyResult:
    """Parse and expand in one step. Never raises for bad data."""
    cal, problems = parse_calendar(data, calendar=calendar)
    if cal is None:
        return BusyResult([], problems, {})
    result = expand_busy(cal, window, desk_tz, calendar=calendar)
    return BusyResult(result.intervals, problems + result.problems, result.by_uid)


def expand_busy(
    cal: Component, window: Interval, desk_tz: ZoneInfo, *, calendar: str = ""
) -> BusyResult:
    """Busy occurrences of every VEVENT and VFREEBUSY in ``cal`` that overlap ``window``.

    Broken events are skipped and reported with their UID; the rest still counts.
    Results are aware datetimes in ``desk_tz``, unclipped, sorted.
    """
    report = _Report(calendar)
    reader = _Reader(cal, desk_tz, report, window)
    by_uid: dict[str, list[Interval]] = {}
    for uid, events in _group_by_uid(cal.walk("VEVENT")):
        blocks = reader.series_blocks(uid, events)
        if blocks:
            by_uid.setdefault(uid or "", []).extend(blocks)
    for freebusy in cal.walk("VFREEBUSY"):
        uid = _uid_of(freebusy)
        blocks = _freebusy_blocks(reader, uid, freebusy)
        if blocks:
            by_uid.setdefault(uid or "", []).extend(blocks)
    intervals: list[Interval] = []
    for key, blocks in by_uid.items():
        blocks.sort()
        by_uid[key] = blocks
        intervals.extend(blocks)
    intervals.sort()
    return BusyResult(intervals, report.problems, by_uid)


def describe_object(
    cal: Component,
    window: Interval,
    desk_tz: ZoneInfo,
    *,
    href: str,
    etag: str | None,
    calendar: str,
) -> ObjectChange:
    """One CalDAV object (a master and its overrides, one UID) as an :class:`ObjectChange`.

    ``blocks`` are its busy occurrences in ``window``; ``start``/``end``/``cancelled`` describe
    the master event (for our own session events: did the technician move or cancel it).
    """
    busy = expand_busy(cal, window, desk_tz, calendar=calendar)
    problems = list(busy.problems)
    events = cal.walk("VEVENT")
    uids = list(dict.fromkeys(u for u in (_uid_of(e) for e in events) if u))
    uid = uids[0] if uids else _uid_of(next(iter(cal.walk("VFREEBUSY")), None))
    if len(uids) > 1:
        problems.append(
            Problem(calendar, uid, f"one object holds {len(uids)} UIDs; all of them block time")
        )
    snapshot = parse_session_event(cal, desk_tz, uid=uid) if uid else None
    return ObjectChange(
        href=href,
        uid=uid,
        etag=etag,
        blocks=tuple(busy.intervals),
        start=snapshot.start if snapshot else None,
        end=snapshot.end if snapshot else None,
        cancelled=snapshot.cancelled if snapshot else False,
        problems=tuple(problems),
    )


def describe_ics(
    data: str | bytes,
    window: Interval,
    desk_tz: ZoneInfo,
    *,
    href: str,
    etag: str | None,
    calendar: str,
) -> ObjectChange:
    """:func:`describe_object` from raw text; unreadable text gives no blocks and an error
    Problem (callers should keep the object's previous blocks rather than free its time)."""
    cal, problems = parse_calendar(data, calendar=calendar)
    if cal is None:
        return ObjectChange(href=href, uid=None, etag=etag, problems=tuple(problems))
    change = describe_object(cal, window, desk_tz, href=href, etag=etag, calendar=calendar)
    if not problems:
        return change
    # replace() keeps every other field, including any ObjectChange gains later.
    return dataclasses.replace(change, problems=tuple(problems) + change.problems)


def _freebusy_blocks(reader: _Reader, uid: str | None, freebusy: Component) -> list[Interval]:
    """The busy periods of one VFREEBUSY (any FBTYPE but FREE) inside the window."""
    found = freebusy.get("FREEBUSY")
    if found is None:
        return []
    blocks = []
    for period in found if isinstance(found, list) else [found]:
        if str(period.params.get("FBTYPE", "BUSY")).upper() in _FREE_FBTYPES:
            continue
        start, end = getattr(period, "start", None), getattr(period, "end", None)
        if not isinstance(start, datetime) or not isinstance(end, datetime):
            reader.report.error(uid, "FREEBUSY period cannot be read; skipped")
            continue
        start = reader.zoned(uid, "FREEBUSY", start, None)
        end = reader.zoned(uid, "FREEBUSY", end, None)
        if end < start:
            reader.report.error(uid, "FREEBUSY period ends before it starts; skipped")
            continue
        found_interval = reader.interval(start, end)
        if found_interval is not None:
            blocks.append(found_interval)
    return blocks
