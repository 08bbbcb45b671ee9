"""The typed sections take their keys from the schema: a key is written once.

A plain new key is one ``setting()`` field of its section's dataclass, a key of one kind
of calendar too: the schema row, the parsing and the typed value follow from it. Keys the
schema writes by hand (a technician's nested calendars, ``rules_file``) still meet their
fields in ``from_table``, and forgetting either half stops the first load instead of leaving a key
validated but unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.config import (
    ARRAY_SECTIONS,
    BOOKING,
    CALENDAR,
    SCHEMA,
    ArrayOfTables,
    BookingConfig,
    CalendarConfig,
    Duration,
    Setting,
    Table,
    Text,
    from_table,
    setting,
    settings_of,
    variants_of,
    zero_is_none,
)
from daemon.config.kinds import Context

CONVERTED_BOOKING = {
    "slot_step": timedelta(minutes=30),
    "buffer": timedelta(0),
    "horizon": timedelta(days=30),
    "grace": timedelta(minutes=10),
    "checkin_early": timedelta(minutes=30),
    "cancel_cutoff": timedelta(hours=2),
    "reminder": timedelta(0),
    "remote_tools": ("AnyDesk",),
    "required_fields": ("company", "phone"),
    "rate_limit": 0,
    "refusal_limit": 30,
    "rate_window": timedelta(hours=1),
}


def test_each_key_fills_its_field_in_the_form_the_daemon_uses() -> None:
    booking = from_table(BookingConfig, BOOKING, CONVERTED_BOOKING)
    assert booking.grace == timedelta(minutes=10)
    assert booking.reminder is None and booking.rate_limit is None  # 0 means off
    assert booking.refusal_limit == 30
    assert booking.required_fields == frozenset({"company", "phone"})


@dataclass(frozen=True)
class WithFollowUp(BookingConfig):
    follow_up: timedelta | None = None


FOLLOW_UP = Setting("follow_up", Duration(), "0m", "Ask how it went.", then=zero_is_none)


def test_a_new_key_is_one_setting_and_one_field() -> None:
    table = Table([*BOOKING.settings, FOLLOW_UP])
    booking = from_table(WithFollowUp, table, {**CONVERTED_BOOKING, "follow_up": timedelta(days=1)})
    assert booking.follow_up == timedelta(days=1)
    off = from_table(WithFollowUp, table, {**CONVERTED_BOOKING, "follow_up": timedelta(0)})
    assert off.follow_up is None


def test_a_key_without_a_field_stops_the_load() -> None:
    table = Table([*BOOKING.settings, FOLLOW_UP])
    with pytest.raises(TypeError, match="keys without a field: follow_up; fields without"):
        from_table(BookingConfig, table, CONVERTED_BOOKING)


def test_a_field_without_a_key_stops_the_load() -> None:
    with pytest.raises(TypeError, match="keys without a field: none; fields without a key: follow"):
        from_table(WithFollowUp, BOOKING, CONVERTED_BOOKING)


def test_a_computed_field_needs_no_key() -> None:
    booking = from_table(WithFollowUp, BOOKING, CONVERTED_BOOKING, follow_up=timedelta(hours=1))
    assert booking.follow_up == timedelta(hours=1)


def test_messages_know_which_sections_are_lists_of_tables() -> None:
    arrays = {s.name for s in SCHEMA.settings if isinstance(s.kind, ArrayOfTables)}
    assert arrays == ARRAY_SECTIONS


@dataclass(frozen=True)
class WithCheckUp(BookingConfig):
    # The whole cost of a new [booking] key: this one declaration.
    follow_up: timedelta | None = setting(
        Duration(), "0m", "Ask how it went this long after the session.", then=zero_is_none
    )


def _convert(table: Table, raw: dict[str, object]) -> dict[str, object]:
    ctx = Context(file="test.toml", base=Path("/"), environ={}, check_secrets=False)
    converted: dict[str, object] = table.convert(raw, ctx, ("booking",))
    assert ctx.problems == []
    return converted


def test_a_new_key_is_one_setting_field() -> None:
    table = Table(settings_of(WithCheckUp))
    assert [s.name for s in table.settings] == [*(s.name for s in BOOKING.settings), "follow_up"]
    key = table.settings[-1]
    assert (key.default, key.help) == ("0m", "Ask how it went this long after the session.")

    written = from_table(WithCheckUp, table, _convert(table, {"follow_up": "1d"}))
    assert written.follow_up == timedelta(days=1)
    assert written.grace == timedelta(minutes=10)  # the other keys keep their defaults
    defaulted = from_table(WithCheckUp, table, _convert(table, {}))
    assert defaulted.follow_up is None  # "0m", its default, means off


def test_the_booking_table_is_the_booking_fields() -> None:
    assert [s.name for s in BOOKING.settings] == [
        "slot_step",
        "buffer",
        "horizon",
        "grace",
        "checkin_early",
        "cancel_cutoff",
        "reminder",
        "remote_tools",
        "required_fields",
        "rate_limit",
        "refusal_limit",
        "rate_window",
    ]


@dataclass(frozen=True)
class WithPrincipal(CalendarConfig):
    # The whole cost of a new key of CalDAV calendars: this one declaration.
    principal: str | None = setting(
        Text("a principal URL"), help="The user's principal.", variant="caldav"
    )


def _calendar(table: Table, raw: dict[str, object]) -> WithPrincipal:
    where = {"id": "ana:sessions:1", "technician": "ana", "role": "sessions", "key": "k"}
    return from_table(WithPrincipal, table, _convert(table, raw), **where)


def test_a_new_calendar_key_is_one_setting_field() -> None:
    table = Table(settings_of(WithPrincipal), variants=variants_of(WithPrincipal))
    assert [s.name for s in table.settings] == ["kind"]
    caldav = [s.name for s in table.variants["caldav"]]
    assert caldav == [*(s.name for s in CALENDAR.variants["caldav"]), "principal"]
    google = [s.name for s in table.variants["google"]]
    assert google == [s.name for s in CALENDAR.variants["google"]]

    url = "http://127.0.0.1:5232/ana/work/"
    written = _calendar(table, {"kind": "caldav", "url": url, "principal": "/ana/"})
    assert (written.principal, written.url, written.verify_tls) == ("/ana/", url, True)
    assert _calendar(table, {"kind": "caldav", "url": url}).principal is None
    other: dict[str, object] = {
        "kind": "google",
        "calendar_id": "ana@empresa.com.br",
        "credentials_file": "g.json",
    }
    google_calendar = _calendar(table, other)
    assert google_calendar.principal is None and google_calendar.url is None  # CalDAV's keys
    assert google_calendar.verify_tls is True
