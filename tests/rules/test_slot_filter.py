"""The slot search's fast filter gives exactly what time_violations() says, DST days too.

free_slots() filters grid candidates by comparing instants with the notice and horizon
bounds instead of calling time_violations() on each; this holds it to the definition on
desks in zones with daylight-saving changes, early-morning ranges that a DST jump cuts,
and every kind of ``now``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from rules.model import Policy, SessionType, TimeRange
from rules.slots import candidate_starts, free_slots, time_violations
from tests.rules.factories import open_every_day, seed_policy
from tests.rules.strategies import DAYS, RANGES, ZONES


@given(
    zone=st.sampled_from(ZONES),
    ranges=st.sampled_from(RANGES),
    day=st.sampled_from(DAYS),
    step=st.sampled_from([15, 20, 30, 45]),
    duration=st.sampled_from([15, 30, 60, 120]),
    notice=st.sampled_from([0, 15, 60, 24 * 60]),
    horizon_days=st.integers(0, 3),
    now_offset=st.integers(-3 * 24 * 60, 24 * 60),
)
def test_free_slots_offers_exactly_the_candidates_time_violations_accepts(
    zone: str,
    ranges: tuple[TimeRange, ...],
    day: date,
    step: int,
    duration: int,
    notice: int,
    horizon_days: int,
    now_offset: int,
) -> None:
    tz = ZoneInfo(zone)
    policy = open_every_day(
        tz, ranges, step=step, duration=duration, notice=notice,
        horizon=timedelta(days=horizon_days, hours=5),
    )  # fmt: skip
    session_type = policy.session_types["s"]
    now = datetime.combine(day, datetime.min.time(), tzinfo=tz) + timedelta(minutes=now_offset)
    # Instants compared as timestamps: PEP 495 makes a datetime in a repeated hour unequal
    # to every datetime of another zone, the same instant included.
    offered = [s.start.timestamp() for s in free_slots(policy, "s", day, day, now, {})]
    expected = [
        start.timestamp()
        for start in candidate_starts(policy, session_type, day)
        if not time_violations(policy, session_type, start, now)
    ]
    assert offered == expected


def _lisbon_sundays(ranges: tuple[TimeRange, ...]) -> tuple[ZoneInfo, Policy]:
    tz = ZoneInfo("Europe/Lisbon")
    policy = open_every_day(
        tz, ranges, step=30, duration=30, notice=0, horizon=timedelta(days=400), weekdays=[6]
    )
    return tz, policy


def test_the_night_clocks_go_forward_offers_only_times_that_exist() -> None:
    """Lisbon, 29 March 2026: 01:00 becomes 02:00. A 00:30–03:30 range is two real hours."""
    _, policy = _lisbon_sundays((TimeRange.parse("00:30-03:30"),))
    now = datetime(2026, 3, 1, tzinfo=UTC)
    slots = free_slots(policy, "s", date(2026, 3, 29), date(2026, 3, 29), now, {})
    assert [(s.start.isoformat(), s.end.isoformat()) for s in slots] == [
        ("2026-03-29T00:30:00+00:00", "2026-03-29T02:00:00+01:00"),
        ("2026-03-29T02:00:00+01:00", "2026-03-29T02:30:00+01:00"),
        ("2026-03-29T02:30:00+01:00", "2026-03-29T03:00:00+01:00"),
        ("2026-03-29T03:00:00+01:00", "2026-03-29T03:30:00+01:00"),
    ]


def test_the_night_clocks_go_back_offers_the_repeated_hour_once_per_instant() -> None:
    """Lisbon, 25 October 2026: 02:00 becomes 01:00 again. 00:30–03:30 is four real hours,
    every slot lasts its 30 minutes, and each start is accepted exactly when offered."""
    _, policy = _lisbon_sundays((TimeRange.parse("00:30-03:30"),))
    now = datetime(2026, 10, 1, tzinfo=UTC)
    slots = free_slots(policy, "s", date(2026, 10, 25), date(2026, 10, 25), now, {})
    assert [s.start.isoformat() for s in slots] == [
        "2026-10-25T00:30:00+01:00",
        "2026-10-25T01:00:00+01:00",
        "2026-10-25T01:30:00+01:00",
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T01:30:00+00:00",
        "2026-10-25T02:00:00+00:00",
        "2026-10-25T02:30:00+00:00",
        "2026-10-25T03:00:00+00:00",
    ]
    assert all(s.end.timestamp() - s.start.timestamp() == 30 * 60 for s in slots)
    offered = {s.start.timestamp() for s in slots}
    session_type = policy.session_types["s"]
    day_start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    for quarter in range(8 * 4):
        start = day_start + timedelta(minutes=15 * quarter)
        for shown in (start, start.astimezone(timezone(timedelta(hours=-3)))):
            ok = not time_violations(policy, session_type, shown, now)
            assert ok == (start.timestamp() in offered), shown.isoformat()


@given(
    zone=st.sampled_from(ZONES),
    ranges=st.sampled_from(RANGES),
    day=st.sampled_from(DAYS),
    step=st.sampled_from([15, 30, 45]),
    duration=st.sampled_from([15, 30, 60]),
)
def test_every_slot_lasts_its_duration_and_no_instant_is_offered_twice(
    zone: str, ranges: tuple[TimeRange, ...], day: date, step: int, duration: int
) -> None:
    tz = ZoneInfo(zone)
    session_type = SessionType("s", "S", timedelta(minutes=duration), timedelta(0))
    policy = seed_policy(
        timezone=tz,
        weekly={d: ranges for d in range(7)},
        session_types={"s": session_type},
        slot_step=timedelta(minutes=step),
        horizon=timedelta(days=400),
        holidays={},
        closed_dates={},
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    slots = free_slots(policy, "s", day, day, now, {})
    starts = [s.start.timestamp() for s in slots]
    assert starts == sorted(set(starts))
    for slot in slots:
        assert slot.end.timestamp() - slot.start.timestamp() == duration * 60
        assert slot.start.tzinfo is tz and slot.end.tzinfo is tz
        # The wall time shown exists and means the same instant.
        again = datetime.combine(slot.start.date(), slot.start.time(), tz).replace(
            fold=slot.start.fold
        )
        assert again.timestamp() == slot.start.timestamp()
