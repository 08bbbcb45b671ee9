"""Durations, intervals, contacts, messages and lifecycle on their own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from daemon.i18n import message
from rules.contact import format_phone, normalise_email, normalise_phone
from rules.durations import DurationError, format_duration, parse_duration
from rules.intervals import BusyTimeline, Interval, NaiveDatetimeError, merge
from rules.lifecycle import TRANSITIONS, Event, IllegalTransition, check_in, transition
from rules.model import Code, Status, TimeRange, Violation, remote_tool
from rules.slots import free_slots
from tests.rules.factories import SAO_PAULO, at, seed_policy


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90s", 1.5), ("10m", 10), ("2h", 120), ("1d", 1440), ("1h30m", 90), (" 1h 30m ", 90)],
)
def test_durations(text: str, minutes: float) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "30", "30 minutes", "m", "1m1h", "1h1h", "-5m", "1.5h"])
def test_bad_durations_say_how_to_write_them(text: str) -> None:
    with pytest.raises(DurationError, match=r'"30m"|largest first'):
        parse_duration(text)


def test_durations_stop_at_ten_years() -> None:
    assert parse_duration("3650d") == timedelta(days=3650)
    for text in ("3651d", "9999999999d"):
        with pytest.raises(DurationError, match="too long"):
            parse_duration(text)


@given(st.integers(0, 10**7))
def test_format_duration_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_time_range_parse() -> None:
    assert str(TimeRange.parse("7:30-12:00")) == "07:30-12:00"
    for bad in ("12:00-07:30", "07:30", "25:00-26:00"):
        with pytest.raises(ValueError):
            TimeRange.parse(bad)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(NaiveDatetimeError, match="time zone"):
        Interval(datetime(2026, 1, 1), datetime(2026, 1, 2))


def utc(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, tzinfo=UTC)


def test_merge_and_timeline() -> None:
    merged = merge(
        [Interval(utc(9), utc(10)), Interval(utc(10), utc(11)), Interval(utc(13), utc(14))]
    )
    assert merged == [Interval(utc(9), utc(11)), Interval(utc(13), utc(14))]
    timeline = BusyTimeline(merged)
    assert timeline.is_free(utc(11), utc(13))  # touching both ends is free
    assert not timeline.is_free(utc(10, 59), utc(12))
    assert not timeline.is_free(utc(8), utc(15))
    assert timeline.conflicts(utc(10), utc(13, 30)) == merged


@given(
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 30)), max_size=30),
    st.integers(0, 230),
    st.integers(1, 30),
)
def test_timeline_agrees_with_brute_force(
    raw: list[tuple[int, int]], start: int, length: int
) -> None:
    base = utc(0)
    intervals = [
        Interval(base + timedelta(minutes=a), base + timedelta(minutes=a + b)) for a, b in raw
    ]
    query = Interval(base + timedelta(minutes=start), base + timedelta(minutes=start + length))
    expected = not any(query.overlaps(i) for i in intervals)
    assert BusyTimeline(intervals).is_free(query.start, query.end) == expected


def test_slot_answers_ask_only_timelines_that_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a booking only its technician's timeline is new: the others answer from what
    they kept, so the slots are computed again at the cost of one technician."""
    policy = seed_policy(technicians=3)
    now = datetime(2026, 11, 30, 8, tzinfo=UTC)
    first, last = date(2026, 12, 1), date(2026, 12, 4)
    busy = {
        "t0": BusyTimeline([Interval(utc(12), utc(13))]),
        "t1": BusyTimeline([Interval(utc(14), utc(16))]),
        "t2": BusyTimeline(),
    }
    before = free_slots(policy, "standard", first, last, now, busy)
    asked: list[BusyTimeline] = []
    real = BusyTimeline.free_mask

    def counting(self: BusyTimeline, queries: Sequence[tuple[float, float]]) -> list[bool]:
        asked.append(self)
        return real(self, queries)

    monkeypatch.setattr(BusyTimeline, "free_mask", counting)
    assert free_slots(policy, "standard", first, last, now, busy) == before
    assert asked == []
    booked = Interval(
        datetime(2026, 12, 2, 10, tzinfo=SAO_PAULO), datetime(2026, 12, 2, 10, 30, tzinfo=SAO_PAULO)
    )
    busy["t2"] = busy["t2"].with_pairs([(booked.start.timestamp(), booked.end.timestamp())])
    after = free_slots(policy, "standard", first, last, now, busy)
    assert asked == [busy["t2"]]
    taken = {s.start: s.technicians for s in after}
    assert all(
        "t2" not in taken.get(s.start, ())
        for s in before
        if booked.overlaps(Interval(s.start, s.end))
    )
    assert any("t2" in s.technicians and booked.overlaps(Interval(s.start, s.end)) for s in before)
    # Another question (a later clock moves the first start) is asked anew, and right.
    later = now + timedelta(days=2)
    asked.clear()
    moved = free_slots(policy, "standard", first, last, later, busy)
    assert len(asked) == 3
    assert all(s.start >= later for s in moved)


@given(
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 30)), max_size=30),
    st.lists(st.tuples(st.integers(0, 230), st.integers(1, 30)), max_size=30),
)
def test_free_mask_answers_like_is_free(
    raw: list[tuple[int, int]], queries: list[tuple[int, int]]
) -> None:
    timeline = BusyTimeline.from_timestamps((a * 60.0, (a + b) * 60.0) for a, b in raw)
    asked = sorted((a * 60.0, (a + b) * 60.0) for a, b in queries)
    assert timeline.free_mask(asked) == [timeline.is_free_at(a, b) for a, b in asked]


@given(
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40)), max_size=40),
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40)), max_size=12),
)
# One calendar interval spanning two sessions and ending where a third begins; sessions
# touching calendar time on either side; an empty session inside calendar time.
@example(base=[(10, 50)], extra=[(15, 5), (30, 5), (60, 10)])
@example(base=[(10, 20)], extra=[(30, 10), (0, 10), (15, 0)])
def test_pairs_laid_over_a_timeline_merge_like_a_timeline_of_everything(
    base: list[tuple[int, int]], extra: list[tuple[int, int]]
) -> None:
    """Touching and overlapping intervals merge, empty ones vanish, in either path."""

    def pairs(raw: list[tuple[int, int]]) -> list[tuple[float, float]]:
        return [(a * 60.0, (a + b) * 60.0) for a, b in raw]

    timeline = BusyTimeline.from_timestamps(pairs(base))
    laid = timeline.with_pairs(pairs(extra))
    everything = BusyTimeline.from_timestamps(pairs(base) + pairs(extra))
    assert list(laid.intervals) == list(everything.intervals)
    assert list(timeline.intervals) == list(BusyTimeline.from_timestamps(pairs(base)).intervals)


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("(11) 98765-4321", "+5511987654321"),
        ("11 3456 7890", "+551134567890"),
        ("+55 11 98765 4321", "+5511987654321"),
        ("5511987654321", "+5511987654321"),
        ("0 21 11 98765-4321", "+5511987654321"),
        ("011987654321", "+5511987654321"),
        ("0055 11 98765-4321", "+5511987654321"),
        ("+1 415 555 2671", "+14155552671"),
    ],
)
def test_brazilian_phone_formats_are_normalised(typed: str, e164: str) -> None:
    assert normalise_phone(typed) == e164


@pytest.mark.parametrize(
    "typed",
    ["", "12345", "(11) 88765-4321", "(01) 98765-4321", "11 1234 5678", "ligar à tarde", "+0 11"],
)
def test_implausible_phones_are_refused(typed: str) -> None:
    assert normalise_phone(typed) is None


def test_format_phone_and_email() -> None:
    assert format_phone("+5511987654321") == "+55 11 98765-4321"
    assert normalise_email(" ana@example.com.br ") == "ana@example.com.br"
    assert normalise_email("ana@localhost") is None
    assert normalise_email("a b@example.com") is None


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("maria.lima+suporte@example.com", "maria.lima+suporte@example.com"),
        ("o'neil@example.co.uk", "o'neil@example.co.uk"),
        ("ana@ótica.com.br", "ana@xn--tica-pqa.com.br"),  # the domain's ASCII form
        # What the mailer refuses for good must be refused at booking time.
        ("a,b@example.com", None),
        ("a<b>@example.com", None),
        ("ação@exemplo.com.br", None),  # needs SMTPUTF8, which not every server speaks
        ("a..b@example.com", None),
        (".a@example.com", None),
        ("a@-example.com", None),
        ("a@example", None),
        ("x" * 65 + "@example.com", None),
    ],
)
def test_email_addresses_are_those_a_mail_server_takes(typed: str, stored: str | None) -> None:
    assert normalise_email(typed) == stored


def test_digits_are_ascii_digits() -> None:
    """Other scripts' digits match \\d but nobody can dial or type them into AnyDesk."""
    assert normalise_phone("+١٢١٢٥٥٥١٢٣٤") is None
    assert normalise_phone("+1 212 555 1234") == "+12125551234"
    anydesk = remote_tool("AnyDesk")
    assert not anydesk.id_is_valid("١٢٣٤٥٦٧٨٩")
    assert not anydesk.id_is_valid("１２３４５６７８９")


def test_anydesk_ids() -> None:
    anydesk = remote_tool("anydesk")
    assert anydesk.name == "anydesk" and anydesk.id_pattern
    for good in ("123 456 789", "123.456.789", "123-456-789", "1234567890", "loja-centro@ad",
                 "caixa1@pardini", "loja.centro@ad"):  # fmt: skip
        assert anydesk.id_is_valid(good), good
    for bad in ("12345", "12345678901", "@ad", "abc", ""):
        assert not anydesk.id_is_valid(bad), bad
    assert remote_tool("Outra ferramenta").id_is_valid("qualquer-coisa")


@pytest.mark.parametrize("code", list(Code))
@pytest.mark.parametrize("language", ["pt-BR", "en"])
def test_every_code_has_a_message_in_both_languages(code: Code, language: str) -> None:
    text = message(Violation(code, "phone"), language)
    assert text and "{" not in text


def test_messages_differ_by_language_and_fill_parameters() -> None:
    violation = Violation(
        Code.SPANS_BREAK, "start", params={"break_start": "12:00", "break_end": "13:00"}
    )
    assert "intervalo das 12:00 às 13:00" in message(violation, "pt-BR")
    assert "break from 12:00 to 13:00" in message(violation, "en-US")


def test_lifecycle_table_and_illegal_transitions() -> None:
    assert transition(Status.BOOKED, Event.CHECK_IN) == Status.IN_PROGRESS
    assert transition(Status.IN_PROGRESS, Event.COMPLETE) == Status.COMPLETED
    assert transition(Status.BOOKED, Event.CANCEL) == Status.CANCELLED
    for status in Status:
        for event in Event:
            if (status, event) not in TRANSITIONS:
                with pytest.raises(IllegalTransition, match=status.value):
                    transition(status, event)
    with pytest.raises(IllegalTransition, match="final"):
        transition(Status.RESCHEDULED, Event.CHECK_IN)


def test_check_in_window() -> None:
    policy = seed_policy()
    start = at("2026-12-01 09:00")
    assert (
        check_in(policy, Status.BOOKED, start, start - timedelta(minutes=30)) == Status.IN_PROGRESS
    )
    with pytest.raises(IllegalTransition, match="too early: check-in opens 30 minutes before"):
        check_in(policy, Status.BOOKED, start, start - timedelta(minutes=31))


def test_durations_in_messages_are_words() -> None:
    horizon = Violation(Code.BEYOND_HORIZON, "start", params={"horizon": "30d"})
    assert message(horizon) == "Só é possível agendar até 30 dias à frente."
    notice = Violation(Code.INSUFFICIENT_NOTICE, "start", params={"notice": "1h", "type": "x"})
    assert message(notice, "en") == "This session type must be booked at least 1 hour in advance."
