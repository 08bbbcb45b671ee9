"""iCalendar text → busy intervals, and session events → iCalendar text.

Shared by the CalDAV adapter (one object at a time, :func:`describe_object`) and by
``expediente slots --busy TECH=FILE.ics`` (a whole export: :func:`parse_calendar`, then
:func:`expand_busy`).

Reading is conservative: when the data is unclear the time counts as busy, and each
doubt becomes a :class:`~connectors.base.Problem` naming the event's UID. Only times
ever leave this package: summaries, descriptions, locations and attendees are never
copied into a result or a problem message.

One job per module, in the order data flows:

* :mod:`~connectors.ical.parse`: text → a parsed calendar (free text cut first);
* :mod:`~connectors.ical.times`: one event's times made unambiguous ("How times are read");
* :mod:`~connectors.ical.recurrence`: a series' busy blocks, through the expander;
* :mod:`~connectors.ical.recurrence_internals`: the one door to recurring-ical-events' and
  dateutil's private parts (version-capped, checked by a test);
* :mod:`~connectors.ical.busy`: a calendar's busy time, one object as an ``ObjectChange``;
* :mod:`~connectors.ical.session`: our session events written and read back.
"""

from connectors.ical.busy import (
    BusyResult,
    busy_from_ics,
    describe_ics,
    describe_object,
    expand_busy,
)
from connectors.ical.parse import parse_calendar
from connectors.ical.session import (
    CATEGORY,
    DEFAULT_COLORS,
    DEFAULT_MARKERS,
    STATE_PROPERTY,
    SessionSnapshot,
    parse_session_event,
    session_to_ical,
)

# isort: split
# Private names the tests written against the single-module ical.py reach; new code and
# tests import them from their modules. (``_Adapter`` is left out on purpose: patching it
# here would patch nothing, so a stale patch fails instead of passing silently.)
from connectors.ical.parse import _VTIMEZONE as _VTIMEZONE
from connectors.ical.parse import _strip_known_timezones as _strip_known_timezones
from connectors.ical.recurrence import _is_single as _is_single
from connectors.ical.recurrence import _Reader as _Reader

__all__ = [
    "CATEGORY",
    "DEFAULT_COLORS",
    "DEFAULT_MARKERS",
    "STATE_PROPERTY",
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
