"""The demo's sample busy time: whole minutes, so it blocks exactly the slots it covers."""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.ical import busy_from_ics
from daemon.demo import TZ, _sample_events
from rules.intervals import Interval

# A clock reading with seconds, as `expediente demo` gets from the real clock.
NOW = datetime(2026, 11, 30, 9, 41, 37, 250_000, tzinfo=TZ)  # a Monday


def test_sample_events_start_and_end_on_whole_minutes() -> None:
    window = Interval(NOW - timedelta(days=1), NOW + timedelta(days=7))
    for tech in ("ana", "bruno"):
        for documents in _sample_events(tech, NOW).values():
            for ics in documents:
                result = busy_from_ics(ics, window, TZ)
                assert result.problems == [] and result.intervals
                for interval in result.intervals:
                    for edge in (interval.start, interval.end):
                        assert (edge.second, edge.microsecond) == (0, 0), (tech, interval)


def test_the_one_hour_meeting_leaves_the_next_slot_free() -> None:
    [ics] = _sample_events("ana", NOW)["personal"]
    window = Interval(NOW.replace(hour=0, minute=0), NOW.replace(hour=23, minute=59))
    [meeting] = busy_from_ics(ics, window, TZ).intervals
    assert meeting.start.astimezone(TZ) == NOW.replace(hour=10, minute=0, second=0, microsecond=0)
    assert meeting.end.astimezone(TZ) == NOW.replace(hour=11, minute=0, second=0, microsecond=0)
