"""Properties of the rules engine over generated policies, busy time and clocks."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from rules.booking import clean_text, shown, validate
from rules.hours import day_hours, local_date, windows
from rules.intervals import BusyTimeline, Interval
from rules.model import Accepted, Policy, Rejected
from rules.slots import Slot, free_counts, free_slots
from tests.factories import booking_request as request
from tests.rules.factories import SAO_PAULO, seed_policy
from tests.rules.strategies import FIRST, LAST, Busy, busy_map, nows, quarter_hours, type_names

policies = st.builds(
    lambda buffer, step: seed_policy(
        technicians=3, buffer=timedelta(minutes=buffer), slot_step=timedelta(minutes=step)
    ),
    st.sampled_from([0, 5, 15]),
    st.sampled_from([15, 30]),
)


def offered(policy: Policy, type_name: str, now: datetime, busy: Busy) -> dict[datetime, Slot]:
    timelines = {k: BusyTimeline(v) for k, v in busy.items()}
    return {s.start: s for s in free_slots(policy, type_name, FIRST, LAST, now, timelines)}


@given(policies, type_names, nows, busy_map)
def test_slots_lie_in_open_windows_and_never_over_busy_time(
    policy: Policy, type_name: str, now: datetime, busy: Busy
) -> None:
    for slot in offered(policy, type_name, now, busy).values():
        day = local_date(policy, slot.start)
        assert day_hours(policy, day).closed is None
        assert any(w.start <= slot.start and slot.end <= w.end for w in windows(policy, day))
        assert slot.start >= now + policy.session_types[type_name].min_notice
        assert slot.start <= now + policy.horizon
        for tech in slot.technicians:
            widened = Interval(slot.start - policy.buffer, slot.end + policy.buffer)
            assert not any(widened.overlaps(b) for b in busy.get(tech, []))
        others = {"t0", "t1", "t2"} - set(slot.technicians)
        for tech in others:  # a technician left out really is busy then
            widened = Interval(slot.start - policy.buffer, slot.end + policy.buffer)
            assert any(widened.overlaps(b) for b in busy.get(tech, []))


@given(policies, type_names, nows, busy_map, st.lists(quarter_hours(14), max_size=30))
def test_a_slot_offered_is_a_booking_accepted_and_vice_versa(
    policy: Policy, type_name: str, now: datetime, busy: Busy, extra: list[datetime]
) -> None:
    slots = offered(policy, type_name, now, busy)
    timelines = {k: BusyTimeline(v) for k, v in busy.items()}
    in_range = [s for s in extra if FIRST <= local_date(policy, s) <= LAST]
    for start in [*slots, *in_range]:
        result = validate(policy, request(start, type=type_name), now, timelines)
        if start in slots:
            assert isinstance(result, Accepted), (start, result)
            assert result.technician_id in slots[start].technicians
        else:
            assert isinstance(result, Rejected), start


@given(st.dictionaries(st.sampled_from(["t0", "t1", "t2"]), st.integers(0, 5)), busy_map)
def test_assignment_takes_the_least_loaded_free_technician_in_policy_order(
    load: dict[str, int], busy: Busy
) -> None:
    policy = seed_policy(technicians=3)
    now = datetime(2026, 11, 30, 6, 0, tzinfo=SAO_PAULO)
    start = datetime(2026, 12, 2, 9, 0, tzinfo=SAO_PAULO)
    timelines = {k: BusyTimeline(v) for k, v in busy.items()}
    result = validate(policy, request(start), now, timelines, load=load)
    if isinstance(result, Accepted):
        free = [
            t.id
            for t in policy.technicians
            if timelines.get(t.id) is None
            or timelines[t.id].is_free(start, start + timedelta(minutes=30))
        ]
        best = min(load.get(t, 0) for t in free)
        assert load.get(result.technician_id, 0) == best
        assert result.technician_id == next(t for t in free if load.get(t, 0) == best)


@given(policies, st.lists(quarter_hours(14), min_size=1, max_size=60), type_names)
def test_accepted_bookings_never_overlap_for_a_technician(
    policy: Policy, starts: list[datetime], type_name: str
) -> None:
    """Book a stream of requests, feeding each acceptance back as busy time."""
    now = datetime(2026, 11, 30, 6, 0, tzinfo=SAO_PAULO)
    booked: dict[str, list[Interval]] = {}
    load: Counter[str] = Counter()
    for start in starts:
        timelines = {k: BusyTimeline(v) for k, v in booked.items()}
        result = validate(policy, request(start, type=type_name), now, timelines, load=load)
        if isinstance(result, Accepted):
            booked.setdefault(result.technician_id, []).append(Interval(result.start, result.end))
            load[result.technician_id] += 1
    for intervals in booked.values():
        ordered = sorted(intervals)
        for a, b in pairwise(ordered):
            assert a.end + policy.buffer <= b.start


def test_fair_assignment_spreads_a_day_evenly() -> None:
    policy = seed_policy(technicians=3)
    now = datetime(2026, 11, 30, 6, 0, tzinfo=SAO_PAULO)
    load: Counter[str] = Counter()
    booked: dict[str, list[Interval]] = {}
    day = datetime(2026, 12, 2, 7, 30, tzinfo=SAO_PAULO)
    for n in range(9):
        start = day + timedelta(minutes=30 * n)
        timelines = {k: BusyTimeline(v) for k, v in booked.items()}
        result = validate(policy, request(start), now, timelines, load=load)
        assert isinstance(result, Accepted)
        load[result.technician_id] += 1
        booked.setdefault(result.technician_id, []).append(Interval(result.start, result.end))
    assert sorted(load.values()) == [3, 3, 3]


@given(st.sampled_from(["company", "description"]), st.text())
def test_cleaned_client_text_is_all_shown_and_stays_put(name: str, text: str) -> None:
    cleaned = clean_text(name, text)
    kept = "\n\t" if name == "description" else ""
    assert all(shown(c) or c in kept for c in cleaned)
    assert clean_text(name, cleaned) == cleaned


@given(
    st.lists(st.tuples(policies, type_names, nows), min_size=1, max_size=24),
    busy_map,
)
def test_timelines_asked_again_answer_as_new_ones(
    asks: list[tuple[Policy, str, datetime]], busy: Busy
) -> None:
    """The same timeline objects, asked one question after another (answers kept on them,
    more query sets than they keep), give the slots that fresh timelines give."""
    kept = {k: BusyTimeline(v) for k, v in busy.items()}
    for policy, type_name, now in asks:
        again = free_slots(policy, type_name, FIRST, LAST, now, kept)
        assert again == list(offered(policy, type_name, now, busy).values())


@given(policies, type_names, nows, busy_map, st.sets(st.sampled_from(["t0", "t1", "t2"])))
def test_counted_slots_are_the_slots_with_how_many_are_free(
    policy: Policy, type_name: str, now: datetime, busy: Busy, eligible: set[str]
) -> None:
    """free_counts(), which the public answer is made from, is free_slots() told as a
    count per start: the same starts (in UTC), each with as many technicians."""
    timelines = {k: BusyTimeline(v) for k, v in busy.items()}
    slots = free_slots(policy, type_name, FIRST, LAST, now, timelines, eligible)
    counted = free_counts(policy, type_name, FIRST, LAST, now, timelines, eligible)
    assert counted == [(s.start.astimezone(UTC), len(s.technicians)) for s in slots]
    assert all(start.tzinfo is UTC for start, _ in counted)


def test_more_technicians_than_a_byte_counts_are_still_counted() -> None:
    """Counts are summed a byte per start while they fit in one (under 256 technicians);
    a larger desk is counted another way, to the same answer."""
    policy = seed_policy(technicians=300)
    now = datetime(2026, 12, 1, 7, tzinfo=SAO_PAULO)  # FIRST, before opening
    morning = BusyTimeline([Interval(now, now + timedelta(hours=4))])
    busy = {f"t{n}": morning for n in range(0, 300, 7)}
    slots = free_slots(policy, "standard", FIRST, FIRST, now, busy)
    counted = free_counts(policy, "standard", FIRST, FIRST, now, busy)
    assert {n for _, n in counted} == {300 - len(busy), 300}
    assert counted == [(s.start.astimezone(UTC), len(s.technicians)) for s in slots]
