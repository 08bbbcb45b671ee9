"""The single-event fast path of connectors.ical gives what the expander gives.

Single events (no RRULE, RDATE, EXDATE or RECURRENCE-ID) are read without
recurring-ical-events. The reference is the same code with the fast path switched off
(``_Reader.fast_single = False``), where every event goes through the expander: for each
generated calendar both must give the same intervals, the same grouping by UID and the same
problems, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connectors.ical as ical
from connectors.ical import BusyResult, busy_from_ics, recurrence
from rules.intervals import Interval

SP = ZoneInfo("America/Sao_Paulo")
BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = Interval(datetime(2026, 3, 1, tzinfo=SP), datetime(2026, 4, 1, tzinfo=SP))

# Berlin's zone as an Outlook-style VTIMEZONE under a name no database knows, so the TZID is
# resolved from the file alone.
VTIMEZONE_CUSTOM = """BEGIN:VTIMEZONE
TZID:Custom Berlin
BEGIN:STANDARD
DTSTART:16011028T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010325T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE"""

# How DTSTART/DTEND are written: (parameter text, value suffix). "floating" has neither.
ZONES = {
    "sao_paulo": (";TZID=America/Sao_Paulo", ""),
    "new_york": (";TZID=America/New_York", ""),  # DST starts 2026-03-08: gaps and folds
    "berlin": (";TZID=Europe/Berlin", ""),  # DST starts 2026-03-29
    "custom": (";TZID=Custom Berlin", ""),
    "unknown": (";TZID=Mars/Olympus_Mons", ""),  # a warning, read in the desk's zone
    "utc": ("", "Z"),
    "floating": ("", ""),
}

END_KINDS = ("dtend", "duration", "none", "same", "before")
FLAGS = (
    (),
    ("TRANSP:TRANSPARENT",),
    ("TRANSP:OPAQUE",),
    ("STATUS:CANCELLED",),
    ("STATUS:CONFIRMED",),
    ("STATUS:TENTATIVE",),
    ("X-MICROSOFT-CDO-BUSYSTATUS:FREE",),
    ("X-MICROSOFT-CDO-BUSYSTATUS:BUSY",),
    ("TRANSP:TRANSPARENT", "STATUS:CANCELLED"),
)


@contextmanager
def general_path() -> Iterator[None]:
    """Every event through the expander, as before the fast path existed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ical._Reader, "fast_single", False)
        yield


def both(text: str, desk_tz: ZoneInfo = SP, window: Interval = WINDOW) -> tuple[BusyResult, ...]:
    fast = busy_from_ics(text, window, desk_tz, calendar="ana")
    with general_path():
        general = busy_from_ics(text, window, desk_tz, calendar="ana")
    return fast, general


def assert_same(fast: BusyResult, general: BusyResult) -> None:
    # Compare instants and the zone they are given in: equal instants in different zones
    # would still be a difference for whoever prints them.
    def shown(result: BusyResult) -> list[tuple[str, str]]:
        return [(i.start.isoformat(), i.end.isoformat()) for i in result.intervals]

    assert shown(fast) == shown(general)
    assert fast.intervals == general.intervals
    assert fast.by_uid == general.by_uid
    assert fast.problems == general.problems


def calendar(*events: str, head: str = "", zones: str = "") -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    lines += [x for x in (head, zones) if x]
    lines += list(events)
    lines.append("END:VCALENDAR")
    return "\r\n".join("\r\n".join(x.splitlines()) for x in lines) + "\r\n"


def event(uid: str | None, *lines: str) -> str:
    head = [f"UID:{uid}"] if uid is not None else []
    return "\r\n".join(["BEGIN:VEVENT", *head, "DTSTAMP:20260101T000000Z", *lines, "END:VEVENT"])


def timed_lines(zone: str, start: datetime, end_kind: str, length: timedelta) -> list[str]:
    param, suffix = ZONES[zone]
    lines = [f"DTSTART{param}:{start:%Y%m%dT%H%M%S}{suffix}"]
    if end_kind == "dtend":
        lines.append(f"DTEND{param}:{start + length:%Y%m%dT%H%M%S}{suffix}")
    elif end_kind == "duration":
        lines.append(f"DURATION:{_duration(length)}")
    elif end_kind == "same":
        lines.append(f"DTEND{param}:{start:%Y%m%dT%H%M%S}{suffix}")
    elif end_kind == "before":
        lines.append(f"DTEND{param}:{start - length:%Y%m%dT%H%M%S}{suffix}")
    return lines


def all_day_lines(first: date, end_kind: str, days: int) -> list[str]:
    lines = [f"DTSTART;VALUE=DATE:{first:%Y%m%d}"]
    if end_kind == "dtend":
        lines.append(f"DTEND;VALUE=DATE:{first + timedelta(days=days):%Y%m%d}")
    elif end_kind == "duration":
        lines.append(f"DURATION:P{days}D")
    elif end_kind == "same":
        lines.append(f"DTEND;VALUE=DATE:{first:%Y%m%d}")
    elif end_kind == "before":
        lines.append(f"DTEND;VALUE=DATE:{first - timedelta(days=days):%Y%m%d}")
    return lines


def _duration(length: timedelta) -> str:
    minutes = int(length.total_seconds()) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    if hours or mins or not days:
        text += "T" + (f"{hours}H" if hours else "") + (f"{mins}M" if mins or not hours else "")
    return text


# Around the window's edges (28 Feb – 2 Apr) and both DST changes inside it.
starts = st.datetimes(min_value=datetime(2026, 2, 27), max_value=datetime(2026, 4, 2, 23, 59)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
lengths = st.sampled_from(
    [
        timedelta(0),
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2, minutes=30),
        timedelta(days=1),
        timedelta(days=2, hours=3),
    ]
)


@st.composite
def single_events(draw: st.DrawFn, uid: str | None) -> tuple[str, bool]:
    """One single VEVENT's text, and whether it uses the custom VTIMEZONE."""
    flags = list(draw(st.sampled_from(FLAGS)))
    end_kind = draw(st.sampled_from(END_KINDS))
    if draw(st.booleans()):
        first = draw(starts).date()
        lines = all_day_lines(first, end_kind, draw(st.integers(1, 3)))
        custom = False
    else:
        zone = draw(st.sampled_from(sorted(ZONES)))
        lines = timed_lines(zone, draw(starts), end_kind, draw(lengths))
        custom = zone == "custom"
    return event(uid, *lines, *flags), custom


@st.composite
def calendars(draw: st.DrawFn) -> str:
    count = draw(st.integers(1, 4))
    texts: list[str] = []
    custom = False
    for n in range(count):
        uid = None if draw(st.integers(0, 5)) == 0 else f"ev-{n}"
        text, uses_custom = draw(single_events(uid))
        texts.append(text)
        custom = custom or uses_custom
    head = draw(st.sampled_from(["", "X-WR-TIMEZONE:Europe/Berlin", "X-WR-TIMEZONE:Nowhere/X"]))
    return calendar(*texts, head=head, zones=VTIMEZONE_CUSTOM if custom else "")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=calendars(), desk_tz=st.sampled_from([SP, BERLIN]))
def test_fast_path_matches_the_expander(text: str, desk_tz: ZoneInfo) -> None:
    fast, general = both(text, desk_tz)
    assert_same(fast, general)


# A table of the cases named in the module docs, so each is checked on every run whatever
# Hypothesis draws.
TABLE = {
    "all-day, DTEND": all_day_lines(date(2026, 3, 10), "dtend", 2),
    "all-day, no end": all_day_lines(date(2026, 3, 10), "none", 1),
    "all-day, DTEND = DTSTART": all_day_lines(date(2026, 3, 10), "same", 1),
    "all-day, DURATION": all_day_lines(date(2026, 3, 10), "duration", 3),
    "all-day, ends on the window's first day": all_day_lines(date(2026, 2, 28), "dtend", 1),
    "timed, TZID": timed_lines("sao_paulo", datetime(2026, 3, 10, 9), "dtend", timedelta(hours=1)),
    "timed, VTIMEZONE only": timed_lines(
        "custom", datetime(2026, 3, 29, 1, 30), "dtend", timedelta(hours=2)
    ),
    "timed, unknown TZID": timed_lines(
        "unknown", datetime(2026, 3, 10, 9), "dtend", timedelta(hours=1)
    ),
    "timed, UTC": timed_lines("utc", datetime(2026, 3, 10, 12), "dtend", timedelta(hours=1)),
    "timed, floating": timed_lines(
        "floating", datetime(2026, 3, 10, 9), "dtend", timedelta(hours=1)
    ),
    "timed, DURATION": timed_lines(
        "berlin", datetime(2026, 3, 10, 9), "duration", timedelta(minutes=45)
    ),
    "timed, DURATION over DST": timed_lines(
        "new_york", datetime(2026, 3, 7, 23), "duration", timedelta(hours=5)
    ),
    "timed, starts in a DST gap": timed_lines(
        "new_york", datetime(2026, 3, 8, 2, 30), "dtend", timedelta(hours=1)
    ),
    "timed, no end": timed_lines("sao_paulo", datetime(2026, 3, 10, 9), "none", timedelta(0)),
    "timed, zero length": timed_lines("utc", datetime(2026, 3, 10, 9), "same", timedelta(0)),
    "timed, ends before it starts": timed_lines(
        "sao_paulo", datetime(2026, 3, 10, 9), "before", timedelta(hours=1)
    ),
    "timed, ends at the window's start": timed_lines(
        "sao_paulo", datetime(2026, 2, 28, 23), "dtend", timedelta(hours=1)
    ),
    "timed, starts at the window's end": timed_lines(
        "sao_paulo", datetime(2026, 4, 1), "dtend", timedelta(hours=1)
    ),
    "timed, spans the whole window": timed_lines(
        "utc", datetime(2026, 2, 1), "dtend", timedelta(days=90)
    ),
    "transparent": [
        *timed_lines("utc", datetime(2026, 3, 10, 12), "dtend", timedelta(hours=1)),
        "TRANSP:TRANSPARENT",
    ],
    "cancelled": [
        *timed_lines("utc", datetime(2026, 3, 10, 12), "dtend", timedelta(hours=1)),
        "STATUS:CANCELLED",
    ],
    "Outlook free": [
        *all_day_lines(date(2026, 3, 10), "dtend", 1),
        "X-MICROSOFT-CDO-BUSYSTATUS:FREE",
    ],
    "no DTSTART": ["DTEND:20260310T100000Z"],
    "broken DTSTART": ["DTSTART:2026-03-10", "DTEND:20260310T100000Z"],
    "broken DURATION": ["DTSTART:20260310T090000Z", "DURATION:soon"],
}


@pytest.mark.parametrize("lines", TABLE.values(), ids=TABLE.keys())
@pytest.mark.parametrize("head", ["", "X-WR-TIMEZONE:America/New_York"])
@pytest.mark.parametrize("desk_tz", [SP, BERLIN], ids=["desk-SP", "desk-Berlin"])
def test_table(lines: list[str], head: str, desk_tz: ZoneInfo) -> None:
    text = calendar(event("ev", *lines), head=head, zones=VTIMEZONE_CUSTOM)
    fast, general = both(text, desk_tz)
    assert_same(fast, general)


def test_single_events_skip_the_expander(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the fast path: no adapter, no expander for a plain event."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the expander was used for a single event")

    monkeypatch.setattr(recurrence, "_Adapter", refuse)
    text = calendar(
        event("a", "DTSTART:20260310T090000Z", "DTEND:20260310T100000Z"),
        event("b", *all_day_lines(date(2026, 3, 11), "none", 1)),
    )
    result = busy_from_ics(text, WINDOW, SP)
    assert [(i.start, i.end) for i in result.intervals] == [
        (datetime(2026, 3, 10, 6, tzinfo=SP), datetime(2026, 3, 10, 7, tzinfo=SP)),
        (datetime(2026, 3, 11, tzinfo=SP), datetime(2026, 3, 12, tzinfo=SP)),
    ]


@pytest.mark.parametrize(
    "extra",
    [
        "RRULE:FREQ=DAILY;COUNT=2",
        "RDATE:20260312T090000Z",
        "EXDATE:20260310T090000Z",
        "RECURRENCE-ID:20260310T090000Z",
    ],
)
def test_recurrence_properties_leave_the_fast_path(extra: str) -> None:
    """Anything that could add or remove an occurrence goes to the expander as before."""
    text = calendar(event("r", "DTSTART:20260310T090000Z", "DTEND:20260310T100000Z", extra))
    cal, _ = ical.parse_calendar(text)
    assert cal is not None
    assert not ical._is_single(cal.walk("VEVENT")[0])
    fast, general = both(text)
    assert_same(fast, general)
