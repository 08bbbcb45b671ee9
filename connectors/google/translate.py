"""Google's event JSON in our terms: a series as iCalendar for :mod:`connectors.ical`.

What blocks time: every event except ``transparency: transparent``, ``status:
cancelled`` (deleted), events the calendar's owner declined (their attendee entry with
``self: true`` says ``responseStatus: declined``) and working-location events. All-day
events (``start.date``) block whole days in the desk's zone.

Bad data from the server is read conservatively and reported as a
:class:`~connectors.base.Problem` naming the calendar, the event's UID and its Google id;
the sync goes on:

* no end, an unreadable end, or an end before the start: the event blocks one hour from
  its start (a day, for an all-day event);
* an unknown ``timeZone``: the time is read with the UTC offset written in the
  ``dateTime`` (exact for a single event; a recurring one repeats at that offset);
* an unreadable start, or a recurrence line that cannot be read: the event (or that line)
  is skipped and reported as an error, so the caller keeps the object's previous blocks;
* endless or absurd rules (``FREQ=MINUTELY``) cost only what the window holds, as for
  CalDAV;
* huge free text (a 2 MB description) is never parsed — only times are read — and is
  reported as a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar as ICalendar
from icalendar import Event as IEvent
from icalendar import vRecur, vText

from connectors.base import ObjectChange, Problem
from connectors.ical import STATE_PROPERTY, describe_ics
from rules.intervals import Interval

# Free text this long is no calendar entry a person typed; it is ignored, and said so.
LARGE_TEXT = 100_000
# Where a session event keeps its UID and state: extendedProperties.private (sessions.py).
UID_KEY = "expedienteUid"
STATE_KEY = "expedienteState"
_Note = tuple[Literal["warning", "error"], str]  # a doubt met while reading one series
_RECURRENCE_LINE = re.compile(r"(RRULE|EXRULE|RDATE|EXDATE)([;:])(.*)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FREE_EVENT_TYPES = frozenset({"workingLocation"})


def _describe_series(
    href: str,
    master: dict[str, Any] | None,
    exceptions: list[dict[str, Any]],
    expand: Interval,
    desk_tz: ZoneInfo,
    calendar: str,
) -> ObjectChange:
    """One series (or single event) as an ObjectChange with its busy blocks."""
    head = master if master is not None else exceptions[0]
    uid = _uid_of(head) or href
    notes: list[_Note] = []
    text = _series_ical(master, exceptions, desk_tz, uid, notes)
    change = describe_ics(
        text, expand, desk_tz, href=href, etag=_str(head.get("etag")), calendar=calendar
    )
    problems = [
        Problem(calendar, uid, f"{message} (event {href})", severity) for severity, message in notes
    ]
    problems += [
        Problem(p.calendar, p.uid or uid, f"{p.message} (event {href})", p.severity)
        for p in change.problems
    ]
    private = _private(head) if master is not None else {}
    cancelled = change.cancelled or private.get(STATE_KEY) == "cancelled"
    return replace(change, uid=uid, cancelled=cancelled, problems=tuple(problems))


def _group(
    items: Iterable[dict[str, Any]],
) -> dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]]:
    """Events by series: master id → (master or None, exceptions), in listing order."""
    series: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {}
    for item in items:
        parent = item.get("recurringEventId")
        if isinstance(parent, str) and parent and parent != item["id"]:
            master, exceptions = series.get(parent, (None, []))
            series[parent] = (master, [*exceptions, item])
        else:
            _, exceptions = series.get(item["id"], (None, []))
            series[item["id"]] = (item, exceptions)
    return series


def _private(item: dict[str, Any]) -> dict[str, Any]:
    props = item.get("extendedProperties")
    private = props.get("private") if isinstance(props, dict) else None
    return private if isinstance(private, dict) else {}


def _uid_of(item: dict[str, Any]) -> str | None:
    for value in (_private(item).get(UID_KEY), item.get("iCalUID")):
        if isinstance(value, str) and value:
            return value
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _blocks(item: dict[str, Any]) -> bool:
    """Whether the event holds time, by Google's fields (status handled by the caller)."""
    if item.get("transparency") == "transparent":
        return False
    if item.get("eventType") in _FREE_EVENT_TYPES:
        return False
    for attendee in item.get("attendees") or ():
        if isinstance(attendee, dict) and attendee.get("self") is True:
            return attendee.get("responseStatus") != "declined"
    return True


def _series_ical(
    master: dict[str, Any] | None,
    exceptions: list[dict[str, Any]],
    desk_tz: ZoneInfo,
    uid: str,
    notes: list[_Note],
) -> bytes:
    """The series as a VCALENDAR that :func:`describe_ics` reads: times and recurrence only.

    Free text is never copied; cancelled instances become EXDATEs; an exception whose
    original time cannot be read stands alone (its time and the master's both block).
    """
    cal = ICalendar()
    cal.add("PRODID", "-//expediente//google//EN")
    cal.add("VERSION", "2.0")
    recurrence: list[str] = []
    exdates: list[date | datetime] = []
    overrides: list[IEvent] = []
    for item in exceptions:
        original = _when(item.get("originalStartTime"), "originalStartTime", desk_tz, notes)
        if item.get("status") == "cancelled":
            if original is not None and master is not None:
                exdates.append(original)
            continue
        override = _vevent(item, uid, desk_tz, notes)
        if override is None:
            continue
        if original is None or master is None:
            if master is not None:
                notes.append(
                    (
                        "warning",
                        f"instance {item['id']} has no readable original time; "
                        "it blocks its own time and the series' too",
                    )
                )
                override["UID"] = vText(f"{uid}#{item['id']}")
        else:
            override.add("RECURRENCE-ID", original)
        overrides.append(override)
    if master is not None:
        main = _vevent(master, uid, desk_tz, notes)
        if main is not None:
            recurrence = _recurrence(master, notes)
            for value in exdates:
                main.add("EXDATE", value)
            cal.add_component(main)
    for override in overrides:
        cal.add_component(override)
    text = bytes(cal.to_ical())
    if recurrence:
        marker = b"END:VEVENT\r\n"
        lines = "".join(line + "\r\n" for line in recurrence).encode()
        text = text.replace(marker, lines + marker, 1)
    return text


def _vevent(item: dict[str, Any], uid: str, desk_tz: ZoneInfo, notes: list[_Note]) -> IEvent | None:
    eid = item["id"]
    for field in ("description", "summary", "location"):
        value = item.get(field)
        if isinstance(value, str) and len(value) > LARGE_TEXT:
            notes.append(
                ("warning", f"{field} of event {eid} is {len(value)} characters; text ignored")
            )
    start = _when(item.get("start"), "start", desk_tz, notes)
    if start is None:
        notes.append(("error", f"event {eid} has no readable start; skipped"))
        return None
    end = _when(item.get("end"), "end", desk_tz, notes)
    if end is not None and (isinstance(end, datetime) != isinstance(start, datetime)):
        notes.append(("warning", f"event {eid} mixes a date and a date-time; end ignored"))
        end = None
    if end is not None and (end < start or (end == start and isinstance(start, datetime))):
        notes.append(("warning", f"event {eid} ends before it starts; end ignored"))
        end = None
    event = IEvent()
    event.add("UID", uid)
    event.add("DTSTAMP", datetime(2000, 1, 1, tzinfo=UTC))
    event.add("DTSTART", start)
    if end is not None:
        event.add("DTEND", end)
    if not _blocks(item):
        event.add("TRANSP", "TRANSPARENT")
    state = _private(item).get(STATE_KEY)
    if isinstance(state, str) and state:
        event.add(STATE_PROPERTY, vText(_CONTROL.sub("", state)))
        if state == "cancelled":
            event.add("STATUS", "CANCELLED")
    return event


def _when(value: Any, field: str, desk_tz: ZoneInfo, notes: list[_Note]) -> date | datetime | None:
    """A Google EventDateTime as a date or an aware datetime (None, noted, if unreadable)."""
    if value is None:
        return None  # absence is judged by the reader (no end: one hour)
    if not isinstance(value, dict):
        notes.append(("error", f"{field} is not an object"))
        return None
    if "dateTime" in value and value["dateTime"] is not None:
        try:
            moment = datetime.fromisoformat(str(value["dateTime"]))
        except ValueError:
            notes.append(
                ("error", f"{field}.dateTime {str(value['dateTime'])[:40]!r} is unreadable")
            )
            return None
        zone_name = value.get("timeZone")
        zone: ZoneInfo | None = None
        if isinstance(zone_name, str) and zone_name:
            try:
                zone = ZoneInfo(zone_name)
            except (ValueError, KeyError, OSError):
                notes.append(
                    (
                        "warning",
                        f"{field}.timeZone {zone_name[:60]!r} is not a known time zone; "
                        "the time's own UTC offset is used",
                    )
                )
        if moment.tzinfo is None:
            if zone is None:
                notes.append(
                    (
                        "warning",
                        f"{field}.dateTime has no offset and no known time zone; "
                        "read in the desk's time zone",
                    )
                )
                zone = desk_tz
            return moment.replace(tzinfo=zone)
        return moment.astimezone(zone) if zone is not None else moment.astimezone(UTC)
    if "date" in value and value["date"] is not None:
        try:
            return date.fromisoformat(str(value["date"]))
        except ValueError:
            notes.append(("error", f"{field}.date {str(value['date'])[:40]!r} is unreadable"))
            return None
    notes.append(("error", f"{field} has neither date nor dateTime"))
    return None


def _recurrence(master: dict[str, Any], notes: list[_Note]) -> list[str]:
    """The master's recurrence lines that are safe to place in a VEVENT (no line breaks,
    a known property, a readable RRULE); the others are noted and left out."""
    lines = master.get("recurrence") or []
    if not isinstance(lines, list):
        notes.append(("error", f"recurrence of event {master['id']} is not a list; ignored"))
        return []
    kept: list[str] = []
    for line in lines:
        text = str(line)
        match = _RECURRENCE_LINE.fullmatch(text)
        if _CONTROL.search(text) or match is None:
            notes.append(
                ("error", f"recurrence line {text[:60]!r} is not RRULE/RDATE/EXDATE; ignored")
            )
            continue
        if match.group(1).upper() in ("RRULE", "EXRULE"):
            rule = match.group(3) if match.group(2) == ":" else match.group(3).partition(":")[2]
            try:
                vRecur.from_ical(rule)
            except ValueError:
                notes.append(("error", f"recurrence rule {text[:60]!r} is unreadable; ignored"))
                continue
        kept.append(text)
    return kept


def _parse_instant(text: Any) -> datetime:
    """An RFC 3339 time with an offset (ValueError without one)."""
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment
