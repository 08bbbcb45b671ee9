"""Our session events: written as iCalendar, and read back to see what a technician did.

:func:`session_to_ical` is the one iCalendar writer of a session event (CalDAV and the
in-memory calendar; the Google adapter writes the same markers through its own JSON).
:func:`parse_session_event` reads the master event of an object with the same time rules as
busy time, plus our ``X-EXPEDIENTE-STATE``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, cast, get_args
from zoneinfo import ZoneInfo

import icalendar
from icalendar import Alarm, Calendar, Component, Event, vCalAddress, vText

from connectors.base import SessionEvent, SessionState
from connectors.ical.times import _Report, _TimeReader, _uid_of
from rules.intervals import require_aware

__all__ = [
    "CATEGORY",
    "DEFAULT_COLORS",
    "DEFAULT_MARKERS",
    "STATE_PROPERTY",
    "SessionSnapshot",
    "parse_session_event",
    "session_to_ical",
]

STATE_PROPERTY = "X-EXPEDIENTE-STATE"
CATEGORY = "expediente"
_KNOWN_STATES: frozenset[str] = frozenset(get_args(SessionState))
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class SessionSnapshot(NamedTuple):
    """What a technician's calendar says about one of our session events now."""

    start: datetime | None
    end: datetime | None
    state: SessionState | None  # our X-EXPEDIENTE-STATE; None when absent or unknown
    cancelled: bool  # STATUS:CANCELLED


def parse_session_event(
    cal: Component, desk_tz: ZoneInfo, *, uid: str | None = None
) -> SessionSnapshot | None:
    """The master event's current time, our state marker and cancellation, or None if the
    object holds no readable master event (with ``uid``: none with that UID)."""
    report = _Report("")
    reader = _TimeReader(cal, desk_tz, report)
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
