"""iCalendar text → busy intervals, and session events → iCalendar text.

Shared by the CalDAV adapter (one object at a time, :func:`describe_object`) and by
``expediente slots --busy TECH=FILE.ics`` (a whole export: :func:`parse_calendar`, then
:func:`expand_busy`).

Reading is conservative: when the data is unclear the time counts as busy, and each
doubt becomes a :class:`~connectors.base.Problem` naming the event's UID. Only times
ever leave this module: summaries, descriptions, locations and attendees are never
copied into a result or a problem message.

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
* Free, not busy: ``TRANSP:TRANSPARENT``, ``STATUS:CANCELLED``, Outlook's
  ``X-MICROSOFT-CDO-BUSYSTATUS:FREE``, zero-length timed events, ``FREEBUSY;FBTYPE=FREE``.
* Recurrence (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides, RANGE=THISANDFUTURE) is expanded by
  ``recurring-ical-events`` inside the window only, so endless rules cost what the window holds.
"""

from __future__ import annotations

import re
import warnings
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal, NamedTuple, cast, get_args
from zoneinfo import ZoneInfo

import icalendar
from dateutil.rrule import HOURLY, rrule
from icalendar import Alarm, Calendar, Component, Event, vBroken, vCalAddress, vRecur, vText
from recurring_ical_events.adapters.event import EventAdapter
from recurring_ical_events.occurrence import Occurrence
from recurring_ical_events.series import Series
from recurring_ical_events.util import to_recurrence_ids

from connectors.base import ObjectChange, Problem, SessionEvent, SessionState, brief
from rules.intervals import Interval, require_aware

__all__ = [
    "DEFAULT_COLORS",
    "DEFAULT_MARKERS",
    "BusyResult",
    "SessionSnapshot",
    "busy_from_ics",
    "describe_ics",
    "describe_object",
    "expand_busy",
    "parse_calendar",
    "parse_session_event",
    "session_to_ical",
]

STATE_PROPERTY = "X-EXPEDIENTE-STATE"
CATEGORY = "expediente"

_ONE_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNDATED_EVENT_LENGTH = timedelta(hours=1)
# Padding around the window handed to the expander; exact overlap is checked afterwards, so
# this only guards against the library's own date/floating comparisons near the edges.
_QUERY_PADDING = timedelta(days=1)
_SKIPPABLE_FREQ = {"WEEKLY": timedelta(weeks=1), "DAILY": _ONE_DAY, "HOURLY": timedelta(hours=1)}
# A busy block repeating by the minute or second is no calendar a person keeps; dateutil would
# spend minutes on one.
_UNSUPPORTED_FREQ = frozenset({"MINUTELY", "SECONDLY"})
# A rule that never matches (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) keeps dateutil busy until the
# year 9999; these bound the work per rule (see _BoundedRule).
_SPARE_YEARS = 30
_SPARE_YEARS_HOURLY = 8  # 8760 periods a year; 8 years still find a yearly 29 February
_MAX_RESULTS = 200_000
_FREE_FBTYPES = frozenset({"FREE"})  # any other FBTYPE (incl. x-names) is busy: RFC 5545 §3.2.9
_KNOWN_STATES: frozenset[str] = frozenset(get_args(SessionState))
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Properties busy time never reads: free text, people, and bookkeeping stamps (parsing a
# date-time costs as much as reading DTSTART). A logical line is the property line plus its folded
# continuations (lines starting with a space or tab), RFC 5545 §3.1.
_TEXT_PROPERTIES = (
    "DESCRIPTION|X-ALT-DESC|STYLED-DESCRIPTION|SUMMARY|LOCATION|COMMENT|ATTACH|ATTENDEE|"
    "ORGANIZER|CONTACT|CONFERENCE|IMAGE|RESOURCES|CATEGORIES|X-APPLE-STRUCTURED-LOCATION|"
    "DTSTAMP|CREATED|LAST-MODIFIED|URL|CLASS|PRIORITY|GEO"
)
_TEXT_LINES_PATTERN = rf"^(?:{_TEXT_PROPERTIES})[;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*(?:\r?\n|\Z)"
_TEXT_LINES = re.compile(_TEXT_LINES_PATTERN, re.IGNORECASE | re.MULTILINE)
_TEXT_LINES_B = re.compile(_TEXT_LINES_PATTERN.encode(), re.IGNORECASE | re.MULTILINE)

# A VTIMEZONE whose TZID is an IANA name never decides a time: icalendar resolves the name
# with zoneinfo and ignores the definition (tzp.cache_timezone_component). Radicale and most
# clients store one in every object, and it is a third of the lines there is to parse.
_VTIMEZONE_PATTERN = r"^BEGIN:VTIMEZONE\r?\n(.*?)^END:VTIMEZONE(?:\r?\n|\Z)"
_VTIMEZONE = re.compile(_VTIMEZONE_PATTERN, re.MULTILINE | re.DOTALL)
_VTIMEZONE_B = re.compile(_VTIMEZONE_PATTERN.encode(), re.MULTILINE | re.DOTALL)
_TZID_LINE = re.compile(r"^TZID(?:;[^:\r\n]*)?:([^\r\n]*)", re.MULTILINE)
_NESTED = re.compile(r"^BEGIN:(?!STANDARD\r?$|DAYLIGHT\r?$)", re.MULTILINE)
_IANA_ZONES = frozenset(zoneinfo.available_timezones())

Time = date | datetime
Severity = Literal["warning", "error"]


@dataclass(frozen=True)
class BusyResult:
    """Busy occurrences overlapping the window (sorted, unclipped, not merged).

    ``by_uid`` groups the same intervals by the UID of the event (``""`` for events and
    free/busy blocks that have none).
    """

    intervals: list[Interval]
    problems: list[Problem]
    by_uid: dict[str, list[Interval]] = field(default_factory=dict)


class SessionSnapshot(NamedTuple):
    """What a technician's calendar says about one of our session events now."""

    start: datetime | None
    end: datetime | None
    state: SessionState | None  # our X-EXPEDIENTE-STATE; None when absent or unknown
    cancelled: bool  # STATUS:CANCELLED


# --------------------------------------------------------------------------- parsing


def parse_calendar(
    data: str | bytes, *, calendar: str = "", keep_text: bool = False
) -> tuple[Calendar | None, list[Problem]]:
    """Parse iCalendar text; a file that cannot be read gives ``(None, [error Problem])``.

    Never raises for bad data. Concatenated VCALENDARs are read as one calendar; bare
    components without a VCALENDAR around them are accepted with a warning. Unless
    ``keep_text``, free-text and attendee properties (SUMMARY, DESCRIPTION, LOCATION,
    ATTACH, ATTENDEE, ...) are cut from the text before parsing: busy time never needs them,
    they are most of the parsing time (a 2 MB description costs ~0.6 s), and what is never
    parsed cannot leak.
    """
    if not data.strip():
        return None, [Problem(calendar, None, "empty file: no VCALENDAR", "error")]
    if not keep_text:
        data = _strip_known_timezones(_strip_text(data))
    try:
        with warnings.catch_warnings():
            # "/vendor/Europe/Berlin" TZIDs are resolved by stripping the prefix, with a
            # UserWarning; the guess is what every client does, so it is not a problem.
            warnings.simplefilter("ignore", icalendar.GloballyUniqueTZIDGuessed)
            components = Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # the parser raises ValueError, but any failure is bad data
        gist = brief(exc, may_quote_data=True)
        return None, [Problem(calendar, None, f"not a readable iCalendar file: {gist}", "error")]
    problems: list[Problem] = []
    calendars = [c for c in components if isinstance(c, Calendar)]
    loose = [c for c in components if not isinstance(c, Calendar)]
    if not calendars and not loose:
        return None, [Problem(calendar, None, "no VCALENDAR in the file", "error")]
    if len(calendars) == 1 and not loose:
        return calendars[0], problems
    merged = Calendar()
    if calendars:
        merged.update(calendars[0])  # PRODID, X-WR-TIMEZONE, ... of the first calendar
    for cal in calendars:
        for sub in cal.subcomponents:
            merged.add_component(sub)
    for comp in loose:
        merged.add_component(comp)
    if loose:
        problems.append(
            Problem(calendar, None, f"{len(loose)} component(s) outside any VCALENDAR; read anyway")
        )
    if len(calendars) > 1:
        problems.append(
            Problem(calendar, None, f"{len(calendars)} VCALENDARs in one file; read as one")
        )
    return merged, problems


def _strip_text(data: str | bytes) -> str | bytes:
    if isinstance(data, bytes):
        return _TEXT_LINES_B.sub(b"", data)
    return _TEXT_LINES.sub("", data)


def _strip_known_timezones(data: str | bytes) -> str | bytes:
    """Cut the VTIMEZONEs icalendar would ignore (see ``_VTIMEZONE``); keep any other."""

    def keep_unknown(match: re.Match[Any]) -> Any:
        body = match.group(1)
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        text = re.sub(r"\r?\n[ \t]", "", text)  # unfold
        if _NESTED.search(text):  # no END:VTIMEZONE of its own: not ours to judge
            return match.group(0)
        tzid = _TZID_LINE.search(text)
        if tzid is None or tzid.group(1).strip() not in _IANA_ZONES:
            return match.group(0)
        return match.group(0)[:0]

    if isinstance(data, bytes):
        return _VTIMEZONE_B.sub(keep_unknown, data)
    return _VTIMEZONE.sub(keep_unknown, data)


# --------------------------------------------------------------------------- busy time


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
        blocks = reader.freebusy_blocks(uid, freebusy)
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
    return ObjectChange(
        href=change.href,
        uid=change.uid,
        etag=change.etag,
        blocks=change.blocks,
        start=change.start,
        end=change.end,
        cancelled=change.cancelled,
        problems=tuple(problems) + change.problems,
    )


def parse_session_event(
    cal: Component, desk_tz: ZoneInfo, *, uid: str | None = None
) -> SessionSnapshot | None:
    """The master event's current time, our state marker and cancellation, or None if the
    object holds no readable master event (with ``uid``: none with that UID)."""
    report = _Report("")
    reader = _Reader(cal, desk_tz, report)
    for event in cal.walk("VEVENT"):
        if "RECURRENCE-ID" in event or (uid is not None and _uid_of(event) != uid):
            continue
        times = reader.event_times(_uid_of(event), event)
        start = end = None
        if times is not None:
            start, end = reader.to_desk(times[0]), reader.to_desk(times[1])
        raw_state = str(event.get(STATE_PROPERTY, "")).strip().lower()
        state = cast(SessionState, raw_state) if raw_state in _KNOWN_STATES else None
        cancelled = str(event.get("STATUS", "")).upper() == "CANCELLED"
        return SessionSnapshot(start, end, state, cancelled)
    return None


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


def _group_by_uid(events: Iterable[Component]) -> Iterator[tuple[str | None, list[Component]]]:
    """Events sharing a UID form one series; events without a UID stand alone."""
    groups: dict[str, list[Component]] = {}
    for event in events:
        uid = _uid_of(event)
        if uid is None:
            yield None, [event]
        else:
            groups.setdefault(uid, []).append(event)
    yield from groups.items()


def _is_busy(event: Component) -> bool:
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return False
    # Outlook/Exchange exports say "show as free" here and not always in TRANSP.
    return str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper() != "FREE"


# Any of these makes an event part of a recurring series (or an override of one).
_RECURRENCE_PROPERTIES = frozenset({"RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})


def _is_single(event: Component) -> bool:
    """True for an event with one occurrence of its own: no rule, no dates, no override.

    Components keep their property names upper-cased, so one set test on the keys does what
    four case-insensitive lookups would, at a fraction of the cost.
    """
    return _RECURRENCE_PROPERTIES.isdisjoint(event.keys())


class _Adapter(EventAdapter):  # type: ignore[misc]
    """An event whose times were already checked and made unambiguous by :class:`_Reader`.

    recurring-ical-events reads DTSTART/DTEND itself and silently swaps a reversed pair,
    turns a missing end into zero length and raises on broken values; feeding it the checked
    values keeps one reading of each event.
    """

    def __init__(
        self,
        event: Component,
        start: Time,
        end: Time,
        *,
        rrules: set[str],
        exdates: list[Time],
        rdates: list[Any],
        sequence: int,
        recurrence_id: Time | None,
        horizon: int,
    ) -> None:
        super().__init__(event)
        self.horizon = horizon  # the last year the expansion needs
        self.event = event
        self.busy = _is_busy(event)
        self._checked = (start, end)
        self._rrules = rrules
        self._exdates = exdates
        self._rdates = rdates
        self._sequence = sequence
        self._recurrence_ids = to_recurrence_ids(recurrence_id) if recurrence_id else ()

    @property
    def recurrence_ids(self) -> tuple[datetime, ...]:
        return self._recurrence_ids

    @property
    def raw_start(self) -> Time:
        return self._checked[0]

    @property
    def raw_end(self) -> Time:
        return self._checked[1]

    @property
    def rrules(self) -> set[str]:
        return self._rrules

    @property
    def exdates(self) -> list[Time]:
        return self._exdates

    @property
    def rdates(self) -> list[Any]:
        return self._rdates

    @property
    def sequence(self) -> int:
        return self._sequence


class _Occurrence(Occurrence):  # type: ignore[misc]
    """An occurrence that keeps a public reference to the component it came from."""

    def __init__(
        self,
        adapter: _Adapter,
        start: Time | None = None,
        end: Time | None = None,
        sequence: int = -1,
    ) -> None:
        super().__init__(adapter, start, end, sequence)
        self.source = adapter


class _ExpansionTooLong(ValueError):
    """A recurrence rule needed more work than any real calendar does."""


class _BoundedRule(rrule):  # type: ignore[misc]
    """A dateutil rule that gives up instead of running for minutes.

    dateutil stops iterating only at a result past UNTIL, after COUNT results or in the year
    9999, so a rule that never matches runs to 9999: seconds for a daily rule, hours for a
    minutely one. dateutil offers no limit; this counts the years it iterates (its
    ``_iterinfo.rebuild`` reads ``_byweekno`` once per new year) and the results it yields,
    and raises :class:`_ExpansionTooLong` past the budget.
    """

    _years_left: int
    _results_left: int

    @classmethod
    def bound(cls, rule: rrule, *, years: int, results: int) -> rrule:
        rule.__class__ = cls
        # With its cache on (recurring-ical-events asks for it) dateutil computes results ten
        # at a time: up to nine needless ones past the window, decades apart for sparse rules.
        rule._cache = None
        rule._years_left = years
        rule._results_left = results
        return rule

    @property
    def _byweekno(self) -> Any:
        self._years_left -= 1
        if self._years_left < 0:
            raise _ExpansionTooLong("the rule finds no occurrence in decades")
        return self.__dict__["_byweekno"]

    def __iter__(self) -> Iterator[datetime]:
        for value in super().__iter__():
            self._results_left -= 1
            if self._results_left < 0:
                raise _ExpansionTooLong(f"more than {_MAX_RESULTS} occurrences before the window")
            yield value


class _Rules(Series.RecurrenceRules):  # type: ignore[misc]
    core: _Adapter

    def rrulestr(self, rule_string: str) -> rrule:
        rule = super().rrulestr(rule_string)
        spare = _SPARE_YEARS_HOURLY if rule._freq == HOURLY else _SPARE_YEARS
        years = max(self.core.horizon - rule._dtstart.year, 0) + spare
        return _BoundedRule.bound(rule, years=years, results=_MAX_RESULTS)


class _Series(Series):  # type: ignore[misc]
    RecurrenceRules = _Rules

    def occurrence(
        self, adapter: _Adapter, start: Time | None = None, end: Time | None = None
    ) -> _Occurrence:
        return _Occurrence(adapter, start, end, sequence=self.sequence)


class _Reader:
    """Reads the events of one calendar in one window, reporting doubts to ``report``.

    ``fast_single`` reads single events directly; off, every event goes through the expander
    (the reference the fast path is tested against).
    """

    fast_single: bool = True

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
        # The expander compares dates and floating times in the query's zone: the desk's.
        wide = window.widened(_QUERY_PADDING) if window else Interval(_EPOCH, _EPOCH)
        self.query = (wide.start.astimezone(desk_tz), wide.end.astimezone(desk_tz))

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
            return self._zoned(uid, name, value, prop.params.get("TZID"))
        if isinstance(value, date):
            return value
        self.report.error(uid, f"{name} is not a date or date-time; event skipped")
        return None

    def _zoned(self, uid: str | None, name: str, value: datetime, tzid: str | None) -> datetime:
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

    # ------------------------------------------------------------------ expansion

    def _interval(self, start: Time, end: Time) -> Interval | None:
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

    def series_blocks(self, uid: str | None, events: list[Component]) -> list[Interval]:
        if self.fast_single and len(events) == 1 and _is_single(events[0]):
            return self._single_blocks(uid, events[0])
        adapters = [a for a in (self._adapter(uid, e) for e in events) if a is not None]
        if not adapters:
            return []
        if self.fast_single and len(adapters) == 1 and not adapters[0].has_recurrence_rules():
            # A lone override (RECURRENCE-ID without its master) is one occurrence too.
            only = adapters[0]
            if not only.busy:
                return []
            found = self._interval(only.raw_start, only.raw_end)
            return [found] if found else []
        blocks: list[Interval] = []
        for group in self._series_groups(uid, adapters):
            blocks.extend(self._expand(uid, group))
        return blocks

    def _single_blocks(self, uid: str | None, event: Component) -> list[Interval]:
        """The one busy block of a plain single event, read without the expander.

        Most events are single, and building recurring-ical-events' adapter for each cost more
        than reading it. The result is what the expander gives for such an event (checked
        times, TRANSP/STATUS, zero length and window filtering as in :meth:`_interval`), and
        the same problems are reported, since :meth:`event_times` does the reading in both.
        """
        times = self.event_times(uid, event)
        if times is None or not _is_busy(event):
            return []
        found = self._interval(*times)
        return [found] if found is not None else []

    def _series_groups(self, uid: str | None, adapters: list[_Adapter]) -> list[list[_Adapter]]:
        """Overrides go with the newest master; further masters of the same UID (merged
        exports) are expanded on their own rather than silently dropped."""
        masters = [a for a in adapters if not a.is_modification()]
        overrides = [a for a in adapters if a.is_modification()]
        if len(masters) <= 1:
            return [adapters]
        self.report.warn(uid, f"{len(masters)} events share this UID; all of them block time")
        masters.sort(key=lambda a: a.sequence, reverse=True)
        return [[masters[0], *overrides]] + [[m] for m in masters[1:]]

    def _expand(self, uid: str | None, adapters: list[_Adapter]) -> list[Interval]:
        try:
            series = _Series(adapters)
            occurrences: list[tuple[_Adapter, Time, Time]] = [
                (o.source, o.start, o.end) for o in series.between(*self.query)
            ]
        except Exception as exc:  # bad rules reach dateutil as ValueError, TypeError, ...
            gist = brief(exc, may_quote_data=True)
            self.report.error(
                uid,
                f"recurrence cannot be expanded ({gist}); only the event's own "
                "DTSTART and its overrides count",
            )
            occurrences = [(a, a.raw_start, a.raw_end) for a in adapters]
        blocks = []
        for source, start, end in occurrences:
            if source.busy:
                found = self._interval(start, end)
                if found is not None:
                    blocks.append(found)
        return blocks

    def _adapter(self, uid: str | None, event: Component) -> _Adapter | None:
        times = self.event_times(uid, event)
        if times is None:
            return None
        start, end = times
        recurrence_id = None
        if "RECURRENCE-ID" in event:
            recurrence_id = self._value(uid, "RECURRENCE-ID", event["RECURRENCE-ID"])
            if recurrence_id is None:
                return None
        rules = self._rules(uid, event, start)
        if len(rules) == 1:
            start, end = self._skip_ahead(rules[0], start, end)
        return _Adapter(
            event,
            start,
            end,
            rrules={rule.to_ical().decode() for rule in rules},  # type: ignore[no-untyped-call]
            exdates=self._dates(uid, event, "EXDATE"),
            rdates=self._dates(uid, event, "RDATE"),
            sequence=self._sequence(event),
            recurrence_id=recurrence_id,
            horizon=self.query[1].year,
        )

    def _rules(self, uid: str | None, event: Component, start: Time) -> list[vRecur]:
        """The event's RRULEs that can be expanded, UNTIL matching DTSTART's type.

        RFC 5545 wants a floating UNTIL for a floating DTSTART; the expander would read it
        as UTC once we give DTSTART a zone and lose the last occurrence, so it is converted
        here. A date UNTIL on a timed series includes that whole day. A rule that cannot be
        used is reported and the event counts once, at DTSTART.
        """
        found = event.get("RRULE")
        if found is None:
            return []
        rules: list[vRecur] = []
        for rule in found if isinstance(found, list) else [found]:
            if not isinstance(rule, vRecur) or not rule.get("FREQ"):
                self.report.warn(uid, "RRULE cannot be read; only the first occurrence counts")
                continue
            freq = str(rule["FREQ"][0]).upper()
            interval = rule.get("INTERVAL", [1])[0]
            if not isinstance(interval, int) or interval < 1:
                # dateutil loops forever on INTERVAL=0.
                self.report.warn(
                    uid, "RRULE INTERVAL is not positive; only the first occurrence counts"
                )
                continue
            if freq in _UNSUPPORTED_FREQ:
                self.report.warn(
                    uid, f"RRULE FREQ={freq} is not supported; only the first occurrence counts"
                )
                continue
            rule = vRecur(rule)
            until = rule.get("UNTIL")
            if until:
                rule["UNTIL"] = [self._until(until[0], start)]
            rules.append(rule)
        return rules

    def _skip_ahead(self, rule: vRecur, start: Time, end: Time) -> tuple[Time, Time]:
        """Move DTSTART forward by whole periods to just before the window.

        dateutil walks every period from DTSTART, so an hourly rule from 1970 would cost
        seconds. Whole periods of the rule (INTERVAL included) keep every occurrence, the
        weekday and the time of day; dateutil steps in wall time, so the shift is in wall time
        too. Rules with COUNT depend on the occurrences before the window and stay as they are.
        The moved DTSTART itself lies before the window and is filtered out.
        """
        freq = str(rule["FREQ"][0]).upper()
        period = _SKIPPABLE_FREQ.get(freq)
        if period is None or "COUNT" in rule:
            return start, end
        step = period * rule.get("INTERVAL", [1])[0]
        length: timedelta = end - start  # type: ignore[operator]  # same type: event_times
        if isinstance(start, datetime):
            wall = start.replace(tzinfo=None)
            target = self.query[0].astimezone(start.tzinfo).replace(tzinfo=None)
            periods = (target - wall - length) // step - 1
            if periods <= 0:
                return start, end
            moved = (wall + step * periods).replace(tzinfo=start.tzinfo)
            return moved, moved + length
        if step % _ONE_DAY:  # an hourly rule on an all-day event: left as it is
            return start, end
        periods = (self.query[0].date() - start - length) // step - 1
        if periods <= 0:
            return start, end
        moved_day = start + step * periods
        return moved_day, moved_day + length

    def _until(self, until: Time, start: Time) -> Time:
        if not isinstance(start, datetime):
            return until.date() if isinstance(until, datetime) else until
        if not isinstance(until, datetime):
            until = datetime.combine(until, time(23, 59, 59), tzinfo=start.tzinfo)
        elif until.tzinfo is None:
            until = until.replace(tzinfo=start.tzinfo)
        return until.astimezone(UTC)

    def _dates(self, uid: str | None, event: Component, name: str) -> list[Any]:
        found = event.get(name)
        if found is None:
            return []
        values: list[Any] = []
        for prop in found if isinstance(found, list) else [found]:
            dts = getattr(prop, "dts", None)
            if isinstance(prop, vBroken) or dts is None:
                self.report.warn(uid, f"{name} cannot be read; ignored")
                continue
            for item in dts:
                value = item.dt
                if isinstance(value, datetime):
                    value = self._zoned(uid, name, value, prop.params.get("TZID"))
                elif isinstance(value, tuple) and isinstance(value[0], datetime):
                    value = (self._zoned(uid, name, value[0], prop.params.get("TZID")), value[1])
                values.append(value)
        return values

    @staticmethod
    def _sequence(event: Component) -> int:
        try:
            return int(event.get("SEQUENCE", -1))
        except (TypeError, ValueError):
            return -1

    def freebusy_blocks(self, uid: str | None, freebusy: Component) -> list[Interval]:
        found = freebusy.get("FREEBUSY")
        if found is None:
            return []
        blocks = []
        for period in found if isinstance(found, list) else [found]:
            if str(period.params.get("FBTYPE", "BUSY")).upper() in _FREE_FBTYPES:
                continue
            start, end = getattr(period, "start", None), getattr(period, "end", None)
            if not isinstance(start, datetime) or not isinstance(end, datetime):
                self.report.error(uid, "FREEBUSY period cannot be read; skipped")
                continue
            start = self._zoned(uid, "FREEBUSY", start, None)
            end = self._zoned(uid, "FREEBUSY", end, None)
            if end < start:
                self.report.error(uid, "FREEBUSY period ends before it starts; skipped")
                continue
            found_interval = self._interval(start, end)
            if found_interval is not None:
                blocks.append(found_interval)
        return blocks


# --------------------------------------------------------------------------- writing

DEFAULT_MARKERS: Mapping[str, str] = {
    "booked": "",
    "in_progress": "[EM ATENDIMENTO] ",
    "completed": "[CONCLUÍDO] ",
    "rescheduled": "[REAGENDADO] ",
    "cancelled": "[CANCELADO] ",
}
# RFC 7986 COLOR takes a CSS3 colour name; clients that ignore it still show the marker.
DEFAULT_COLORS: Mapping[str, str] = {
    "in_progress": "green",
    "completed": "gray",
    "rescheduled": "orange",
    "cancelled": "red",
}


def session_to_ical(
    event: SessionEvent,
    *,
    prodid: str = "-//expediente//EN",
    marker: Mapping[str, str] = DEFAULT_MARKERS,
    colors: Mapping[str, str] = DEFAULT_COLORS,
    sequence: int = 0,
    stamp: datetime | None = None,
) -> bytes:
    """A VCALENDAR holding one VEVENT for ``event``, ready to PUT.

    Times are written in UTC. Rescheduled and cancelled sessions stay visible (with a marker)
    but are TRANSPARENT so the technician's time is freed; cancelled ones are also
    STATUS:CANCELLED. ``stamp`` is DTSTAMP (the daemon clock's now; default: ``event.stamp``;
    neither is a ``ValueError``, as connectors read no clock). All text goes through
    icalendar's escaping; a CR or LF in an e-mail address or in the URL raises ``ValueError``
    (those are not text and cannot be escaped).
    """
    if event.state not in _KNOWN_STATES:
        raise ValueError(f"unknown session state {event.state!r}")
    start = require_aware(event.start, "SessionEvent.start").astimezone(UTC)
    end = require_aware(event.end, "SessionEvent.end").astimezone(UTC)
    if end <= start:
        raise ValueError(f"session {event.uid!r} ends before it starts")
    summary = _clean_text(marker.get(event.state, "") + event.summary)
    stamp = stamp or event.stamp
    if stamp is None:
        raise ValueError(f"session {event.uid!r} has no DTSTAMP: set SessionEvent.stamp")
    stamped = require_aware(stamp, "stamp")
    vevent = Event.new(
        uid=_clean_text(event.uid),
        stamp=stamped.astimezone(UTC),
        start=start,
        end=end,
        summary=summary,
        description=_clean_text(event.description) or None,
        url=event.url or None,
        status=icalendar.STATUS.CANCELLED
        if event.state == "cancelled"
        else icalendar.STATUS.CONFIRMED,
        transparency=icalendar.TRANSP.OPAQUE if event.blocks_time else icalendar.TRANSP.TRANSPARENT,
        categories=[CATEGORY],
        color=colors.get(event.state),
        sequence=sequence,
        organizer=_address(event.organizer_email) if event.organizer_email else None,
        attendees=[_address(event.attendee_email, event.attendee_name)]
        if event.attendee_email
        else None,
    )
    vevent.add(STATE_PROPERTY, vText(event.state))
    if event.state == "booked" and event.alarm_minutes >= 0:
        vevent.add_component(
            Alarm.new_display(summary, trigger=-timedelta(minutes=event.alarm_minutes))
        )
    cal = Calendar()
    cal.add("PRODID", vText(_clean_text(prodid)))
    cal.add("VERSION", "2.0")
    cal.add_component(vevent)
    return bytes(cal.to_ical())


def _clean_text(text: str) -> str:
    """Line breaks as LF (icalendar escapes it as \\n) and no other control characters,
    which some servers reject and no reader shows."""
    return _CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _address(email: str, name: str = "") -> vCalAddress:
    """A mailto address that makes a scheduling server send no invitation (RFC 6638)."""
    address = vCalAddress(f"mailto:{email.strip()}")
    address.params["SCHEDULE-AGENT"] = "CLIENT"
    if name:
        address.params["CN"] = _clean_text(name).replace("\n", " ")
    return address
