"""Per-technician busy versions: each kind of write moves the right technician's, and only
theirs, whoever writes (another handle, as another process would; a bare connection).

The busy cache rebuilds exactly the timelines whose versions moved, so a version that
does not move when it should is a stale timeline, and one that moves when it need not
is a wasted rebuild.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from connectors.base import ObjectChange
from daemon.store import Inserted, SessionRecord, Store
from rules.intervals import Interval
from rules.model import Status
from tests.daemon.store_helpers import NOW, START, open_store
from tests.daemon.store_helpers import store_at as handle_at
from tests.factories import new_session

ANA_BUSY = "ana:busy:1"
ANA_SESSIONS = "ana:sessions:1"
BRUNO_SESSIONS = "bruno:sessions:1"


@pytest.fixture
def path(store_at: str | Path) -> str | Path:
    """The test desk's store, on each backend (``store_at`` in tests/conftest.py)."""
    open_store(store_at).close()
    return store_at


@pytest.fixture
def reader(path: str | Path) -> Iterator[Store]:
    """The daemon's handle: it only reads the versions."""
    with handle_at(path) as store:
        yield store


@pytest.fixture
def writer(path: str | Path) -> Iterator[Store]:
    """Another handle on the same database, as the CLI in another process (or another
    daemon instance) has."""
    with handle_at(path) as store:
        yield store


def moved(reader: Store, write: Callable[[], object]) -> set[tuple[str, str]]:
    """Which ``(technician, version)`` pairs ``write`` moved, as ``reader`` sees them."""
    before = reader.technician_versions()
    write()
    after = reader.technician_versions()
    assert set(after) >= set(before)
    found = set()
    for tech, (calendar, sessions) in after.items():
        old_calendar, old_sessions = before.get(tech, (0, 0))
        assert calendar >= old_calendar and sessions >= old_sessions, "versions only grow"
        if calendar != old_calendar:
            found.add((tech, "calendar"))
        if sessions != old_sessions:
            found.add((tech, "sessions"))
    return found


def block(minutes: int, length: int = 60) -> Interval:
    return Interval(START + timedelta(minutes=minutes), START + timedelta(minutes=minutes + length))


def sync(store: Store, calendar: str, *changes: ObjectChange, full: bool = False) -> None:
    store.apply_sync(calendar, changes, full=full, state=None, now=NOW)


def book(store: Store, tech: str = "ana", minutes: int = 0) -> SessionRecord:
    result = store.insert_booking(
        new_session(START + timedelta(minutes=minutes), tech=tech), buffer=timedelta(0), now=NOW
    )
    assert isinstance(result, Inserted), result
    return result.session


def own_event(session: SessionRecord, shift: timedelta = timedelta(0)) -> ObjectChange:
    start, end = session.start + shift, session.end + shift
    return ObjectChange(
        "own.ics", session.calendar_uid, "e1", blocks=(Interval(start, end),), start=start, end=end
    )


def test_every_technician_has_versions_from_the_start(reader: Store) -> None:
    assert set(reader.technician_versions()) == {"ana", "bruno"}


def test_a_sync_moves_its_calendar_owner_only(reader: Store, writer: Store) -> None:
    event = ObjectChange("x.ics", "x", '"1"', blocks=(block(0),))
    assert moved(reader, lambda: sync(writer, ANA_BUSY, event)) == {("ana", "calendar")}
    changed = ObjectChange("x.ics", "x", '"2"', blocks=(block(60),))
    assert moved(reader, lambda: sync(writer, ANA_BUSY, changed)) == {("ana", "calendar")}
    gone = ObjectChange("x.ics", None, None, deleted=True)
    assert moved(reader, lambda: sync(writer, ANA_BUSY, gone)) == {("ana", "calendar")}
    other = ObjectChange("y.ics", "y", '"1"', blocks=(block(0),))
    assert moved(reader, lambda: sync(writer, BRUNO_SESSIONS, other)) == {("bruno", "calendar")}
    assert moved(reader, lambda: sync(writer, BRUNO_SESSIONS, full=True)) == {("bruno", "calendar")}


def test_a_sync_with_nothing_new_and_a_failure_move_nothing(reader: Store, writer: Store) -> None:
    # An empty delta and a failed attempt change no busy time: no timeline is rebuilt.
    assert moved(reader, lambda: sync(writer, ANA_BUSY)) == set()
    assert moved(reader, lambda: writer.record_sync_failure(ANA_BUSY, "down", NOW)) == set()


def test_a_booking_moves_its_technicians_sessions_only(reader: Store, writer: Store) -> None:
    assert moved(reader, lambda: book(writer, "ana")) == {("ana", "sessions")}
    assert moved(reader, lambda: book(writer, "bruno")) == {("bruno", "sessions")}


def test_status_and_time_changes_move_sessions_and_the_calendar_holding_the_event(
    reader: Store, writer: Store
) -> None:
    session = book(writer, "ana")
    move = Interval(session.start + timedelta(hours=2), session.end + timedelta(hours=2))

    def move_session() -> object:
        return writer.move_session(session.id, move.start, move.end, now=NOW, actor="admin")

    # No calendar holds its event yet: only the sessions overlay changes.
    assert moved(reader, move_session) == {("ana", "sessions")}
    # Its event is synced (into Bruno's calendar, say): whether that event counts as busy
    # depends on the session, so a change to the session moves Bruno's calendar version.
    assert moved(reader, lambda: sync(writer, BRUNO_SESSIONS, own_event(session))) == {
        ("bruno", "calendar")
    }

    def cancel() -> object:
        return writer.transition(session.id, Status.CANCELLED, now=NOW, actor="admin")

    assert moved(reader, cancel) == {("ana", "sessions"), ("bruno", "calendar")}


def test_columns_that_decide_no_busy_time_move_nothing(reader: Store, writer: Store) -> None:
    session = book(writer, "ana")
    sync(writer, ANA_SESSIONS, own_event(session))

    def write_back() -> None:
        writer.set_calendar_write(
            session.id, session.calendar_uid, '"2"', calendar_id=ANA_SESSIONS, href="own.ics"
        )
        writer.set_calendar_etag(session.id, '"3"')
        writer.flag_session(session.id, "look", now=NOW)

    assert moved(reader, write_back) == set()


def test_a_calendar_given_to_another_technician_moves_both(reader: Store, writer: Store) -> None:
    calendars = [
        (ANA_SESSIONS, "ana", "sessions", "caldav", "http://127.0.0.1/ana/"),
        (ANA_BUSY, "ana", "busy", "caldav", "http://127.0.0.1/ana-p/"),
        (BRUNO_SESSIONS, "bruno", "sessions", "caldav", "http://127.0.0.1/bruno/"),
    ]
    # Configured as it is: nothing moves (a reload re-applies the configuration).
    assert moved(reader, lambda: writer.upsert_calendars(calendars)) == set()
    given = [calendars[0], (ANA_BUSY, "bruno", "busy", "caldav", "http://127.0.0.1/ana-p/")]
    assert moved(reader, lambda: writer.upsert_calendars([*given, calendars[2]])) == {
        ("ana", "calendar"),
        ("bruno", "calendar"),
    }
    # A calendar removed from the configuration takes its busy time with it.
    assert moved(reader, lambda: writer.upsert_calendars([calendars[0], calendars[2]])) == {
        ("bruno", "calendar")
    }


def test_a_new_technician_gets_versions(reader: Store, writer: Store) -> None:
    writer.upsert_technicians([("ana", "Ana Souza"), ("bruno", "Bruno Lima"), ("caio", "Caio")])
    assert reader.technician_versions()["caio"] == (0, 0)


def test_writes_by_another_program_move_them_too(path: str | Path, reader: Store) -> None:
    """A bare connection (sqlite3 or psql at a shell, a restore script) cannot forget either."""

    def insert_block() -> None:
        if isinstance(path, str):
            with psycopg.connect(path) as pg:
                pg.execute(
                    "INSERT INTO calendar_objects (calendar_id, href, uid) "
                    "VALUES (%s, 'z.ics', 'z')",
                    (ANA_BUSY,),
                )
                pg.execute(
                    "INSERT INTO busy_intervals (calendar_id, href, start_ts, end_ts) "
                    "VALUES (%s, 'z.ics', 0, 60)",
                    (ANA_BUSY,),
                )
            return
        with closing(sqlite3.connect(path)) as db, db:
            db.execute(
                "INSERT INTO calendar_objects (calendar_id, href, uid) VALUES (?, 'z.ics', 'z')",
                (ANA_BUSY,),
            )
            db.execute(
                "INSERT INTO busy_intervals (calendar_id, href, start_ts, end_ts) "
                "VALUES (?, 'z.ics', 0, 60)",
                (ANA_BUSY,),
            )

    assert moved(reader, insert_block) == {("ana", "calendar")}


def test_our_own_event_where_it_repeats_its_session_moves_nothing(
    reader: Store, writer: Store
) -> None:
    """A booking's event comes back in the next sync; it adds no busy time (the session
    counts by itself), so no timeline is read again for it. Where it says something the
    session does not (another time), it moves the calendar version as any event does."""
    session = book(writer, "ana")
    assert moved(reader, lambda: sync(writer, ANA_SESSIONS, own_event(session))) == set()
    edited = dataclasses.replace(own_event(session), etag='"e2"')  # a new title, say
    assert moved(reader, lambda: sync(writer, ANA_SESSIONS, edited)) == set()
    shifted = own_event(session, timedelta(hours=1))  # the technician dragged it
    assert moved(reader, lambda: sync(writer, ANA_SESSIONS, shifted)) == {("ana", "calendar")}
    back = own_event(session)
    assert moved(reader, lambda: sync(writer, ANA_SESSIONS, back)) == {("ana", "calendar")}
    gone = ObjectChange("own.ics", None, None, deleted=True)
    assert moved(reader, lambda: sync(writer, ANA_SESSIONS, gone)) == set()
    # A full resync drops and stores it again: still nothing.
    sync(writer, ANA_SESSIONS, own_event(session))
    assert moved(reader, lambda: sync(writer, ANA_SESSIONS, own_event(session), full=True)) == set()
    # Once the session is cancelled its event is free time wherever it lies.
    writer.transition(session.id, Status.CANCELLED, now=NOW, actor="admin")
    assert moved(reader, lambda: sync(writer, ANA_SESSIONS, shifted)) == set()
    # Another object in the same sync still moves it.
    other = ObjectChange("x.ics", "x", '"1"', blocks=(block(300),))
    assert moved(reader, lambda: sync(writer, ANA_SESSIONS, back, other)) == {("ana", "calendar")}


def test_busy_time_read_again_after_own_events_is_what_was_cached(
    reader: Store, writer: Store
) -> None:
    """What the versions promise: while they stand still, busy_pairs reads the same."""
    window = Interval(START - timedelta(days=1), START + timedelta(days=2))
    sync(writer, ANA_SESSIONS, ObjectChange("x.ics", "x", '"1"', blocks=(block(300),)))
    session = book(writer, "ana")
    before, pairs = reader.technician_versions()["ana"], sorted(reader.busy_pairs("ana", window))
    sync(writer, ANA_SESSIONS, own_event(session))
    assert reader.technician_versions()["ana"] == before
    assert sorted(reader.busy_pairs("ana", window)) == pairs
    sync(writer, ANA_SESSIONS, own_event(session, timedelta(hours=1)))
    assert reader.technician_versions()["ana"] != before
    assert sorted(reader.busy_pairs("ana", window)) != pairs
