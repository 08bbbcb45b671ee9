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

from icalendar import Component, vCalAddress, vDDDTypes, vDuration, vText, vUri

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

    Every value is written by icalendar's own types (``vText``, ``vUri``, ``vCalAddress``,
    ``vDDDTypes``, ``vDuration``); the lines are put together and folded here rather than by
    building ``Event`` and ``Calendar`` components. The outbox writes one event per booking
    and per change of state, and the components' machinery was a third of its CPU, beside
    the request on the daemon's shared interpreter. A test holds these lines, and their
    folds, to what icalendar's components write for the same event.
    """
    if event.state not in _KNOWN_STATES:
        raise ValueError(f"unknown session state {event.state!r}")
    start = require_aware(event.start, "SessionEvent.start").astimezone(UTC)
    end = require_aware(event.end, "SessionEvent.end").astimezone(UTC)
    if end <= start:
        raise ValueError(f"session {event.uid!r} ends before it starts")
    summary = _text(marker.get(event.state, "") + event.summary)
    stamp = stamp or event.stamp
    if stamp is None:
        raise ValueError(f"session {event.uid!r} has no DTSTAMP: set SessionEvent.stamp")
    stamped = require_aware(stamp, "stamp").astimezone(UTC)
    cancelled = event.state == "cancelled"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{_text(prodid)}",
        "BEGIN:VEVENT",
        f"SUMMARY:{summary}",
        f"DTSTART:{_utc(start)}",
        f"DTEND:{_utc(end)}",
        f"DTSTAMP:{_utc(stamped)}",
        f"UID:{_text(event.uid)}",
        f"SEQUENCE:{int(sequence)}",
        f"CATEGORIES:{_text(CATEGORY)}",
    ]
    if description := _text(event.description):
        lines.append(f"DESCRIPTION:{description}")
    lines.append("STATUS:CANCELLED" if cancelled else "STATUS:CONFIRMED")
    lines.append("TRANSP:OPAQUE" if event.blocks_time else "TRANSP:TRANSPARENT")
    if event.url:
        lines.append(f"URL:{vUri(event.url).to_ical().decode()}")
    if color := colors.get(event.state):
        lines.append(f"COLOR:{_text(color)}")
    if event.organizer_email:
        lines.append(_address_line("ORGANIZER", event.organizer_email))
    if event.attendee_email:
        lines.append(_address_line("ATTENDEE", event.attendee_email, event.attendee_name))
    lines.append(f"{STATE_PROPERTY}:{_text(event.state)}")
    if event.state == "booked" and event.alarm_minutes >= 0:
        trigger = vDuration(-timedelta(minutes=event.alarm_minutes)).to_ical().decode()  # type: ignore[no-untyped-call]
        lines += [
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            f"DESCRIPTION:{summary}",
            f"TRIGGER:{trigger}",
            "END:VALARM",
        ]
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return b"\r\n".join(_fold(line) for line in lines)


def _text(text: str) -> str:
    """``text`` as an iCalendar TEXT value: cleaned, then escaped by icalendar."""
    return str(vText(_clean_text(text)).to_ical().decode())


def _utc(moment: datetime) -> str:
    return str(vDDDTypes(moment).to_ical().decode())


def _address_line(name: str, email: str, person: str = "") -> str:
    address = _address(email, person)
    return f"{name};{address.params.to_ical().decode()}:{address.to_ical().decode()}"


def _fold(line: str) -> bytes:
    """RFC 5545 folding as icalendar does it: each piece the most whole UTF-8 characters
    that fit 74 octets, and a TEXT or parameter escape (``\\``, ``^``) never ending one."""
    data = line.encode()
    parts = []
    start = 0
    while len(data) - start >= 75:
        end = start + 74
        while data[end] & 0xC0 == 0x80:  # inside a character: cut before it
            end -= 1
        if data[end - 1] in b"\\^":
            end -= 1
        parts.append(data[start:end])
        start = end
    parts.append(data[start:])
    return b"\r\n ".join(parts)


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
