"""The contract every SessionCalendar adapter passes (vdirsyncer's ``StorageTests`` style).

A test module subclasses :class:`SessionCalendarContract` and provides two fixtures:
``calendar`` (the adapter under test, on an empty calendar) and ``app`` (a
:class:`CalendarApp` writing raw iCalendar objects into the same calendar, as the
technician's own calendar app would). Where a calendar service differs in a way the
contract allows, the subclass overrides a hook method instead of restating a test:
:meth:`~SessionCalendarContract.stored_name` (Google picks its own event ids). Nothing
here knows about HTTP or a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import icalendar
import pytest

from connectors.base import Conflict, NotFound, ObjectChange, SessionCalendar, SessionEvent
from rules.intervals import Interval

SP = ZoneInfo("America/Sao_Paulo")  # UTC-3 all year since 2019
WINDOW = Interval(datetime(2026, 3, 1, tzinfo=SP), datetime(2026, 4, 1, tzinfo=SP))


def sp(*args: int) -> datetime:
    return datetime(*args, tzinfo=SP)  # type: ignore[arg-type,misc]


def vcalendar(*events: str) -> str:
    """A VCALENDAR around VEVENT bodies (CRLF line ends, as servers store them)."""
    text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//technician app//EN\n"
    text += "".join(events) + "END:VCALENDAR\n"
    return text.replace("\n", "\r\n")


def vevent(uid: str, *lines: str) -> str:
    props = "".join(line + "\n" for line in lines)
    return f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20260101T000000Z\n{props}END:VEVENT\n"


def simple_event(uid: str, start: str, end: str, *extra: str) -> str:
    """One event with UTC times written as ``YYYYMMDDTHHMMSSZ``."""
    return vcalendar(vevent(uid, f"DTSTART:{start}", f"DTEND:{end}", "SUMMARY:private", *extra))


class CalendarApp(Protocol):
    """The technician's calendar app: raw objects by name, straight into the calendar."""

    def put_raw(self, name: str, data: str | bytes) -> str: ...

    def get_raw(self, name: str) -> bytes | None: ...

    def delete_raw(self, name: str) -> None: ...


def session(uid: str = "sess-0001", **changes: object) -> SessionEvent:
    event = SessionEvent(
        uid=uid,
        start=sp(2026, 3, 10, 9, 0),
        end=sp(2026, 3, 10, 9, 30),
        summary="Empresa X — Atendimento remoto",
        description="Responsável: Maria\nTelefone: +55 11 99999-0000\nAnyDesk: 123456789",
        stamp=sp(2026, 3, 1, 12, 0),
    )
    return replace(event, **changes)  # type: ignore[arg-type]


def name_of(change: ObjectChange) -> str:
    return change.href.rsplit("/", 1)[-1]


def by_uid(changes: Sequence[ObjectChange]) -> dict[str | None, ObjectChange]:
    return {c.uid: c for c in changes if not c.deleted}


class SessionCalendarContract:
    """Behaviour shared by every adapter; see the module docstring for the fixtures."""

    # ------------------------------------------------------------------ hooks

    # Whether the adapter fetches a changed object's body after listing it (CalDAV), so a
    # body the caller already knows is worth skipping; Google lists bodies.
    skips_known_bodies = True

    def stored_name(self, name: str) -> str:
        """The last segment of the href under which the service keeps an object the
        technician's app put as ``name``: ``name`` itself on a CalDAV server, which
        stores objects by the name the client gives."""
        return name

    # ------------------------------------------------------------------ sessions

    def test_get_of_an_absent_session_is_none(self, calendar: SessionCalendar) -> None:
        assert calendar.get_session("sess-absent") is None

    def test_create_then_get(self, calendar: SessionCalendar) -> None:
        etag = calendar.put_session(session())
        found = calendar.get_session("sess-0001")
        assert found is not None
        change, current = found
        assert current == etag
        assert change.uid == "sess-0001"
        assert (change.start, change.end) == (sp(2026, 3, 10, 9, 0), sp(2026, 3, 10, 9, 30))
        assert change.blocks == (Interval(sp(2026, 3, 10, 9, 0), sp(2026, 3, 10, 9, 30)),)
        assert not change.cancelled

    def test_update_with_the_current_etag(self, calendar: SessionCalendar) -> None:
        first = calendar.put_session(session())
        moved = session(start=sp(2026, 3, 11, 14, 0), end=sp(2026, 3, 11, 15, 0))
        second = calendar.put_session(moved, etag=first)
        assert second != first
        found = calendar.get_session("sess-0001")
        assert found is not None
        assert found[1] == second
        assert found[0].start == sp(2026, 3, 11, 14, 0)

    def test_conditional_update_with_stale_etag_conflicts(self, calendar: SessionCalendar) -> None:
        stale = calendar.put_session(session())
        current = calendar.put_session(session(state="in_progress"), etag=stale)
        with pytest.raises(Conflict):
            calendar.put_session(session(state="cancelled"), etag=stale)
        found = calendar.get_session("sess-0001")
        assert found is not None
        assert found[1] == current
        assert not found[0].cancelled  # the stale write changed nothing

    def test_update_of_a_deleted_session_is_not_found(self, calendar: SessionCalendar) -> None:
        etag = calendar.put_session(session())
        calendar.delete_session("sess-0001", etag)
        with pytest.raises(NotFound):
            calendar.put_session(session(state="in_progress"), etag=etag)
        assert calendar.get_session("sess-0001") is None

    def test_retried_create_does_not_duplicate(self, calendar: SessionCalendar) -> None:
        calendar.put_session(session())
        # The first answer was lost: the daemon writes the same create again, later moved.
        again = calendar.put_session(
            session(start=sp(2026, 3, 10, 10, 0), end=sp(2026, 3, 10, 11, 0))
        )
        result = calendar.sync(None, WINDOW)
        objects = [c for c in result.changes if not c.deleted]
        assert [c.uid for c in objects] == ["sess-0001"]
        assert objects[0].blocks == (Interval(sp(2026, 3, 10, 10, 0), sp(2026, 3, 10, 11, 0)),)
        found = calendar.get_session("sess-0001")
        assert found is not None and found[1] == again

    def test_cancelled_session_frees_its_time(self, calendar: SessionCalendar) -> None:
        etag = calendar.put_session(session())
        calendar.put_session(session(state="cancelled"), etag=etag)
        found = calendar.get_session("sess-0001")
        assert found is not None
        assert found[0].cancelled
        assert found[0].blocks == ()

    def test_delete_is_idempotent(self, calendar: SessionCalendar) -> None:
        calendar.put_session(session())
        calendar.delete_session("sess-0001")
        calendar.delete_session("sess-0001")  # absent already: success
        assert calendar.get_session("sess-0001") is None

    def test_delete_with_stale_etag_conflicts(self, calendar: SessionCalendar) -> None:
        stale = calendar.put_session(session())
        calendar.put_session(session(state="in_progress"), etag=stale)
        with pytest.raises(Conflict):
            calendar.delete_session("sess-0001", stale)
        assert calendar.get_session("sess-0001") is not None

    def test_text_with_line_breaks_injects_no_property(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        evil = session(
            summary="Empresa\r\nX-INJECTED:1\r\nDTSTART:20260301T000000Z",
            description="linha 1\r\nBEGIN:VALARM\nTRIGGER:-PT1M\rEND:VALARM",
            attendee_name="Maria\r\nORGANIZER:mailto:evil@example.com",
            attendee_email="maria@example.com",
        )
        calendar.put_session(evil)
        found = calendar.get_session(evil.uid)
        assert found is not None
        raw = app.get_raw(name_of(found[0]))
        assert raw is not None
        parsed = icalendar.Calendar.from_ical(raw)
        events = list(parsed.walk("VEVENT"))
        assert len(events) == 1
        event = events[0]
        assert "X-INJECTED" not in event
        assert "ORGANIZER" not in event
        assert len(list(event.walk("VALARM"))) == 1  # only the reminder the daemon adds
        assert event.decoded("DTSTART") == sp(2026, 3, 10, 9, 0)
        assert "X-INJECTED:1" in str(event["SUMMARY"])
        assert "BEGIN:VALARM" in str(event["DESCRIPTION"])

    def test_technician_moving_the_session_is_seen(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        calendar.put_session(session())
        first = calendar.sync(None, WINDOW)
        found = calendar.get_session("sess-0001")
        assert found is not None
        app.put_raw(
            name_of(found[0]),
            simple_event(
                "sess-0001",
                "20260312T170000Z",
                "20260312T180000Z",
                "X-EXPEDIENTE-STATE:booked",
            ),
        )
        result = calendar.sync(first.state, WINDOW)
        assert not result.full
        moved = by_uid(result.changes)["sess-0001"]
        assert (moved.start, moved.end) == (sp(2026, 3, 12, 14, 0), sp(2026, 3, 12, 15, 0))
        with pytest.raises(Conflict):
            calendar.put_session(session(state="in_progress"), etag=found[1])

    def test_a_session_event_is_listed_and_deleted_at_its_session_href(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        state = calendar.sync(None, WINDOW).state
        calendar.put_session(session())
        href = calendar.session_href("sess-0001")
        listed = calendar.sync(state, WINDOW)
        assert [(c.href, c.uid, c.deleted) for c in listed.changes] == [(href, "sess-0001", False)]
        app.delete_raw(name_of(listed.changes[0]))
        removed = calendar.sync(listed.state, WINDOW)
        assert [(c.href, c.deleted) for c in removed.changes] == [(href, True)]

    def test_a_session_event_deleted_before_any_sync_is_at_most_a_bare_href(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        """Created and deleted between two syncs, it is reported as its href alone
        (Radicale, Google) or not at all (Xandikos): the daemon must tie the href to the
        session itself, or read the event to learn it is gone."""
        state = calendar.sync(None, WINDOW).state
        calendar.put_session(session())
        found = calendar.get_session("sess-0001")
        assert found is not None
        app.delete_raw(name_of(found[0]))
        result = calendar.sync(state, WINDOW)
        href = calendar.session_href("sess-0001")
        assert [(c.href, c.uid) for c in result.changes] in ([], [(href, None)])
        assert all(c.deleted for c in result.changes)
        assert calendar.get_session("sess-0001") is None

    def test_an_event_listed_as_the_caller_wrote_it_is_not_read_again(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        """The daemon's own write comes back on the next sync. Given the ETag the write
        got, the adapter reports it ``written`` instead of fetching it; an event the
        technician changed since (another ETag) and one not named are read as ever."""
        state = calendar.sync(None, WINDOW).state
        mine = calendar.session_href("sess-0001")
        edited = calendar.session_href("sess-0002")
        other = calendar.session_href("sess-0003")
        known = {mine: calendar.put_session(session())}
        known[edited] = calendar.put_session(session("sess-0002"))
        calendar.put_session(session("sess-0003"))
        found = calendar.get_session("sess-0002")
        assert found is not None
        app.put_raw(
            name_of(found[0]), simple_event("sess-0002", "20260312T170000Z", "20260312T180000Z")
        )
        result = calendar.sync(state, WINDOW, known)
        changes = {c.href: c for c in result.changes}
        assert set(changes) == {mine, edited, other}
        assert not any(c.deleted for c in changes.values())
        assert changes[mine].etag == known[mine]
        if self.skips_known_bodies:
            assert changes[mine].written
            assert (changes[mine].uid, changes[mine].blocks) == (None, ())
        else:
            assert not changes[mine].written and changes[mine].uid == "sess-0001"
        assert not changes[edited].written
        assert changes[edited].start == sp(2026, 3, 12, 14, 0)
        assert not changes[other].written and changes[other].uid == "sess-0003"

    # ------------------------------------------------------------------ sync

    def test_first_sync_is_full_with_busy_blocks(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        app.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
        app.put_raw(
            "b.ics",
            simple_event("b", "20260303T130000Z", "20260303T133000Z", "TRANSP:TRANSPARENT"),
        )
        result = calendar.sync(None, WINDOW)
        assert result.full
        assert result.state
        found = by_uid(result.changes)
        assert set(found) == {"a", "b"}
        assert found["a"].blocks == (Interval(sp(2026, 3, 2, 10, 0), sp(2026, 3, 2, 11, 0)),)
        assert found["a"].etag
        assert found["b"].blocks == ()  # free time

    def test_idle_sync_returns_no_changes(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        app.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
        first = calendar.sync(None, WINDOW)
        idle = calendar.sync(first.state, WINDOW)
        assert not idle.full
        assert list(idle.changes) == []
        assert calendar.sync(idle.state, WINDOW).changes == []

    def test_one_change_of_each_kind_is_reported_alone(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        for uid in ("keep", "edit", "gone"):
            app.put_raw(f"{uid}.ics", simple_event(uid, "20260302T130000Z", "20260302T140000Z"))
        state = calendar.sync(None, WINDOW).state

        app.put_raw("new.ics", simple_event("new", "20260305T130000Z", "20260305T140000Z"))
        added = calendar.sync(state, WINDOW)
        assert not added.full
        assert [(name_of(c), c.uid, c.deleted) for c in added.changes] == [
            (self.stored_name("new.ics"), "new", False)
        ]
        assert added.changes[0].blocks == (Interval(sp(2026, 3, 5, 10, 0), sp(2026, 3, 5, 11, 0)),)

        app.put_raw("edit.ics", simple_event("edit", "20260306T120000Z", "20260306T130000Z"))
        edited = calendar.sync(added.state, WINDOW)
        assert [(name_of(c), c.uid, c.deleted) for c in edited.changes] == [
            (self.stored_name("edit.ics"), "edit", False)
        ]
        assert edited.changes[0].blocks == (Interval(sp(2026, 3, 6, 9, 0), sp(2026, 3, 6, 10, 0)),)

        app.delete_raw("gone.ics")
        removed = calendar.sync(edited.state, WINDOW)
        assert [(name_of(c), c.deleted) for c in removed.changes] == [
            (self.stored_name("gone.ics"), True)
        ]
        assert removed.changes[0].blocks == ()

    def test_unusable_state_resyncs_in_full(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        app.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
        result = calendar.sync("not a state of this adapter", WINDOW)
        assert result.full
        assert set(by_uid(result.changes)) == {"a"}

    def test_window_beyond_the_synced_range_resyncs_in_full(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        app.put_raw(
            "weekly.ics",
            simple_event("weekly", "20260302T130000Z", "20260302T140000Z", "RRULE:FREQ=WEEKLY"),
        )
        first = calendar.sync(None, WINDOW)
        later = Interval(WINDOW.start + timedelta(days=60), WINDOW.end + timedelta(days=60))
        result = calendar.sync(first.state, later)
        assert result.full
        weekly = by_uid(result.changes)["weekly"]
        # Mondays 10:00 in May 2026 (4th, 11th, 18th, 25th) are busy now.
        for day in (4, 11, 18, 25):
            assert Interval(sp(2026, 5, day, 10, 0), sp(2026, 5, day, 11, 0)) in weekly.blocks

    def test_broken_event_is_a_problem_with_its_uid_and_the_rest_still_counts(
        self, calendar: SessionCalendar, app: CalendarApp
    ) -> None:
        app.put_raw("good.ics", simple_event("good", "20260302T130000Z", "20260302T140000Z"))
        app.put_raw(
            "undated.ics", vcalendar(vevent("undated", "DTSTART:20260304T120000Z", "SUMMARY:x"))
        )
        result = calendar.sync(None, WINDOW)
        found = by_uid(result.changes)
        assert found["good"].blocks == (Interval(sp(2026, 3, 2, 10, 0), sp(2026, 3, 2, 11, 0)),)
        # Conservative: a DTSTART without an end blocks an hour, and says so.
        assert found["undated"].blocks == (Interval(sp(2026, 3, 4, 9, 0), sp(2026, 3, 4, 10, 0)),)
        assert any(p.uid == "undated" for p in found["undated"].problems)
        assert any(p.uid == "undated" and p.calendar == calendar.name for p in result.problems)
