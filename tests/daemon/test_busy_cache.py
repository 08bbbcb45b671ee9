"""The busy cache re-reads calendar time only when it changed, sessions on every commit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ObjectChange
from rules.intervals import BusyTimeline, Interval
from tests.daemon.desk import call, make_desk, monday
from tests.factories import booking

pairs = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(1, 100)).map(lambda p: (p[0], p[0] + p[1])),
    max_size=30,
)


@given(base=pairs, extra=pairs)
def test_with_pairs_is_the_timeline_of_everything(
    base: list[tuple[int, int]], extra: list[tuple[int, int]]
) -> None:
    combined = BusyTimeline.from_timestamps(base).with_pairs(extra)
    expected = BusyTimeline.from_timestamps([*base, *extra])
    assert combined.intervals == expected.intervals


def test_a_booking_does_not_re_read_calendar_busy_time_and_a_sync_does(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, monday(7))
    reads: list[str] = []
    loader = desk.store.busy_pairs

    def counting(technician: str, window: Interval) -> list[tuple[int, int]]:
        reads.append(technician)
        return loader(technician, window)

    desk.service.cache._calendar_loader = counting
    desk.service.slots("standard", monday(0).date(), monday(0).date())
    assert sorted(reads) == ["ana", "bruno"]
    reads.clear()
    status, _, _ = call(desk, "POST", "/api/v1/bookings", booking(monday(9).isoformat()))
    assert status == 201
    slots = desk.service.slots("standard", monday(0).date(), monday(0).date())
    assert reads == [], "a booking adds a session, not calendar busy time"
    assert {s.start: len(s.technicians) for s in slots}[monday(9)] == 1, "but it counts"

    calendar = desk.config.calendars[0]
    block = Interval(monday(11), monday(11) + timedelta(hours=1))
    desk.store.apply_sync(
        calendar.id,
        [ObjectChange(href="x.ics", uid="x", etag='"1"', blocks=(block,))],
        full=False,
        state=None,
        now=monday(7),
    )
    slots = desk.service.slots("standard", monday(0).date(), monday(0).date())
    assert sorted(set(reads)) == ["ana", "bruno"]
    assert {s.start: len(s.technicians) for s in slots}[monday(11)] == 1
