"""The slot search's fast filter gives exactly what time_violations() says, DST days too.

free_slots() filters grid candidates by comparing instants with the notice and horizon
bounds instead of calling time_violations() on each; this holds it to the definition on
desks in zones with daylight-saving changes, early-morning ranges that a DST jump cuts,
and every kind of ``now``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from rules.model import SessionType, TimeRange
from rules.slots import candidate_starts, free_slots, time_violations
from tests.rules.factories import seed_policy

ZONES = ["America/Sao_Paulo", "America/New_York", "Europe/Lisbon", "Australia/Lord_Howe"]
RANGES = [
    (TimeRange.parse("00:00-03:30"), TimeRange.parse("07:30-12:00")),
    (TimeRange.parse("01:00-02:59"), TimeRange.parse("13:00-17:30")),
    (TimeRange.parse("07:30-12:00"), TimeRange.parse("13:00-17:30")),
]
# Days around DST changes in the zones above (both directions), and ordinary days.
DAYS = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 4), date(2026, 10, 25),
        date(2026, 11, 1), date(2026, 4, 5), date(2026, 11, 30)]  # fmt: skip


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
    session_type = SessionType("s", "S", timedelta(minutes=duration), timedelta(minutes=notice))
    policy = seed_policy(
        timezone=tz,
        weekly={d: ranges for d in range(7)},
        session_types={"s": session_type},
        slot_step=timedelta(minutes=step),
        horizon=timedelta(days=horizon_days, hours=5),
        holidays={},
        closed_dates={},
    )
    now = datetime.combine(day, datetime.min.time(), tzinfo=tz) + timedelta(minutes=now_offset)
    offered = [s.start for s in free_slots(policy, "s", day, day, now, {})]
    expected = [
        start
        for start in candidate_starts(policy, session_type, day)
        if not time_violations(policy, session_type, start, now)
    ]
    assert offered == expected
