"""The desk's override of the minimum notice (R3): an explicit input to the rules that
waives that one check, never the hours, closed days, the past or another session's time.

Monday 2026-11-30 08:00 in São Paulo on the seed policy: an extended session (2 h, 24 h
notice) is refused today without the override.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rules.booking import validate
from rules.intervals import BusyTimeline, Interval
from rules.model import Accepted, BookingRequest, Rejected
from rules.slots import free_slots, time_violations
from tests.rules.factories import at, seed_policy

POLICY = seed_policy()
NOW = at("2026-11-30 08:00")
EXTENDED = POLICY.session_types["extended"]


def request(start: datetime) -> BookingRequest:
    return BookingRequest(
        type="extended", start=start, company="Ótica Sol", responsible_name="João",
        phone="11 3456-7890", accept_rules=True,
    )  # fmt: skip


def codes(result: Accepted | Rejected) -> list[str]:
    return [] if isinstance(result, Accepted) else [str(v.code) for v in result.violations]


def test_the_override_waives_the_notice_and_only_the_notice() -> None:
    today = at("2026-11-30 09:00")
    assert codes(validate(POLICY, request(today), NOW, {})) == ["insufficient_notice"]
    assert codes(validate(POLICY, request(today), NOW, {}, waive_notice=True)) == []
    for start, code in (
        (at("2026-11-30 07:30"), "in_past"),
        (at("2026-11-30 12:30"), "outside_hours"),
        (at("2026-11-30 11:00"), "spans_break"),
        (at("2026-12-05 09:00"), "closed_day"),
        (at("2026-12-24 09:00"), "closed_day"),
        (at("2026-11-30 09:10"), "invalid_field"),
        (at("2027-02-01 09:00"), "beyond_horizon"),
    ):
        found = time_violations(POLICY, EXTENDED, start, NOW, waive_notice=True)
        assert [str(v.code) for v in found] == [code], start


def test_the_override_never_frees_another_sessions_time() -> None:
    start = at("2026-11-30 09:00")
    busy = {
        tech.id: BusyTimeline([Interval(start, start + timedelta(hours=1))])
        for tech in POLICY.technicians
    }
    result = validate(POLICY, request(start), NOW, busy, waive_notice=True)
    assert codes(result) == ["no_technician_available"]


def test_slots_with_the_override_are_the_bookings_it_accepts() -> None:
    plain = free_slots(POLICY, "extended", NOW.date(), NOW.date(), NOW, {})
    assert plain == []
    waived = free_slots(POLICY, "extended", NOW.date(), NOW.date(), NOW, {}, waive_notice=True)
    assert [f"{s.start:%H:%M}" for s in waived] == ["08:00", "08:30", "09:00", "09:30", "10:00",
                                                    "13:00", "13:30", "14:00", "14:30", "15:00",
                                                    "15:30"]  # fmt: skip
    for slot in waived:
        assert isinstance(
            validate(POLICY, request(slot.start), NOW, {}, waive_notice=True), Accepted
        )


def test_a_chosen_technician_is_the_only_one_eligible() -> None:
    start = at("2026-12-01 09:00")
    result = validate(POLICY, request(start), NOW, {}, eligible={"t1"})
    assert isinstance(result, Accepted) and result.technician_id == "t1"
    busy = {"t1": BusyTimeline([Interval(start, start + timedelta(hours=2))])}
    assert codes(validate(POLICY, request(start), NOW, busy, eligible={"t1"})) == [
        "no_technician_available"
    ]
