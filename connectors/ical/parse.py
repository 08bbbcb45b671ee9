"""iCalendar text → an icalendar ``Calendar``, with the parts busy time never reads cut first.

Cutting before parsing is about speed and privacy at once: free text and attendees are most
of the parsing time in real exports, and what is never parsed cannot leak into a result or
a problem message. A parser error is summarised with :func:`~connectors.base.brief` in its
``may_quote_data`` form, since the parser quotes the line it choked on.
"""

from __future__ import annotations

import re
import warnings
import zoneinfo
from typing import Any

import icalendar
from icalendar import Calendar

from connectors.base import Problem, brief

__all__ = ["parse_calendar"]

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
