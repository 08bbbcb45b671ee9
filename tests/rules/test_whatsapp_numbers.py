"""WhatsApp ids against the numbers clients book with: every Brazilian habit, and the
mobile ids that lack the ninth digit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rules.contact import normalise_phone, whatsapp_id, whatsapp_number

AREA = st.integers(1, 9).flatmap(lambda a: st.integers(1, 9).map(lambda b: f"{a}{b}"))
MOBILE = st.from_regex(r"9[0-9]{8}", fullmatch=True)
LANDLINE = st.from_regex(r"[2-5][0-9]{7}", fullmatch=True)


def _formats(area: str, number: str) -> list[str]:
    """How clients type one number: the habits ``normalise_phone`` reads."""
    head, tail = number[:-4], number[-4:]
    return [
        f"({area}) {head}-{tail}",
        f"+55 {area} {head} {tail}",
        f"55{area}{number}",
        f"0{area} {head}-{tail}",
        f"0 21 {area} {head}-{tail}",
    ]


@given(AREA, MOBILE)
def test_a_mobile_id_with_or_without_the_ninth_digit_finds_the_booked_number(
    area: str, number: str
) -> None:
    booked = f"+55{area}{number}"
    for typed in _formats(area, number):
        assert normalise_phone(typed) == booked
    assert whatsapp_number(whatsapp_id(booked)) == booked
    if number[1] in "6789":  # an old mobile: its account may lack the ninth digit
        assert whatsapp_number(f"55{area}{number[1:]}") == booked


@given(AREA, LANDLINE)
def test_a_landline_id_is_read_as_itself(area: str, number: str) -> None:
    booked = f"+55{area}{number}"
    assert whatsapp_number(whatsapp_id(booked)) == booked


@given(st.from_regex(r"[1-9][0-9]{7,14}", fullmatch=True))
def test_every_reading_is_a_number_the_booking_form_accepts(digits: str) -> None:
    found = whatsapp_number(digits)
    assert found is None or normalise_phone(found) == found


def test_the_issue_s_example_and_what_is_no_number() -> None:
    assert whatsapp_number("551187654321") == "+5511987654321"
    assert whatsapp_number("5511987654321") == "+5511987654321"
    assert whatsapp_number("551134567890") == "+551134567890"  # a landline stays one
    assert whatsapp_number("14155550123") == "+14155550123"
    assert whatsapp_number("") is None
    assert whatsapp_number("0123456789") is None
    assert whatsapp_number("1" * 16) is None
    # Eight digits starting with 0 or 1 were never a Brazilian number.
    assert whatsapp_number("551101234567") is None
