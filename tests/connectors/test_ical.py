"""iCalendar → busy intervals, and session events → iCalendar, on real .ics text."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import ical
from connectors.base import SessionEvent
from connectors.ical import (
    BusyResult,
    busy_from_ics,
    describe_ics,
    describe_object,
    expand_busy,
    parse_calendar,
    parse_session_event,
    session_to_ical,
)
from connectors.ical import session as ical_session
from connectors.ical.session import DEFAULT_COLORS, DEFAULT_MARKERS
from rules.intervals import Interval, NaiveDatetimeError

ICS = Path(__file__).parent / "ics"
SP = ZoneInfo("America/Sao_Paulo")  # UTC-3 all year since 2019
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def sp(*args: int) -> datetime:
    return datetime(*args, tzinfo=SP)  # type: ignore[misc, arg-type]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc, arg-type]


MARCH = Interval(sp(2026, 3, 1), sp(2026, 4, 1))


def vcal(*components: str, head: str = "") -> str:
    """A VCALENDAR around the given components, with CRLF line ends as servers send."""
    body = "\n".join(textwrap.dedent(c).strip() for c in components)
    head = textwrap.dedent(head).strip()
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n"
    text += (head + "\n" if head else "") + body + "\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n")


def vevent(uid: str, *lines: str) -> str:
    props = "\n".join(lines)
    return f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20260101T000000Z\n{props}\nEND:VEVENT"


def busy(text: str | bytes, window: Interval = MARCH, desk_tz: ZoneInfo = SP) -> BusyResult:
    return busy_from_ics(text, window, desk_tz, calendar="ana")


def spans(result: BusyResult, uid: str | None = None) -> list[tuple[datetime, datetime]]:
    intervals = result.intervals if uid is None else result.by_uid.get(uid, [])
    return [(i.start, i.end) for i in intervals]


def messages(result: BusyResult) -> list[tuple[str | None, str, str]]:
    return [(p.uid, p.severity, p.message) for p in result.problems]


# --------------------------------------------------------------------------- whole files


@pytest.mark.parametrize(
    "data",
    [
        b"",
        "   \r\n",
        "<html><body>Please log in</body></html>",
        b"\x00\xff\xfe binary garbage",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:cut-off\r\n",
        "BEGIN:VCALENDAR\r\nthis is not a content line\r\nEND:VCALENDAR\r\n",
    ],
    ids=["empty", "blank", "html", "binary", "truncated", "bad-line"],
)
def test_a_broken_file_is_one_error_problem_not_an_exception(data: str | bytes) -> None:
    cal, problems = parse_calendar(data, calendar="ana")
    assert cal is None
    assert [(p.calendar, p.severity) for p in problems] == [("ana", "error")]
    result = busy(data)
    assert result.intervals == []
    assert [p.severity for p in result.problems] == ["error"]


def test_parser_errors_do_not_quote_the_file() -> None:
    data = vcal("SECRET PATIENT NAME without a colon")
    cal, problems = parse_calendar(data)
    assert cal is None
    assert "SECRET" not in problems[0].message


def test_concatenated_calendars_and_bare_events_are_read_with_a_warning() -> None:
    one = vcal(vevent("a", "DTSTART:20260302T130000Z", "DTEND:20260302T140000Z"))
    two = vcal(vevent("b", "DTSTART:20260303T130000Z", "DTEND:20260303T140000Z"))
    result = busy(one + two)
    assert spans(result) == [(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14)),
                             (utc(2026, 3, 3, 13), utc(2026, 3, 3, 14))]  # fmt: skip
    assert [p.severity for p in result.problems] == ["warning"]

    bare = vevent("c", "DTSTART:20260304T130000Z", "DTEND:20260304T140000Z")
    result = busy(bare.replace("\n", "\r\n") + "\r\n")
    assert spans(result) == [(utc(2026, 3, 4, 13), utc(2026, 3, 4, 14))]
    assert "outside any VCALENDAR" in result.problems[0].message


# --------------------------------------------------------------------------- time zones


def test_utc_iana_vtimezone_and_floating_times() -> None:
    data = vcal(
        """
        BEGIN:VTIMEZONE
        TZID:Asia/Kolkata-ish
        BEGIN:STANDARD
        DTSTART:19700101T000000
        TZOFFSETFROM:+0530
        TZOFFSETTO:+0530
        END:STANDARD
        END:VTIMEZONE
        """,
        vevent("utc", "DTSTART:20260302T130000Z", "DTEND:20260302T140000Z"),
        vevent(
            "iana-no-vtimezone",
            "DTSTART;TZID=Europe/Berlin:20260302T100000",
            "DTEND;TZID=Europe/Berlin:20260302T110000",
        ),
        vevent(
            "own-vtimezone",
            "DTSTART;TZID=Asia/Kolkata-ish:20260302T100000",
            "DTEND;TZID=Asia/Kolkata-ish:20260302T110000",
        ),
        vevent("floating", "DTSTART:20260302T100000", "DTEND:20260302T110000"),
    )
    result = busy(data)
    assert result.problems == []
    assert spans(result, "utc") == [(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14))]
    assert spans(result, "iana-no-vtimezone") == [(utc(2026, 3, 2, 9), utc(2026, 3, 2, 10))]
    assert spans(result, "own-vtimezone") == [(utc(2026, 3, 2, 4, 30), utc(2026, 3, 2, 5, 30))]
    # Floating: the desk's wall clock, wherever the desk is.
    assert spans(result, "floating") == [(sp(2026, 3, 2, 10), sp(2026, 3, 2, 11))]
    in_berlin = busy(data, desk_tz=BERLIN)
    assert spans(in_berlin, "floating") == [(utc(2026, 3, 2, 9), utc(2026, 3, 2, 10))]


def test_results_are_aware_and_compare_across_zones() -> None:
    result = busy(vcal(vevent("a", "DTSTART:20260302T130000Z", "DTEND:20260302T140000Z")))
    (interval,) = result.intervals
    assert interval.start.tzinfo is not None
    assert interval.start == sp(2026, 3, 2, 10) == utc(2026, 3, 2, 13)
    assert interval.start.utcoffset() == timedelta(hours=-3)  # expressed in the desk's zone


def test_globally_unique_tzid_is_read_without_a_warning() -> None:
    # pytest turns warnings into errors here; icalendar warns when it strips the prefix.
    tzid = "/mozilla.org/20050126_1/America/Sao_Paulo"
    data = vcal(
        vevent("moz", f"DTSTART;TZID={tzid}:20260302T100000", f"DTEND;TZID={tzid}:20260302T110000")
    )
    result = busy(data)
    assert spans(result) == [(sp(2026, 3, 2, 10), sp(2026, 3, 2, 11))]


def test_unknown_tzid_is_reported_and_read_in_the_desk_zone() -> None:
    data = vcal(
        vevent(
            "mars",
            "DTSTART;TZID=Mars/Olympus_Mons:20260302T100000",
            "DTEND;TZID=Mars/Olympus_Mons:20260302T110000",
        )
    )
    result = busy(data)
    assert spans(result) == [(sp(2026, 3, 2, 10), sp(2026, 3, 2, 11))]
    assert messages(result) == [
        ("mars", "warning", "unknown TZID 'Mars/Olympus_Mons'; its times are read in the "
         "desk's time zone")
    ]  # fmt: skip


def test_outlook_export_windows_and_customized_zones() -> None:
    result = busy((ICS / "outlook_export.ics").read_bytes())
    assert result.problems == []
    # "E. South America Standard Time" is São Paulo; the "show as free" lunch is free;
    # "Customized Time Zone" follows its own US rules: 9:00 on 10 March is EDT (UTC-4).
    assert spans(result) == [
        (sp(2026, 3, 10, 10), sp(2026, 3, 10, 11)),
        (utc(2026, 3, 10, 13), utc(2026, 3, 10, 14)),
    ]


def test_a_customized_time_zone_is_read_from_its_own_file_only() -> None:
    """icalendar caches VTIMEZONEs per process by TZID; two technicians' Outlook files both
    say "Customized Time Zone" and mean different zones."""

    def outlook(offset: str) -> str:
        return vcal(
            f"""
            BEGIN:VTIMEZONE
            TZID:Customized Time Zone
            BEGIN:STANDARD
            DTSTART:16010101T000000
            TZOFFSETFROM:{offset}
            TZOFFSETTO:{offset}
            END:STANDARD
            END:VTIMEZONE
            """,
            vevent(
                "x",
                "DTSTART;TZID=Customized Time Zone:20260302T100000",
                "DTEND;TZID=Customized Time Zone:20260302T110000",
            ),
        )

    assert spans(busy(outlook("+0530")))[0][0] == utc(2026, 3, 2, 4, 30)
    assert spans(busy(outlook("-0300")))[0][0] == utc(2026, 3, 2, 13)
    without_definition = vcal(
        vevent(
            "y",
            "DTSTART;TZID=Customized Time Zone:20260302T100000",
            "DTEND;TZID=Customized Time Zone:20260302T110000",
        )
    )
    result = busy(without_definition)
    assert spans(result) == [(sp(2026, 3, 2, 10), sp(2026, 3, 2, 11))]
    assert [p.uid for p in result.problems] == ["y"]


NEW_YORK_VTIMEZONE = """
    BEGIN:VTIMEZONE
    TZID:America/New_York
    BEGIN:DAYLIGHT
    TZOFFSETFROM:-0500
    TZOFFSETTO:-0400
    DTSTART:19700308T020000
    RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
    END:DAYLIGHT
    BEGIN:STANDARD
    TZOFFSETFROM:-0400
    TZOFFSETTO:-0500
    DTSTART:19701101T020000
    RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
    END:STANDARD
    END:VTIMEZONE
    """


@pytest.mark.parametrize("as_bytes", [False, True])
def test_vtimezones_of_iana_zones_are_cut_before_parsing_and_times_stay_exact(
    as_bytes: bool,
) -> None:
    """They are a third of what Radicale stores per object and icalendar ignores them; a
    definition under any other name decides times, and is kept."""
    custom = NEW_YORK_VTIMEZONE.replace("TZID:America/New_York", "TZID:Eastern (custom)")
    data = vcal(
        NEW_YORK_VTIMEZONE,
        custom,
        vevent(
            "iana",
            "DTSTART;TZID=America/New_York:20260310T090000",
            "DTEND;TZID=America/New_York:20260310T100000",
        ),
        vevent(
            "custom",
            "DTSTART;TZID=Eastern (custom):20260310T090000",
            "DTEND;TZID=Eastern (custom):20260310T100000",
        ),
    )
    folded = data.replace("TZID:America/New_York\r\n", "TZID:America/New\r\n _York\r\n", 1)
    assert folded != data
    raw: str | bytes = folded.encode() if as_bytes else folded
    cal, problems = parse_calendar(raw)
    assert cal is not None and problems == []
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Eastern (custom)"]
    kept, _ = parse_calendar(raw, keep_text=True)
    assert kept is not None and len(kept.walk("VTIMEZONE")) == 2
    result = busy(raw)
    assert result.problems == []
    assert spans(result, "iana") == [(utc(2026, 3, 10, 13), utc(2026, 3, 10, 14))]  # EDT
    assert spans(result, "custom") == [(utc(2026, 3, 10, 13), utc(2026, 3, 10, 14))]


def test_a_vtimezone_without_its_end_swallows_no_event() -> None:
    """The cut spans BEGIN:VTIMEZONE to the next END:VTIMEZONE: here that would take event
    "a" with it and turn an unreadable file (whose busy time the adapter keeps) into a
    readable one without "a"."""
    broken = NEW_YORK_VTIMEZONE.replace("END:VTIMEZONE", "")
    data = vcal(
        broken,
        vevent("a", "DTSTART:20260302T130000Z", "DTEND:20260302T140000Z"),
        NEW_YORK_VTIMEZONE,
        vevent("b", "DTSTART:20260303T130000Z", "DTEND:20260303T140000Z"),
    )
    span = ical._VTIMEZONE.search(data)
    assert span is not None and "UID:a" in span.group(0)
    assert ical._strip_known_timezones(data) == data
    assert parse_calendar(data)[0] is None and parse_calendar(data, keep_text=True)[0] is None


def test_google_export_with_x_wr_timezone() -> None:
    result = busy((ICS / "google_export.ics").read_bytes())
    assert result.problems == []
    # UTC times in a Google export recur in X-WR-TIMEZONE: 9:00 New York is 14:00Z before
    # DST (8 March) and 13:00Z after. 9 March was moved to 11:00, 16 March is excluded.
    assert spans(result, "weekly-standup@google.com") == [
        (utc(2026, 3, 2, 14), utc(2026, 3, 2, 15)),
        (utc(2026, 3, 9, 15), utc(2026, 3, 9, 16)),
        (utc(2026, 3, 23, 13), utc(2026, 3, 23, 14)),
    ]
    # Floating times are in X-WR-TIMEZONE (EST on 4 March), not in the desk's zone.
    assert spans(result, "floating-lunch@google.com") == [
        (utc(2026, 3, 4, 17), utc(2026, 3, 4, 18))
    ]
    # All-day blocks the desk's day; the transparent birthday is free.
    assert spans(result, "day-off@google.com") == [(sp(2026, 3, 5), sp(2026, 3, 6))]
    assert "birthday@google.com" not in result.by_uid


def test_an_unknown_x_wr_timezone_falls_back_to_the_desk_zone() -> None:
    data = vcal(
        vevent("f", "DTSTART:20260302T100000", "DTEND:20260302T110000"),
        head="X-WR-TIMEZONE:Atlantis/Capital",
    )
    result = busy(data)
    assert spans(result) == [(sp(2026, 3, 2, 10), sp(2026, 3, 2, 11))]
    assert [(p.uid, p.severity) for p in result.problems] == [(None, "warning")]


# --------------------------------------------------------------------------- lengths


def test_all_day_events_block_whole_desk_days() -> None:
    data = vcal(
        vevent("one", "DTSTART;VALUE=DATE:20260302", "DTEND;VALUE=DATE:20260303"),
        vevent("three", "DTSTART;VALUE=DATE:20260310", "DTEND;VALUE=DATE:20260313"),
        vevent("no-end", "DTSTART;VALUE=DATE:20260316"),
        vevent("same-end", "DTSTART;VALUE=DATE:20260318", "DTEND;VALUE=DATE:20260318"),
        vevent("duration", "DTSTART;VALUE=DATE:20260320", "DURATION:P2D"),
    )
    result = busy(data)
    assert result.problems == []
    assert spans(result, "one") == [(sp(2026, 3, 2), sp(2026, 3, 3))]
    assert spans(result, "three") == [(sp(2026, 3, 10), sp(2026, 3, 13))]
    assert spans(result, "no-end") == [(sp(2026, 3, 16), sp(2026, 3, 17))]
    assert spans(result, "same-end") == [(sp(2026, 3, 18), sp(2026, 3, 19))]
    assert spans(result, "duration") == [(sp(2026, 3, 20), sp(2026, 3, 22))]
    berlin = busy(data, desk_tz=BERLIN)
    assert spans(berlin, "one") == [(utc(2026, 3, 1, 23), utc(2026, 3, 2, 23))]


def test_timed_event_without_end_blocks_one_hour_with_a_warning() -> None:
    result = busy(vcal(vevent("pin", "DTSTART:20260302T130000Z")))
    assert spans(result) == [(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14))]
    assert [(p.uid, p.severity) for p in result.problems] == [("pin", "warning")]


def test_duration_and_zero_length_events() -> None:
    data = vcal(
        vevent("dur", "DTSTART:20260302T130000Z", "DURATION:PT1H30M"),
        vevent("zero", "DTSTART:20260303T130000Z", "DTEND:20260303T130000Z"),
    )
    result = busy(data)
    assert spans(result) == [(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14, 30))]
    assert result.problems == []


# --------------------------------------------------------------------------- recurrence


def test_rrule_count_until_and_dst() -> None:
    data = vcal(
        vevent(
            "count",
            "DTSTART;TZID=Europe/Berlin:20260323T100000",
            "DTEND;TZID=Europe/Berlin:20260323T110000",
            "RRULE:FREQ=DAILY;COUNT=3",
        ),
        vevent(
            "until",
            "DTSTART:20260302T130000Z",
            "DTEND:20260302T140000Z",
            "RRULE:FREQ=WEEKLY;UNTIL=20260316T130000Z",
        ),
    )
    result = busy(data)
    # Berlin changes to summer time on 29 March... and 23-25 March are still CET (UTC+1).
    assert spans(result, "count") == [
        (utc(2026, 3, d, 9), utc(2026, 3, d, 10)) for d in (23, 24, 25)
    ]
    assert spans(result, "until") == [
        (utc(2026, 3, d, 13), utc(2026, 3, d, 14)) for d in (2, 9, 16)
    ]


def test_recurrence_keeps_wall_time_across_dst() -> None:
    data = vcal(
        vevent(
            "weekly",
            "DTSTART;TZID=Europe/Berlin:20260323T100000",
            "DTEND;TZID=Europe/Berlin:20260323T110000",
            "RRULE:FREQ=WEEKLY",
        )
    )
    result = busy(data, window=Interval(sp(2026, 3, 22), sp(2026, 4, 5)))
    assert spans(result) == [
        (utc(2026, 3, 23, 9), utc(2026, 3, 23, 10)),
        (utc(2026, 3, 30, 8), utc(2026, 3, 30, 9)),  # CEST
    ]


def test_endless_rule_is_expanded_only_inside_the_window() -> None:
    data = vcal(
        vevent(
            "daily-since-2015",
            "DTSTART;TZID=America/Sao_Paulo:20150105T073000",
            "DTEND;TZID=America/Sao_Paulo:20150105T080000",
            "RRULE:FREQ=DAILY",
        )
    )
    result = busy(data)
    assert len(result.intervals) == 31
    assert spans(result)[0] == (sp(2026, 3, 1, 7, 30), sp(2026, 3, 1, 8))
    far = busy(data, window=Interval(sp(2030, 6, 3), sp(2030, 6, 5)))
    assert spans(far) == [(sp(2030, 6, d, 7, 30), sp(2030, 6, d, 8)) for d in (3, 4)]


def test_floating_and_date_until_include_the_last_day() -> None:
    data = vcal(
        vevent(
            "floating-until",
            "DTSTART:20260302T100000",
            "DTEND:20260302T110000",
            "RRULE:FREQ=DAILY;UNTIL=20260304T100000",
        ),
        vevent(
            "date-until",
            "DTSTART;TZID=America/Sao_Paulo:20260309T160000",
            "DTEND;TZID=America/Sao_Paulo:20260309T170000",
            "RRULE:FREQ=DAILY;UNTIL=20260311",
        ),
    )
    result = busy(data)
    assert spans(result, "floating-until") == [
        (sp(2026, 3, d, 10), sp(2026, 3, d, 11)) for d in (2, 3, 4)
    ]
    assert spans(result, "date-until") == [
        (sp(2026, 3, d, 16), sp(2026, 3, d, 17)) for d in (9, 10, 11)
    ]


def test_rdate_and_exdate() -> None:
    data = vcal(
        vevent(
            "r",
            "DTSTART;TZID=America/Sao_Paulo:20260302T090000",
            "DTEND;TZID=America/Sao_Paulo:20260302T100000",
            "RRULE:FREQ=DAILY;COUNT=3",
            "EXDATE;TZID=America/Sao_Paulo:20260303T090000",
            "RDATE;TZID=America/Sao_Paulo:20260310T140000",
            "RDATE;VALUE=PERIOD:20260312T120000Z/PT3H",
        )
    )
    result = busy(data)
    assert spans(result) == [
        (sp(2026, 3, 2, 9), sp(2026, 3, 2, 10)),
        (sp(2026, 3, 4, 9), sp(2026, 3, 4, 10)),
        (sp(2026, 3, 10, 14), sp(2026, 3, 10, 15)),
        (utc(2026, 3, 12, 12), utc(2026, 3, 12, 15)),
    ]


def test_recurrence_id_overrides_move_cancel_and_free_occurrences() -> None:
    tz = "TZID=America/Sao_Paulo"
    data = vcal(
        vevent(
            "series",
            f"DTSTART;{tz}:20260302T090000",
            f"DTEND;{tz}:20260302T100000",
            "RRULE:FREQ=DAILY;COUNT=5",
        ),
        vevent(  # 3 March moved to the afternoon
            "series",
            f"RECURRENCE-ID;{tz}:20260303T090000",
            f"DTSTART;{tz}:20260303T150000",
            f"DTEND;{tz}:20260303T160000",
        ),
        vevent(  # 4 March cancelled
            "series",
            f"RECURRENCE-ID;{tz}:20260304T090000",
            f"DTSTART;{tz}:20260304T090000",
            f"DTEND;{tz}:20260304T100000",
            "STATUS:CANCELLED",
        ),
        vevent(  # 5 March kept but shown as free
            "series",
            "RECURRENCE-ID:20260305T120000Z",
            f"DTSTART;{tz}:20260305T090000",
            f"DTEND;{tz}:20260305T100000",
            "TRANSP:TRANSPARENT",
        ),
    )
    result = busy(data)
    assert result.problems == []
    assert spans(result) == [
        (sp(2026, 3, 2, 9), sp(2026, 3, 2, 10)),
        (sp(2026, 3, 3, 15), sp(2026, 3, 3, 16)),
        (sp(2026, 3, 6, 9), sp(2026, 3, 6, 10)),
    ]


def test_an_override_can_make_a_free_series_busy_once() -> None:
    data = vcal(
        vevent(
            "s",
            "DTSTART:20260302T120000Z",
            "DTEND:20260302T130000Z",
            "RRULE:FREQ=DAILY;COUNT=3",
            "TRANSP:TRANSPARENT",
        ),
        vevent(
            "s",
            "RECURRENCE-ID:20260303T120000Z",
            "DTSTART:20260303T120000Z",
            "DTEND:20260303T130000Z",
            "TRANSP:OPAQUE",
        ),
    )
    assert spans(busy(data)) == [(utc(2026, 3, 3, 12), utc(2026, 3, 3, 13))]


def test_two_masters_with_one_uid_both_block_time() -> None:
    data = vcal(
        vevent("dup", "DTSTART:20260302T120000Z", "DTEND:20260302T130000Z", "SEQUENCE:1"),
        vevent("dup", "DTSTART:20260303T120000Z", "DTEND:20260303T130000Z", "SEQUENCE:2"),
    )
    result = busy(data)
    assert spans(result) == [
        (utc(2026, 3, 2, 12), utc(2026, 3, 2, 13)),
        (utc(2026, 3, 3, 12), utc(2026, 3, 3, 13)),
    ]
    assert [(p.uid, p.severity) for p in result.problems] == [("dup", "warning")]


# --------------------------------------------------------------------------- free vs busy


def test_transparent_cancelled_and_outlook_free_do_not_block() -> None:
    data = vcal(
        vevent("busy", "DTSTART:20260302T120000Z", "DTEND:20260302T130000Z"),
        vevent(
            "transp", "DTSTART:20260302T130000Z", "DTEND:20260302T140000Z", "TRANSP:TRANSPARENT"
        ),
        vevent("cancel", "DTSTART:20260302T140000Z", "DTEND:20260302T150000Z", "STATUS:CANCELLED"),
        vevent(
            "cdo-free",
            "DTSTART:20260302T150000Z",
            "DTEND:20260302T160000Z",
            "X-MICROSOFT-CDO-BUSYSTATUS:FREE",
        ),
        vevent(
            "tentative", "DTSTART:20260302T160000Z", "DTEND:20260302T170000Z", "STATUS:TENTATIVE"
        ),
    )
    result = busy(data)
    assert sorted(result.by_uid) == ["busy", "tentative"]


def test_freebusy_periods() -> None:
    result = busy((ICS / "freebusy.ics").read_text())
    assert result.problems == []
    assert spans(result) == [
        (utc(2026, 3, 2, 13), utc(2026, 3, 2, 14)),  # no FBTYPE means BUSY
        (utc(2026, 3, 3, 13), utc(2026, 3, 3, 13, 30)),
        (utc(2026, 3, 3, 15), utc(2026, 3, 3, 16)),
        (utc(2026, 3, 4, 11), utc(2026, 3, 4, 20)),  # BUSY-UNAVAILABLE
        (utc(2026, 3, 5, 13), utc(2026, 3, 5, 14)),  # BUSY-TENTATIVE; FREE on 6 March is not
    ]
    assert set(result.by_uid) == {"fb-ana@example.com"}


# --------------------------------------------------------------------------- the window


def test_occurrences_overlapping_the_window_are_returned_unclipped() -> None:
    data = vcal(
        vevent("straddles", "DTSTART:20260302T110000Z", "DTEND:20260302T150000Z"),
        vevent("touches-start", "DTSTART:20260302T100000Z", "DTEND:20260302T120000Z"),
        vevent("touches-end", "DTSTART:20260302T180000Z", "DTEND:20260302T190000Z"),
        vevent("outside", "DTSTART:20260305T120000Z", "DTEND:20260305T130000Z"),
        vevent("long", "DTSTART;VALUE=DATE:20260201", "DTEND;VALUE=DATE:20260401"),
    )
    window = Interval(utc(2026, 3, 2, 12), utc(2026, 3, 2, 18))
    result = busy(data, window=window)
    assert sorted(result.by_uid) == ["long", "straddles"]
    assert spans(result, "straddles") == [(utc(2026, 3, 2, 11), utc(2026, 3, 2, 15))]
    assert spans(result, "long") == [(sp(2026, 2, 1), sp(2026, 4, 1))]


# --------------------------------------------------------------------------- bad events


def test_broken_events_are_reported_by_uid_and_the_rest_still_counts() -> None:
    data = vcal(
        vevent("bad-start", "DTSTART:2026030XT100000Z", "DTEND:20260302T110000Z"),
        vevent("backwards", "DTSTART:20260302T110000Z", "DTEND:20260302T100000Z"),
        vevent("no-start", "DTEND:20260302T110000Z"),
        vevent("bad-duration", "DTSTART:20260302T110000Z", "DURATION:soon"),
        vevent("good", "DTSTART:20260302T130000Z", "DTEND:20260302T140000Z"),
    )
    result = busy(data)
    assert spans(result) == [(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14))]
    assert [(p.uid, p.severity) for p in result.problems] == [
        ("bad-start", "error"),
        ("backwards", "error"),
        ("no-start", "error"),
        ("bad-duration", "error"),
    ]
    assert all(p.calendar == "ana" for p in result.problems)


def test_a_broken_rrule_still_blocks_the_first_occurrence() -> None:
    data = vcal(
        vevent(
            "bad-rule",
            "DTSTART:20260302T130000Z",
            "DTEND:20260302T140000Z",
            "RRULE:FREQ=SOMETIMES;COUNT=x",
        )
    )
    result = busy(data)
    assert spans(result) == [(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14))]
    assert [(p.uid, p.severity) for p in result.problems] == [("bad-rule", "warning")]


@pytest.mark.parametrize(
    ("rule", "severity"),
    [
        ("FREQ=WEEKLY;INTERVAL=0", "warning"),  # dateutil would loop forever
        ("FREQ=SECONDLY", "warning"),  # unsupported: no person keeps such a calendar
        ("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", "error"),  # never matches: dateutil runs to 9999
        ("FREQ=DAILY;BYSETPOS=2", "error"),  # never matches either
    ],
)
def test_rules_that_would_stall_the_sync_are_cut_short(rule: str, severity: str) -> None:
    data = vcal(
        vevent("odd", "DTSTART:20260302T130000Z", "DTEND:20260302T140000Z", f"RRULE:{rule}")
    )
    result = busy(data)
    assert spans(result) == [(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14))]
    assert [(p.uid, p.severity) for p in result.problems] == [("odd", severity)]


def test_sparse_rules_far_from_the_window_still_work() -> None:
    data = vcal(
        vevent(  # every 29 February, since 1904
            "leap",
            "DTSTART;TZID=America/Sao_Paulo:19040229T100000",
            "DTEND;TZID=America/Sao_Paulo:19040229T110000",
            "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
        ),
        vevent(  # hourly since 1970, business hours only
            "hourly",
            "DTSTART:19700101T000000Z",
            "DURATION:PT15M",
            "RRULE:FREQ=HOURLY;INTERVAL=3;BYDAY=MO;BYHOUR=12,15",
        ),
    )
    window = Interval(sp(2028, 2, 28), sp(2028, 3, 7))
    result = busy(data, window=window)
    assert result.problems == []
    assert spans(result, "leap") == [(sp(2028, 2, 29, 10), sp(2028, 2, 29, 11))]
    assert spans(result, "hourly") == [  # 2028-02-28 and 2028-03-06 are Mondays
        (utc(2028, 2, 28, 12), utc(2028, 2, 28, 12, 15)),
        (utc(2028, 2, 28, 15), utc(2028, 2, 28, 15, 15)),
        (utc(2028, 3, 6, 12), utc(2028, 3, 6, 12, 15)),
        (utc(2028, 3, 6, 15), utc(2028, 3, 6, 15, 15)),
    ]


@settings(max_examples=25)  # the reference expansion from DTSTART is the slow part
@given(
    freq=st.sampled_from(["DAILY", "WEEKLY", "HOURLY"]),
    interval=st.integers(1, 5),
    days=st.sets(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), max_size=3),
    years_before=st.integers(0, 8),
    hours_before=st.integers(0, 2000),
    start_hour=st.integers(0, 23),
    zone=st.sampled_from(["America/Sao_Paulo", "Europe/Berlin", "America/New_York"]),
    all_day=st.booleans(),
)
def test_skipping_ahead_finds_what_a_full_expansion_finds(
    freq: str,
    interval: int,
    days: set[str],
    years_before: int,
    hours_before: int,
    start_hour: int,
    zone: str,
    all_day: bool,
) -> None:
    """The plain library expansion from the original DTSTART is the reference."""
    tz = ZoneInfo(zone)
    window = Interval(sp(2026, 3, 20), sp(2026, 4, 10))  # across the European DST change
    if freq == "HOURLY":  # keep the reference cheap: hourly rules start hours before
        start = datetime(2026, 3, 20, start_hour, 30, tzinfo=tz) - timedelta(hours=hours_before)
        all_day = False
    else:
        start = datetime(2026 - years_before, 3, 1 + start_hour, start_hour, 30, tzinfo=tz)
    rule = f"FREQ={freq};INTERVAL={interval}" + (f";BYDAY={','.join(sorted(days))}" if days else "")
    if all_day:
        times = [
            f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
            f"DTEND;VALUE=DATE:{start + timedelta(days=1):%Y%m%d}",
        ]
    else:
        times = [f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}", "DURATION:PT50M"]
    data = vcal(vevent("r", *times, f"RRULE:{rule}"))

    cal, _ = parse_calendar(data)
    assert cal is not None
    expected = []
    for occurrence in recurring_ical_events.of(cal).between(
        window.start - timedelta(days=2), window.end + timedelta(days=2)
    ):
        begin, end = occurrence["DTSTART"].dt, occurrence["DTEND"].dt
        if not isinstance(begin, datetime):
            begin, end = datetime.combine(begin, time(0), SP), datetime.combine(end, time(0), SP)
        elif end.timestamp() <= begin.timestamp():
            # Started inside a DST gap: the documented choice keeps the wall-clock length.
            end = begin.astimezone(UTC) + (end - begin)
        if Interval(begin, end).overlaps(window):
            expected.append((begin, end))
    result = busy(data, window=window)
    assert result.problems == []

    # Instants, not datetimes: Python never calls two aware datetimes of different zones
    # equal when one sits in a DST fold or gap, even at the same instant.
    def instants(pairs: list[tuple[datetime, datetime]]) -> list[tuple[float, float]]:
        return sorted((a.timestamp(), b.timestamp()) for a, b in pairs)

    assert instants(spans(result)) == instants(expected)


# --------------------------------------------------------------------------- privacy, size


def test_a_huge_description_is_ignored_and_no_text_leaves() -> None:
    secret = "Consulta médica sigilosa"
    description = "DESCRIPTION:" + "confidencial " * 160_000  # ~2 MB, folded as servers do
    folded = "\n ".join(description[i : i + 74] for i in range(0, len(description), 74))
    data = vcal(
        vevent(
            "big",
            "DTSTART:20260302T130000Z",
            "DTEND:20260302T140000Z",
            f"SUMMARY:{secret}",
            "LOCATION:Hospital X",
            folded,
        ),
        vevent("pin", "DTSTART:20260303T130000Z", f"SUMMARY:{secret}"),
    )
    assert len(data) > 2_000_000
    result = busy(data)
    assert spans(result, "big") == [(utc(2026, 3, 2, 13), utc(2026, 3, 2, 14))]
    everything = repr(result)
    for private in (secret, "Hospital", "confidencial"):
        assert private not in everything
    cal, _ = parse_calendar(data, keep_text=True)
    assert cal is not None
    assert str(cal.walk("VEVENT")[0]["SUMMARY"]) == secret
    cal, _ = parse_calendar(data)
    assert cal is not None
    assert "SUMMARY" not in cal.walk("VEVENT")[0]


# --------------------------------------------------------------------------- CalDAV objects


def test_describe_object_gives_blocks_and_the_master_time() -> None:
    data = vcal(
        vevent(
            "series",
            "DTSTART:20260302T120000Z",
            "DTEND:20260302T130000Z",
            "RRULE:FREQ=DAILY;COUNT=2",
        ),
        vevent(
            "series",
            "RECURRENCE-ID:20260303T120000Z",
            "DTSTART:20260303T170000Z",
            "DTEND:20260303T180000Z",
        ),
    )
    cal, _ = parse_calendar(data)
    assert cal is not None
    change = describe_object(cal, MARCH, SP, href="/ana/work/series.ics", etag='"1"', calendar="w")
    assert (change.href, change.uid, change.etag, change.deleted) == (
        "/ana/work/series.ics",
        "series",
        '"1"',
        False,
    )
    assert [(b.start, b.end) for b in change.blocks] == [
        (utc(2026, 3, 2, 12), utc(2026, 3, 2, 13)),
        (utc(2026, 3, 3, 17), utc(2026, 3, 3, 18)),
    ]
    assert (change.start, change.end, change.cancelled) == (
        utc(2026, 3, 2, 12),
        utc(2026, 3, 2, 13),
        False,
    )
    assert change.problems == ()


def test_describe_ics_of_a_broken_object_is_an_error_without_blocks() -> None:
    change = describe_ics("<html>", MARCH, SP, href="/x.ics", etag=None, calendar="w")
    assert (change.uid, change.blocks) == (None, ())
    assert [p.severity for p in change.problems] == ["error"]


SESSION = SessionEvent(
    uid="expediente-session-42@desk.example",
    start=sp(2026, 3, 2, 9),
    end=sp(2026, 3, 2, 9, 30),
    summary="ACME Ltda — Atendimento remoto",
    description="Responsável: Maria\nTelefone: +55 11 99999-0000\nAnyDesk: 123456789",
    url="https://desk.example/checkin/42?sig=abc&x=1",
)
STAMP = utc(2026, 2, 20, 12)


def test_our_session_event_round_trips_through_describe_object() -> None:
    data = session_to_ical(SESSION, stamp=STAMP)
    change = describe_ics(data, MARCH, SP, href="/s.ics", etag='"e"', calendar="w")
    assert change.uid == SESSION.uid
    assert [(b.start, b.end) for b in change.blocks] == [(SESSION.start, SESSION.end)]
    assert (change.start, change.end, change.cancelled) == (SESSION.start, SESSION.end, False)

    freed = describe_ics(
        session_to_ical(replace(SESSION, state="rescheduled"), stamp=STAMP),
        MARCH, SP, href="/s.ics", etag=None, calendar="w",
    )  # fmt: skip
    assert freed.blocks == ()
    assert freed.cancelled is False

    cancelled = describe_ics(
        session_to_ical(replace(SESSION, state="cancelled"), stamp=STAMP),
        MARCH, SP, href="/s.ics", etag=None, calendar="w",
    )  # fmt: skip
    assert (cancelled.blocks, cancelled.cancelled) == ((), True)


def test_parse_session_event_sees_a_technician_moving_or_cancelling() -> None:
    cal, _ = parse_calendar(session_to_ical(SESSION, stamp=STAMP))
    assert cal is not None
    assert parse_session_event(cal, SP) == (SESSION.start, SESSION.end, "booked", False)

    moved = (
        session_to_ical(SESSION, stamp=STAMP)
        .replace(b"DTSTART:20260302T120000Z", b"DTSTART:20260303T170000Z")
        .replace(b"DTEND:20260302T123000Z", b"DTEND:20260303T173000Z")
    )
    cal, _ = parse_calendar(moved)
    assert cal is not None
    snapshot = parse_session_event(cal, SP, uid=SESSION.uid)
    assert snapshot is not None
    assert (snapshot.start, snapshot.end) == (utc(2026, 3, 3, 17), utc(2026, 3, 3, 17, 30))

    by_client = (
        session_to_ical(SESSION, stamp=STAMP)
        .replace(b"STATUS:CONFIRMED", b"STATUS:CANCELLED")
        .replace(b"X-EXPEDIENTE-STATE:booked", b"X-EXPEDIENTE-STATE:whatever")
    )
    cal, _ = parse_calendar(by_client)
    assert cal is not None
    snapshot = parse_session_event(cal, SP)
    assert snapshot is not None
    assert (snapshot.state, snapshot.cancelled) == (None, True)
    assert parse_session_event(cal, SP, uid="someone-else") is None


# --------------------------------------------------------------------------- writing


def unfolded_lines(data: bytes) -> list[str]:
    return data.decode().replace("\r\n ", "").split("\r\n")


def test_a_booked_session_event_has_everything_the_technician_needs() -> None:
    data = session_to_ical(SESSION, stamp=STAMP, sequence=3)
    lines = unfolded_lines(data)
    assert "DTSTART:20260302T120000Z" in lines
    assert "DTEND:20260302T123000Z" in lines
    assert "DTSTAMP:20260220T120000Z" in lines
    assert f"UID:{SESSION.uid}" in lines
    assert "PRODID:-//expediente//EN" in lines
    assert "TRIGGER:-PT10M" in lines
    cal = icalendar.Calendar.from_ical(data)
    (event,) = cal.events
    assert str(event["SUMMARY"]) == SESSION.summary  # no marker when booked
    assert str(event["DESCRIPTION"]) == SESSION.description
    assert str(event["URL"]) == SESSION.url
    assert (str(event["STATUS"]), str(event["TRANSP"])) == ("CONFIRMED", "OPAQUE")
    assert str(event["X-EXPEDIENTE-STATE"]) == "booked"
    assert event.categories == ["expediente"]
    assert event["SEQUENCE"] == 3
    (alarm,) = [c for c in event.subcomponents if isinstance(c, icalendar.Alarm)]
    assert str(alarm["ACTION"]) == "DISPLAY"
    trigger = alarm.TRIGGER
    assert trigger == timedelta(minutes=-10)
    assert "ORGANIZER" not in event and "ATTENDEE" not in event


@pytest.mark.parametrize(
    ("state", "prefix", "status", "transp"),
    [
        ("in_progress", "[EM ATENDIMENTO] ", "CONFIRMED", "OPAQUE"),
        ("completed", "[CONCLUÍDO] ", "CONFIRMED", "OPAQUE"),
        ("rescheduled", "[REAGENDADO] ", "CONFIRMED", "TRANSPARENT"),
        ("cancelled", "[CANCELADO] ", "CANCELLED", "TRANSPARENT"),
    ],
)
def test_state_markers(state: str, prefix: str, status: str, transp: str) -> None:
    data = session_to_ical(replace(SESSION, state=state), stamp=STAMP)  # type: ignore[arg-type]
    (event,) = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert str(event["SUMMARY"]) == prefix + SESSION.summary
    assert (str(event["STATUS"]), str(event["TRANSP"])) == (status, transp)
    assert str(event["X-EXPEDIENTE-STATE"]) == state
    assert event.walk("VALARM") == []  # only a booked session reminds


def test_markers_can_be_replaced() -> None:
    data = session_to_ical(
        replace(SESSION, state="rescheduled"),
        stamp=STAMP,
        marker={"rescheduled": "[RESCHEDULED] "},
    )
    (event,) = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert str(event["SUMMARY"]) == "[RESCHEDULED] " + SESSION.summary


def test_organizer_and_attendee_do_not_trigger_server_invitations() -> None:
    session = replace(
        SESSION,
        organizer_email="suporte@desk.example",
        attendee_email="ana@desk.example",
        attendee_name="Ana Souza",
    )
    (event,) = icalendar.Calendar.from_ical(session_to_ical(session, stamp=STAMP)).walk("VEVENT")
    organizer, attendee = event["ORGANIZER"], event["ATTENDEE"]
    assert (str(organizer), organizer.params["SCHEDULE-AGENT"]) == (
        "mailto:suporte@desk.example",
        "CLIENT",
    )
    assert (str(attendee), attendee.params["SCHEDULE-AGENT"], attendee.params["CN"]) == (
        "mailto:ana@desk.example",
        "CLIENT",
        "Ana Souza",
    )


def components_built_by_icalendar(event: SessionEvent, stamp: datetime, sequence: int) -> bytes:
    """The session event as icalendar's components write it: what ``session_to_ical``
    wrote before it put the lines together itself, kept as the reference it must match."""
    clean = ical_session._clean_text
    vevent = icalendar.Event.new(
        uid=clean(event.uid),
        stamp=stamp.astimezone(UTC),
        start=event.start.astimezone(UTC),
        end=event.end.astimezone(UTC),
        summary=clean(DEFAULT_MARKERS[event.state] + event.summary),
        description=clean(event.description) or None,
        url=event.url or None,
        status=icalendar.STATUS.CANCELLED
        if event.state == "cancelled"
        else icalendar.STATUS.CONFIRMED,
        transparency=icalendar.TRANSP.OPAQUE if event.blocks_time else icalendar.TRANSP.TRANSPARENT,
        categories=["expediente"],
        color=DEFAULT_COLORS.get(event.state),
        sequence=sequence,
        organizer=ical_session._address(event.organizer_email) if event.organizer_email else None,
        attendees=[ical_session._address(event.attendee_email, event.attendee_name)]
        if event.attendee_email
        else None,
    )
    vevent.add("X-EXPEDIENTE-STATE", icalendar.vText(event.state))
    if event.state == "booked" and event.alarm_minutes >= 0:
        summary = clean(event.summary)
        trigger = -timedelta(minutes=event.alarm_minutes)
        vevent.add_component(icalendar.Alarm.new_display(summary, trigger=trigger))
    cal = icalendar.Calendar()
    cal.add("PRODID", icalendar.vText("-//expediente//EN"))
    cal.add("VERSION", "2.0")
    cal.add_component(vevent)
    return bytes(cal.to_ical())


def content_by_component(data: bytes) -> list[tuple[str, list[str]]]:
    """Each component's own content lines, unfolded and sorted (the order of properties
    means nothing), in the order the components end."""
    found: list[tuple[str, list[str]]] = []
    stack: list[tuple[str, list[str]]] = []
    for line in unfolded_lines(data):
        if line.startswith("BEGIN:"):
            stack.append((line, []))
        elif line.startswith("END:"):
            begin, lines = stack.pop()
            found.append((begin, sorted(lines)))
        elif line:
            stack[-1][1].append(line)
    return found


# Text that puts the fold's and the escapes' edge cases everywhere: characters of 2, 3 and 4
# octets, the escapes that must not end a folded piece, the characters TEXT and parameter
# values escape or quote, line breaks and a control character.
ANY_TEXT = st.text(alphabet=st.sampled_from(list('aZ09 çã€😀\\^;,:"\n\r\x07')), max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    summary=ANY_TEXT,
    description=ANY_TEXT,
    name=ANY_TEXT,
    pad=st.integers(0, 80),
    state=st.sampled_from(["booked", "in_progress", "completed", "rescheduled", "cancelled"]),
    alarm=st.integers(-1, 90),
    sequence=st.integers(0, 12),
)
def test_our_event_has_what_icalendars_components_would_write(
    summary: str, description: str, name: str, pad: int, state: str, alarm: int, sequence: int
) -> None:
    """``session_to_ical`` puts its lines together itself, with icalendar's value types: the
    same lines as icalendar's own components, folded within 75 octets as icalendar folds."""
    session = replace(
        SESSION,
        uid="expediente-" + "u" * pad + "@desk.example",
        summary="ACME " + summary,  # never empty: a display alarm needs its text
        description=description,
        state=state,  # type: ignore[arg-type]
        alarm_minutes=alarm,
        organizer_email="suporte@desk.example",
        attendee_email="ana@desk.example",
        attendee_name=name,
        url="https://desk.example/checkin/" + "t" * pad,
    )
    ours = session_to_ical(session, stamp=STAMP, sequence=sequence)
    reference = components_built_by_icalendar(session, STAMP, sequence)
    assert content_by_component(ours) == content_by_component(reference)
    assert all(len(line) <= 75 for line in ours.split(b"\r\n"))  # 74 octets, and the space
    # Folded where icalendar folds: the same physical lines, whatever their order.
    assert sorted(ours.split(b"\r\n")) == sorted(reference.split(b"\r\n"))


@pytest.mark.parametrize("char", ["\\", "^", "ç", "€", "😀", "a"])
def test_lines_fold_where_icalendar_folds_them(char: str) -> None:
    """``char`` at every octet around the first fold, then runs of it across the next."""
    for offset in range(55, 80):
        line = "DESCRIPTION:" + "a" * offset + char + "b" * 100 + char * 40 + "c" * offset
        expected = icalendar.parser.Contentline(line).to_ical()  # type: ignore[no-untyped-call]
        assert ical_session._fold(line) == expected, offset


EVIL = "ACME\r\nATTENDEE:mailto:evil@x\rSTATUS:CANCELLED\nX-A:1;\\,"


def test_user_text_cannot_inject_properties() -> None:
    session = replace(
        SESSION,
        uid="uid-1\r\nATTENDEE:mailto:evil@x",
        summary=EVIL,
        description=EVIL + "\x00\x07",
    )
    data = session_to_ical(session, stamp=STAMP)
    names = [line.split(":")[0].split(";")[0] for line in unfolded_lines(data) if line]
    assert "ATTENDEE" not in names and "X-A" not in names
    assert names.count("STATUS") == 1 and names.count("BEGIN") == 3  # VCALENDAR, VEVENT, VALARM
    cal = icalendar.Calendar.from_ical(data)
    (event,) = cal.walk("VEVENT")
    assert "ATTENDEE" not in event
    assert str(event["STATUS"]) == "CONFIRMED"
    normalized = "ACME\nATTENDEE:mailto:evil@x\nSTATUS:CANCELLED\nX-A:1;\\,"
    assert str(event["SUMMARY"]) == normalized
    assert str(event["DESCRIPTION"]) == normalized  # control characters dropped
    assert str(event["UID"]) == "uid-1\nATTENDEE:mailto:evil@x"


def test_an_attendee_name_cannot_inject_properties_either() -> None:
    session = replace(
        SESSION, attendee_email="ana@desk.example", attendee_name='Ana "x"\r\nATTENDEE:mailto:e@x'
    )
    data = session_to_ical(session, stamp=STAMP)
    (event,) = icalendar.Calendar.from_ical(data).walk("VEVENT")
    attendee = event["ATTENDEE"]
    assert not isinstance(attendee, list)  # exactly one
    assert str(attendee) == "mailto:ana@desk.example"
    assert attendee.params["CN"] == 'Ana "x" ATTENDEE:mailto:e@x'


@pytest.mark.parametrize(
    "change",
    [
        {"organizer_email": "a@b.c\r\nATTENDEE:mailto:evil@x"},
        {"attendee_email": "a@b.c\nX-A:1"},
        {"url": "https://desk.example/c\r\nATTENDEE:mailto:evil@x"},
    ],
)
def test_addresses_and_urls_with_line_breaks_are_refused(change: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        session_to_ical(replace(SESSION, **change), stamp=STAMP)  # type: ignore[arg-type]


def test_naive_or_backwards_times_are_refused() -> None:
    with pytest.raises(NaiveDatetimeError):
        session_to_ical(replace(SESSION, start=datetime(2026, 3, 2, 9)), stamp=STAMP)
    with pytest.raises(ValueError, match="ends before it starts"):
        session_to_ical(replace(SESSION, end=SESSION.start), stamp=STAMP)


def test_expand_busy_on_a_parsed_calendar_matches_busy_from_ics() -> None:
    data = (ICS / "google_export.ics").read_text()
    cal, problems = parse_calendar(data)
    assert cal is not None and problems == []
    assert expand_busy(cal, MARCH, SP).intervals == busy(data).intervals


def test_all_day_interval_for_a_desk_day_is_a_date_boundary() -> None:
    result = busy(vcal(vevent("d", "DTSTART;VALUE=DATE:20260302")))
    (interval,) = result.intervals
    assert interval.start.date() == date(2026, 3, 2)
    assert (interval.start.hour, interval.end - interval.start) == (0, timedelta(days=1))
