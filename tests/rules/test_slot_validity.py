"""slots_valid_until(): the answer of free_slots() holds, unchanged, until that instant.

The daemon caches an encoded slot list until then, so a late bound would serve an answer
that free_slots() no longer gives; an early one only costs a recomputation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from rules.intervals import BusyTimeline
from rules.model import Policy, TimeRange
from rules.slots import FOREVER, free_slots, slots_valid_until
from tests.rules.factories import at, open_every_day, seed_policy
from tests.rules.strategies import (
    DAYS,
    FIRST,
    LAST,
    RANGES,
    ZONES,
    Busy,
    busy_map,
    nows,
    type_names,
)

Answer = list[tuple[float, float, tuple[str, ...]]]


def answer(
    policy: Policy, type_name: str, first: date, last: date, now: datetime, busy: Busy
) -> Answer:
    # Instants as timestamps: PEP 495 makes a time in a repeated hour unequal across zones.
    timelines = {k: BusyTimeline(v) for k, v in busy.items()}
    slots = free_slots(policy, type_name, first, last, now, timelines)
    return [(s.start.timestamp(), s.end.timestamp(), s.technicians) for s in slots]


def later_instants(now: datetime, until: datetime, fractions: list[float]) -> list[datetime]:
    """Instants of ``[now, until)``: its two ends' neighbours and drawn ones between."""
    assert until >= now
    if until == now:
        return []
    # FOREVER is datetime.max: past its year no datetime arithmetic works.
    until = min(until, now + timedelta(days=400))
    span = until - now
    found = [now, until - timedelta(microseconds=1)]
    found += [now + span * f for f in fractions]
    return [t for t in found if now <= t < until]


fractions = st.lists(st.floats(0, 1, exclude_max=True), max_size=6)
policies = st.builds(
    lambda buffer, step, horizon, closure: seed_policy(
        technicians=3,
        buffer=timedelta(minutes=buffer),
        slot_step=timedelta(minutes=step),
        horizon=timedelta(days=horizon[0], minutes=horizon[1]),
        # Closures longer than the days slots_valid_until() looks at, sometimes.
        closed_dates={FIRST + timedelta(days=closure[0] + n): "x" for n in range(closure[1])},
    ),
    st.sampled_from([0, 5, 15]),
    st.sampled_from([15, 30]),
    st.tuples(st.integers(0, 12), st.sampled_from([0, 7, 30, 600])),
    st.tuples(st.integers(-2, 8), st.integers(0, 12)),
)
ranges_of_days = st.tuples(st.integers(-3, 12), st.integers(-1, 14)).map(
    lambda pair: (FIRST + timedelta(days=pair[0]), FIRST + timedelta(days=pair[0] + pair[1]))
)


@given(policies, type_names, nows, busy_map, ranges_of_days, fractions)
def test_the_answer_holds_until_valid_until(
    policy: Policy,
    type_name: str,
    now: datetime,
    busy: Busy,
    days: tuple[date, date],
    drawn: list[float],
) -> None:
    first, last = days
    until = slots_valid_until(policy, type_name, first, last, now)
    assert until >= now
    expected = answer(policy, type_name, first, last, now, busy)
    for later in later_instants(now, until, drawn):
        assert answer(policy, type_name, first, last, later, busy) == expected, later


@given(
    zone=st.sampled_from(ZONES),
    ranges=st.sampled_from(RANGES),
    day=st.sampled_from(DAYS),
    step=st.sampled_from([15, 20, 30, 45]),
    duration=st.sampled_from([15, 30, 60, 120]),
    notice=st.sampled_from([0, 15, 60, 24 * 60]),
    horizon_minutes=st.integers(0, 4 * 24 * 60),
    now_offset=st.integers(-3 * 24 * 60, 24 * 60),
    span=st.integers(0, 3),
    drawn=fractions,
)
def test_the_answer_holds_until_valid_until_on_dst_days(
    zone: str,
    ranges: tuple[TimeRange, ...],
    day: date,
    step: int,
    duration: int,
    notice: int,
    horizon_minutes: int,
    now_offset: int,
    span: int,
    drawn: list[float],
) -> None:
    tz = ZoneInfo(zone)
    policy = open_every_day(
        tz, ranges, step=step, duration=duration, notice=notice,
        horizon=timedelta(minutes=horizon_minutes),
    )  # fmt: skip
    now = datetime.combine(day, datetime.min.time(), tzinfo=tz) + timedelta(minutes=now_offset)
    first, last = day, day + timedelta(days=span)
    until = slots_valid_until(policy, "s", first, last, now)
    assert until >= now
    expected = answer(policy, "s", first, last, now, {})
    for later in later_instants(now, until, drawn):
        assert answer(policy, "s", first, last, later, {}) == expected, later


def test_the_first_start_leaving_the_notice_ends_the_answer() -> None:
    """09:07 with 15 minutes' notice: 09:30 is the first start; it goes at 09:15."""
    policy = seed_policy()
    now = at("2026-12-01 09:07")
    until = slots_valid_until(policy, "standard", FIRST, LAST, now)
    assert until == at("2026-12-01 09:15")
    before = answer(policy, "standard", FIRST, LAST, until, {})
    after = answer(policy, "standard", FIRST, LAST, until + timedelta(microseconds=1), {})
    assert before == answer(policy, "standard", FIRST, LAST, now, {}) != after


def test_the_first_start_the_horizon_reaches_ends_the_answer() -> None:
    """A 13-hour horizon at Tuesday 18:00 reaches Wednesday 07:30 at 18:30, before the
    notice passes that start (07:15)."""
    policy = seed_policy(horizon=timedelta(hours=13))
    now = at("2026-12-01 18:00")
    until = slots_valid_until(policy, "standard", FIRST, LAST, now)
    assert until == at("2026-12-01 18:30")
    after = answer(policy, "standard", FIRST, LAST, until, {})
    assert answer(policy, "standard", FIRST, LAST, now, {}) != after


def test_time_cannot_change_an_empty_range_or_a_past_one() -> None:
    policy = seed_policy()
    now = at("2026-12-01 09:07")
    assert slots_valid_until(policy, "standard", LAST, FIRST, now) == FOREVER
    past = date(2026, 11, 1)
    assert slots_valid_until(policy, "standard", past, past, now) == FOREVER


def test_a_long_closure_gives_an_early_bound_without_walking_it() -> None:
    """Closed for 60 days: the bound is a week's walk away, early but safe."""
    closed = {FIRST + timedelta(days=n): "reforma" for n in range(60)}
    policy = seed_policy(closed_dates=closed, horizon=timedelta(days=90))
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    until = slots_valid_until(policy, "standard", FIRST, FIRST + timedelta(days=61), now)
    assert now < until < now + timedelta(days=8)
