"""Each rule of the desk's policy document, with the document's own numbers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

import pytest

from daemon.i18n import message
from rules.booking import validate
from rules.intervals import BusyTimeline, Interval
from rules.lifecycle import Event, IllegalTransition, check_in, due_event, given_reason, transition
from rules.model import Accepted, Policy, Rejected, Status
from rules.slots import free_slots
from tests.factories import booking_request as request
from tests.rules.factories import at, seed_policy

POLICY = seed_policy()
NOW = at("2026-11-30 07:00")  # a Monday morning, before opening


def starts(
    type_name: str,
    day: str,
    now: datetime = NOW,
    policy: Policy = POLICY,
    busy: Mapping[str, BusyTimeline] | None = None,
) -> list[str]:
    d = date.fromisoformat(day)
    return [f"{s.start:%H:%M}" for s in free_slots(policy, type_name, d, d, now, busy or {})]


def codes(result: Accepted | Rejected) -> list[str]:
    assert isinstance(result, Rejected), result
    return result.codes


def test_r4_friday_last_slot_is_1700_and_1715_is_never_offered() -> None:
    friday = starts("standard", "2026-12-04")
    assert friday[-1] == "17:00"
    assert "17:15" not in friday
    assert isinstance(validate(POLICY, request(at("2026-12-04 17:00")), NOW, {}), Accepted)
    assert codes(validate(POLICY, request(at("2026-12-04 17:15")), NOW, {})) == ["outside_hours"]


def test_r4_grid_of_a_day_follows_both_ranges_and_skips_lunch() -> None:
    monday = starts("standard", "2026-11-30")
    assert monday[:3] == ["07:30", "08:00", "08:30"]
    assert "11:30" in monday and "12:00" not in monday and "12:30" not in monday
    assert "13:00" in monday
    assert len(monday) == 9 + 9  # 07:30..11:30 and 13:00..17:00


def test_r4_session_into_lunch_break_is_spans_break() -> None:
    result = validate(POLICY, request(at("2026-12-01 11:45")), NOW, {})
    assert codes(result) == ["spans_break"]
    assert result.violations[0].params["break_end"] == "13:00"  # type: ignore[union-attr]


def test_r4_start_during_lunch_is_outside_hours() -> None:
    assert codes(validate(POLICY, request(at("2026-12-01 12:30")), NOW, {})) == ["outside_hours"]


def test_r4_saturday_and_christmas_are_closed_days() -> None:
    assert starts("standard", "2026-12-05") == []
    assert codes(validate(POLICY, request(at("2026-12-05 09:00")), NOW, {})) == ["closed_day"]
    assert starts("standard", "2026-12-25") == []
    result = validate(POLICY, request(at("2026-12-25 09:00")), NOW, {})
    assert codes(result) == ["closed_day"]
    assert result.violations[0].detail == "holiday"  # type: ignore[union-attr]


def test_desk_closed_date_is_a_closed_day() -> None:
    result = validate(POLICY, request(at("2026-12-24 09:00")), at("2026-12-20 09:00"), {})
    assert codes(result) == ["closed_day"]
    assert result.violations[0].detail == "closed_date"  # type: ignore[union-attr]


def test_r3_extended_tomorrow_morning_offered_today_refused() -> None:
    tomorrow = starts("extended", "2026-12-01")
    assert tomorrow[0] == "07:30"
    assert starts("extended", "2026-11-30") == []
    result = validate(POLICY, request(at("2026-11-30 09:00"), type="extended"), NOW, {})
    assert codes(result) == ["insufficient_notice"]
    assert isinstance(
        validate(POLICY, request(at("2026-12-01 07:30"), type="extended"), NOW, {}), Accepted
    )


def test_r3_standard_can_be_booked_the_same_day_with_short_notice() -> None:
    now = at("2026-11-30 09:50")
    today = starts("standard", "2026-11-30", now=now)
    assert today[0] == "10:30"  # 10:00 is only 10 minutes ahead: less than 15 minutes' notice
    assert codes(validate(POLICY, request(at("2026-11-30 10:00")), now, {})) == [
        "insufficient_notice"
    ]


def test_extended_must_fit_a_single_range() -> None:
    tuesday = starts("extended", "2026-12-01")
    assert tuesday[-1] == "15:30" and "10:30" not in tuesday and "10:00" in tuesday


def test_r5_check_in_at_ten_minutes_keeps_the_session() -> None:
    start = at("2026-12-01 09:00")
    at_deadline = start + timedelta(minutes=10)
    assert (
        due_event(POLICY, Status.BOOKED, start, start + timedelta(minutes=30), at_deadline) is None
    )
    assert check_in(POLICY, Status.BOOKED, start, at_deadline) == Status.IN_PROGRESS


def test_r5_no_check_in_by_ten_minutes_one_second_is_rescheduled() -> None:
    start = at("2026-12-01 09:00")
    late = start + timedelta(minutes=10, seconds=1)
    event = due_event(POLICY, Status.BOOKED, start, start + timedelta(minutes=30), late)
    assert event is Event.NO_SHOW
    assert transition(Status.BOOKED, event) == Status.RESCHEDULED
    with pytest.raises(IllegalTransition, match="too late"):
        check_in(POLICY, Status.BOOKED, start, late)


def test_busy_technician_is_skipped_and_all_busy_means_no_technician() -> None:
    start = at("2026-12-01 09:00")
    busy = {"t0": BusyTimeline([Interval(start, start + timedelta(hours=1))])}
    result = validate(POLICY, request(start), NOW, busy)
    assert isinstance(result, Accepted) and result.technician_id == "t1"
    busy["t1"] = BusyTimeline(
        [Interval(start - timedelta(minutes=5), start + timedelta(minutes=5))]
    )
    assert codes(validate(POLICY, request(start), NOW, busy)) == ["no_technician_available"]
    assert "09:00" not in starts("standard", "2026-12-01", busy=busy)


def test_r7_r6_r1_fields() -> None:
    result = validate(
        POLICY,
        request(
            at("2026-12-01 09:00"),
            responsible_name="  ",
            phone="12345",
            accept_rules=False,
            remote_tool="TeamViewer",
        ),
        NOW,
        {},
    )
    assert sorted(codes(result)) == [
        "invalid_field",
        "missing_field",
        "rules_not_accepted",
        "tool_not_allowed",
    ]
    fields = {v.code: v.field for v in result.violations}  # type: ignore[union-attr]
    assert fields["missing_field"] == "responsible_name"
    assert fields["invalid_field"] == "phone"


def test_r7_a_responsible_person_nobody_can_read_is_missing() -> None:
    invisible = "\u200b\u2060\u3164"
    result = validate(POLICY, request(at("2026-12-01 09:00"), responsible_name=invisible), NOW, {})
    assert isinstance(result, Rejected)
    assert [(v.code, v.field) for v in result.violations] == [("missing_field", "responsible_name")]


def test_an_overlong_remote_id_is_one_violation() -> None:
    result = validate(POLICY, request(at("2026-12-01 09:00"), remote_id="1" * 200), NOW, {})
    assert isinstance(result, Rejected)
    assert [(v.code, v.field, v.detail) for v in result.violations] == [
        ("invalid_field", "remote_id", "too_long")
    ]


def test_accepted_booking_carries_normalised_fields() -> None:
    result = validate(POLICY, request(at("2026-12-01 09:00"), company=" Loja\r\nX "), NOW, {})
    assert isinstance(result, Accepted)
    assert result.fields["phone"] == "+5511987654321"
    assert result.fields["company"] == "Loja X"
    assert result.fields["remote_tool"] == "AnyDesk"
    assert result.end - result.start == timedelta(minutes=30)


# Each reorders or hides text without a trace on screen.
HIDDEN = [
    *(chr(c) for c in range(0x202A, 0x202F)),  # embeddings and overrides (RLO: U+202E)
    *(chr(c) for c in range(0x2066, 0x206A)),  # isolates
    "\u200e", "\u200f", "\u061c",  # directional marks
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e",  # zero width
    "\U000e0041",  # a tag character
    "\x00", "\x1b", "\x7f", "\x9b",  # C0, DEL, C1 controls
    "\u3164",  # the Hangul filler: a letter that renders blank
]  # fmt: skip


@pytest.mark.parametrize("char", HIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_client_text_keeps_nothing_invisible(char: str) -> None:
    text = f"Loja{char} X"
    booking = request(at("2026-12-01 09:00"), company=text, description=f"a{char}\nb{char}")
    result = validate(POLICY, booking, NOW, {})
    assert isinstance(result, Accepted)
    assert result.fields["company"] == "Loja X"
    assert result.fields["description"] == "a\nb"


@pytest.mark.parametrize("char", HIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_an_admins_cancel_reason_keeps_nothing_invisible_either(char: str) -> None:
    """The reason reaches the client's mail as the desk's words: no override may ride on it."""
    assert given_reason(f" Cliente{char}\npediu{char} ") == "Cliente pediu"


def test_the_description_keeps_its_lines_and_tabs_and_nothing_that_fakes_one() -> None:
    text = " 1\r\n2\r3\u20284\u20295\x856\tsix "
    result = validate(POLICY, request(at("2026-12-01 09:00"), description=text), NOW, {})
    assert isinstance(result, Accepted)
    assert result.fields["description"] == "1\n2\n3\n4\n5\n6\tsix"
    one_line = request(at("2026-12-01 09:00"), responsible_name="Ana\u2028Check-in: x")
    result = validate(POLICY, one_line, NOW, {})
    assert isinstance(result, Accepted)
    assert result.fields["responsible_name"] == "Ana Check-in: x"


def test_past_beyond_horizon_unknown_type() -> None:
    assert codes(validate(POLICY, request(at("2026-11-27 09:00")), NOW, {})) == ["in_past"]
    assert codes(validate(POLICY, request(at("2027-01-05 09:00")), NOW, {})) == ["beyond_horizon"]
    assert codes(validate(POLICY, request(at("2026-12-01 09:00"), type="vip"), NOW, {})) == [
        "unknown_type"
    ]
    assert starts("standard", "2027-01-05") == []


def test_off_grid_start_is_refused_so_only_offered_slots_are_bookable() -> None:
    result = validate(POLICY, request(at("2026-12-01 09:10")), NOW, {})
    assert codes(result) == ["invalid_field"]
    assert result.violations[0].detail == "grid"  # type: ignore[union-attr]


def test_a_weekly_closed_day_says_which_days_are_open() -> None:
    saturday = at("2026-12-05 09:00")
    result = validate(POLICY, request(saturday), NOW, {})
    assert isinstance(result, Rejected)
    closed = next(v for v in result.violations if v.code == "closed_day")
    assert message(closed, "pt-BR") == (
        "Não há atendimento neste dia; atendemos de segunda-feira a sexta-feira."
    )
    assert message(closed, "en").endswith("remote sessions run Monday to Friday.")
    day = POLICY.weekly[0]
    odd = seed_policy(weekly={0: day, 1: day, 3: day, 4: day, 5: day})
    wednesday = at("2026-12-02 09:00")
    result = validate(odd, request(wednesday), NOW, {})
    assert isinstance(result, Rejected)
    closed = next(v for v in result.violations if v.code == "closed_day")
    assert message(closed, "pt-BR") == (
        "Não há atendimento neste dia; atendemos segunda-feira, terça-feira, quinta-feira, "
        "sexta-feira e sábado."
    )
