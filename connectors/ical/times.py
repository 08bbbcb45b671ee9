"""Reading one event's times unambiguously, and the problems met doing it.

Every reading of DTSTART, DTEND, DURATION, RECURRENCE-ID and the dates of RDATE/EXDATE goes
through :class:`_TimeReader`, so a single event, a series handed to the expander and our own
session events are all read by the same rules.

How times are read
------------------
* ``TZID`` with a ``VTIMEZONE`` in the file, a known IANA or Windows name, UTC: exact.
* Floating times (no zone): in the calendar's ``X-WR-TIMEZONE`` when it names a known zone
  (Google exports), else in the desk's zone.
* An unknown ``TZID`` (no ``VTIMEZONE``, not a known name): a warning, and the time is read
  in the desk's zone; the event still blocks.
* All-day events (``DATE`` values) block from 00:00 of the first day to 00:00 after the last,
  in the desk's zone.
* ``DTSTART`` alone: a ``DATE`` blocks that day (RFC 5545 §3.6.1); a timed one blocks one hour
  and is reported as a warning (RFC 5545 would make it zero-length, i.e. free; a technician's
  "reminder at 14:00" is more likely an appointment than nothing).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import icalendar
from icalendar import Component, vBroken

from connectors.base import Problem
from rules.intervals import Interval

_ONE_DAY = timedelta(days=1)
_UNDATED_EVENT_LENGTH = timedelta(hours=1)

Time = date | datetime
Severity = Literal["warning", "error"]


class _Report:
    """Problems for one calendar, each (UID, message) once."""

    def __init__(self, calendar: str) -> None:
        self.calendar = calendar
        self.problems: list[Problem] = []
        self._seen: set[tuple[str | None, str]] = set()

    def warn(self, uid: str | None, message: str) -> None:
        self._add(uid, message, "warning")

    def error(self, uid: str | None, message: str) -> None:
        self._add(uid, message, "error")

    def _add(self, uid: str | None, message: str, severity: Severity) -> None:
        if (uid, message) in self._seen:
            return
        self._seen.add((uid, message))
        self.problems.append(Problem(self.calendar, uid, message, severity))


def _uid_of(component: Component | None) -> str | None:
    if component is None:
        return None
    value = component.get("UID")
    if value is None or isinstance(value, (list, vBroken)):
        return None
    return str(value) or None


class _TimeReader:
    """Reads the times of one calendar's events in one window, reporting doubts to ``report``."""

    def __init__(
        self, cal: Component, desk_tz: ZoneInfo, report: _Report, window: Interval | None = None
    ) -> None:
        self.window = window
        self.desk_tz = desk_tz
        self.report = report
        self._vtimezones = {
            str(tz["TZID"]): tz
            for tz in cal.walk("VTIMEZONE")
            if isinstance(tz, icalendar.Timezone) and isinstance(tz.get("TZID"), str)
        }
        self._zones: dict[str, tzinfo | None] = {}
        self.wr_tz = self._x_wr_timezone(cal)
        self.floating_tz: tzinfo = self.wr_tz or desk_tz

    def _x_wr_timezone(self, cal: Component) -> ZoneInfo | None:
        """Google exports write floating times meant in the calendar's X-WR-TIMEZONE."""
        name = cal.get("X-WR-TIMEZONE")
        if name is None or isinstance(name, (list, vBroken)):
            return None
        try:
            return ZoneInfo(str(name).strip())
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            pass
        self.report.warn(
            None,
            "X-WR-TIMEZONE is not a known time zone; floating times are read in the desk's zone",
        )
        return None

    # ------------------------------------------------------------------ conversions

    def to_desk(self, value: Time) -> datetime:
        """An aware datetime in the desk's zone (dates: 00:00 that day in the desk's zone)."""
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                value = value.replace(tzinfo=self.floating_tz)
            return value.astimezone(self.desk_tz)
        return datetime.combine(value, time(0), tzinfo=self.desk_tz)

    def _value(self, uid: str | None, name: str, prop: Any) -> Time | None:
        """A DTSTART/DTEND/RECURRENCE-ID value made unambiguous, or None if unreadable."""
        if isinstance(prop, list):
            self.report.error(uid, f"{name} appears more than once; event skipped")
            return None
        if isinstance(prop, vBroken) or not hasattr(prop, "dt"):
            self.report.error(uid, f"{name} cannot be read; event skipped")
            return None
        value = prop.dt
        if isinstance(value, datetime):
            return self.zoned(uid, name, value, prop.params.get("TZID"))
        if isinstance(value, date):
            return value
        self.report.error(uid, f"{name} is not a date or date-time; event skipped")
        return None

    def zoned(self, uid: str | None, name: str, value: datetime, tzid: str | None) -> datetime:
        if tzid and not isinstance(value.tzinfo, ZoneInfo):
            # Not resolved by name: icalendar left it naive (unknown TZID) or used a zone built
            # from a VTIMEZONE, and it caches those per process by TZID, so Outlook's
            # "Customized Time Zone" from another technician's file may have been used. Only
            # this file's own definition counts.
            zone = self._own_zone(tzid)
            if zone is None:
                self.report.warn(
                    uid, f"unknown TZID {tzid!r}; its times are read in the desk's time zone"
                )
                zone = self.desk_tz
            return value.replace(tzinfo=zone)
        if value.tzinfo is None:
            return value.replace(tzinfo=self.floating_tz)
        if self.wr_tz is not None and not tzid and value.utcoffset() == timedelta(0):
            # Google writes UTC and means X-WR-TIMEZONE: a weekly 10:00 follows its DST.
            return value.astimezone(self.wr_tz)
        return value

    def _own_zone(self, tzid: str) -> tzinfo | None:
        """The zone defined by this calendar's VTIMEZONE with ``tzid``, if it has a usable one."""
        if tzid not in self._zones:
            zone: tzinfo | None = None
            component = self._vtimezones.get(tzid)
            if component is not None:
                try:
                    zone = component.to_tz(lookup_tzid=False)
                except Exception:  # a VTIMEZONE icalendar cannot turn into a zone
                    self.report.warn(None, f"VTIMEZONE {tzid!r} cannot be read")
            self._zones[tzid] = zone
        return self._zones[tzid]

    def event_times(self, uid: str | None, event: Component) -> tuple[Time, Time] | None:
        """Checked (start, end) of one VEVENT: both dates or both aware datetimes."""
        if "DTSTART" not in event:
            self.report.error(uid, "event without DTSTART skipped")
            return None
        start = self._value(uid, "DTSTART", event["DTSTART"])
        if start is None:
            return None
        end: Time | None
        if "DTEND" in event:
            end = self._value(uid, "DTEND", event["DTEND"])
            if end is None:
                return None
        elif "DURATION" in event:
            prop = event["DURATION"]
            length = getattr(prop, "dt", None) if not isinstance(prop, (list, vBroken)) else None
            if not isinstance(length, timedelta):
                self.report.error(uid, "DURATION cannot be read; event skipped")
                return None
            if not isinstance(start, datetime) and length % _ONE_DAY:
                start = self.to_desk(start)  # a date plus hours: start at 00:00 desk time
            end = start + length
        elif isinstance(start, datetime):
            self.report.warn(
                uid, "event has DTSTART but no DTEND or DURATION; counted as one hour busy"
            )
            end = start + _UNDATED_EVENT_LENGTH
        else:
            end = start + _ONE_DAY
        if isinstance(start, datetime) != isinstance(end, datetime):
            start, end = self.to_desk(start), self.to_desk(end)
        if end < start:
            self.report.error(uid, "event ends before it starts; skipped")
            return None
        if end == start and not isinstance(start, datetime):
            end = start + _ONE_DAY  # some clients write DTEND = DTSTART for a one-day event
        return start, end

    def interval(self, start: Time, end: Time) -> Interval | None:
        """The occurrence as a desk-zone interval if it blocks time inside the window."""
        begin, finish = self.to_desk(start), self.to_desk(end)
        if finish <= begin and end > start:
            # An occurrence whose start falls in a DST gap (02:30 on a spring-forward night)
            # can convert to an end before its start; it keeps its wall-clock length.
            finish = begin + (end - start)  # type: ignore[operator]
        if finish <= begin:
            return None  # zero length: blocks nothing
        interval = Interval(begin, finish)
        if self.window is not None and not interval.overlaps(self.window):
            return None
        return interval
