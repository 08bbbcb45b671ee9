"""The SQLite store on real files: migrations, busy cache, sessions, outbox, audit."""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import ObjectChange
from daemon.store import (
    AUDIT_TEXT_MAX,
    CalendarWrite,
    Conflict,
    Inserted,
    KeyReused,
    NewSession,
    Replayed,
    SessionRecord,
    Store,
    StoreError,
    packaged_migrations,
)
from daemon.store.base import BULK_CACHE_KIB, CACHE_KIB
from daemon.store.postgres import PostgresStore
from daemon.store.queue import enqueue_item
from daemon.store.records import ts
from rules.intervals import Interval
from rules.model import ACTIVE_STATUSES, Status
from tests.daemon.store_helpers import NOW, START, open_store
from tests.factories import new_session

WINDOW = Interval(START - timedelta(days=1), START + timedelta(days=1))
LOAD_STATUSES = ACTIVE_STATUSES | {Status.COMPLETED}  # what counts towards a technician's load
ZERO = timedelta(0)
BUSY = "ana:busy:1"
SESSIONS = "ana:sessions:1"


@pytest.fixture
def store(store_at: str | Path) -> Iterator[Store]:
    """The test desk's store, on each backend (``store_at`` in tests/conftest.py)."""
    opened = open_store(store_at)
    yield opened
    opened.close()


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def block(start_minutes: int, minutes: int) -> Interval:
    return Interval(at(start_minutes), at(start_minutes + minutes))


def book(
    store: Store,
    start: datetime = START,
    *,
    tech: str = "ana",
    minutes: int = 30,
    buffer: timedelta = ZERO,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> SessionRecord:
    """Book and insist it was inserted (the setup of most tests)."""
    result = store.insert_booking(
        new_session(start, minutes, tech=tech),
        buffer=buffer,
        now=NOW,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    assert isinstance(result, Inserted), result
    return result.session


def own_event(session: SessionRecord, start: datetime | None = None) -> ObjectChange:
    """The session's event as the sync reads it back (at ``start`` if the technician moved it)."""
    begin = start or session.start
    end = begin + (session.end - session.start)
    return ObjectChange(
        f"{session.calendar_uid}.ics",
        session.calendar_uid,
        "e1",
        blocks=(Interval(begin, end),),
        start=begin,
        end=end,
    )


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Look at the file through a connection of its own, as another program would."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


# ------------------------------------------------------------------ migrations


def test_migrations_apply_on_a_fresh_file_and_not_again_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with open_store(path) as store:
        assert store.schema_version == len(packaged_migrations()) >= 1
        book(store)
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    tables = {name for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"technicians", "calendars", "sessions", "outbox", "audit"} <= tables
    with Store(path) as reopened:  # nothing re-applied (it would fail: tables exist), nothing lost
        assert reopened.schema_version == len(packaged_migrations())
        assert len(reopened.list_sessions()) == 1
        assert reopened._connection().execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_every_threads_connection_has_a_bounded_page_cache(tmp_path: Path) -> None:
    """Each thread that touches the store keeps a connection whose cache only grows: the
    bound holds in every one of them, not just the first."""
    found: list[int] = []
    with open_store(tmp_path / "x.db") as store:

        def read() -> None:
            store.list_sessions()
            found.append(store._connection().execute("PRAGMA cache_size").fetchone()[0])

        read()
        worker = threading.Thread(target=read)
        worker.start()
        worker.join()
    assert found == [-CACHE_KIB, -CACHE_KIB]
    assert 0 < CACHE_KIB < 2000  # below SQLite's default, or this bounds nothing


def test_only_the_threads_reading_busy_time_in_bulk_keep_the_larger_cache(
    tmp_path: Path,
) -> None:
    found: dict[str, int] = {}
    window = Interval(datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC))
    with open_store(tmp_path / "x.db") as store:

        def size() -> int:
            return int(store._connection().execute("PRAGMA cache_size").fetchone()[0])

        def rebuild() -> None:
            store.busy_pairs("ana", window)
            found["rebuilding thread"] = size()

        store.list_sessions()
        worker = threading.Thread(target=rebuild)
        worker.start()
        worker.join()
        found["other thread"] = size()
    assert found == {"rebuilding thread": -BULK_CACHE_KIB, "other thread": -CACHE_KIB}
    assert CACHE_KIB < BULK_CACHE_KIB


def old_store_with_a_session(path: Path, version: int, calendar_uid: str, minutes: int) -> int:
    """A store at schema ``version`` with Ana's session calendar and her session ``s1`` at
    START for ``minutes``, its row as a version of that schema wrote it (today's insert
    also reads tables that later migrations made). Returns START as the store keeps it."""
    with Store(path, migrations=packaged_migrations()[:version]) as old:
        old.sync_technicians(
            [("ana", "Ana Souza")],
            [(SESSIONS, "ana", "sessions", "caldav", "http://127.0.0.1/ana/")],
        )
    start = int(START.timestamp())
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO sessions (id, type, start_ts, end_ts, technician_id, status, company, "
            "responsible_name, phone, remote_tool, rules_accepted_at, rules_version, "
            "created_at, updated_at, calendar_uid) VALUES ('s1', 'standard', ?, ?, 'ana', "
            "'booked', 'C', 'R', '+5511987654321', 'AnyDesk', 0, 'v1', 0, 0, ?)",
            (start, start + minutes * 60, calendar_uid),
        )
    return start


def test_sessions_booked_before_the_href_column_keep_working(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    old_store_with_a_session(path, 2, "s1@expediente", 60)
    with Store(path) as store:
        assert store.schema_version == len(packaged_migrations())
        session = store.get_session("s1")
        assert session is not None and session.status == Status.BOOKED
        # Where its event is was never recorded: no href maps to it, nothing is checked.
        assert store.unlisted_session_writes(SESSIONS) == {}
        store.set_calendar_write(
            session.id, session.calendar_uid, '"1"', calendar_id=SESSIONS, href="/ana/x.ics"
        )
        assert store.session_by_calendar_href(SESSIONS, "/ana/x.ics") == store.get_session(
            session.id
        )


def test_own_events_stored_before_their_blocks_were_marked_still_repeat_their_session(
    tmp_path: Path,
) -> None:
    """Migration 0013 marks the blocks of session events already in the busy cache: one
    left unmarked would count as busy, and the technician's own session would block the
    time it is booked at."""
    path = tmp_path / "v12.db"
    start = old_store_with_a_session(path, 12, "expediente-s1", 30)
    with closing(sqlite3.connect(path)) as db, db:
        # The session's event at its time, and a private event an hour later.
        for href, uid, offset in (("own.ics", "expediente-s1", 0), ("private.ics", "p1", 3600)):
            db.execute(
                "INSERT INTO calendar_objects (calendar_id, href, uid, etag, start_ts, end_ts) "
                "VALUES (?, ?, ?, '\"1\"', ?, ?)",
                (SESSIONS, href, uid, start + offset, start + offset + 1800),
            )
            db.execute(
                "INSERT INTO busy_intervals (calendar_id, href, start_ts, end_ts) "
                "VALUES (?, ?, ?, ?)",
                (SESSIONS, href, start + offset, start + offset + 1800),
            )
    with Store(path) as store:
        assert store.busy_intervals("ana", WINDOW) == [block(60, 30)]
        store.transition("s1", Status.CANCELLED, now=NOW, actor="admin", reason="gone")
        assert store.busy_intervals("ana", WINDOW) == [block(60, 30)]
    assert rows(path, "SELECT href, own_event FROM busy_intervals ORDER BY href") == [
        ("own.ics", 1),
        ("private.ics", 0),
    ]


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_store(path).close()
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA user_version = 999")
    with pytest.raises(StoreError, match=r"schema version 999, newer than this expediente knows"):
        Store(path)


def test_a_later_migration_applies_to_an_existing_file_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with open_store(path) as store:
        book(store)
    base = packaged_migrations()
    nxt = len(base) + 1
    # Semicolons inside a literal and inside a trigger body do not end a statement.
    extra = """
        -- notes on sessions; a comment with a semicolon
        CREATE TABLE notes (session_id TEXT NOT NULL, body TEXT NOT NULL);
        CREATE TRIGGER notes_upper AFTER INSERT ON notes BEGIN
            UPDATE notes SET body = upper(body) WHERE rowid = new.rowid;
        END;
        INSERT INTO notes SELECT id, 'imported; from v1' FROM sessions;
    """
    broken = "CREATE TABLE half (x INTEGER);\nINSERT INTO missing_table VALUES (1);\n"
    with pytest.raises(sqlite3.OperationalError, match="missing_table"):
        Store(path, migrations=[*base, (nxt, broken)])
    assert rows(path, "PRAGMA user_version") == [(nxt - 1,)]
    assert rows(path, "SELECT name FROM sqlite_master WHERE name = 'half'") == []
    with Store(path, migrations=[*base, (nxt, extra)]) as store:
        assert store.schema_version == nxt
    assert rows(path, "SELECT body FROM notes") == [("IMPORTED; FROM V1",)]


def test_an_in_memory_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="needs a file path"):
        Store(":memory:")
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(tmp_path / "no" / "such" / "folder" / "x.db")


# ------------------------------------------------------------------ busy cache


def test_a_long_block_starting_days_before_still_clashes(store: Store) -> None:
    """The clash check bounds its index range by each calendar's longest block and each
    technician's longest session (migration 0005): a week-long block among short ones,
    and a session moved to span a day, must still be found from any point inside them."""
    week = 7 * 24 * 60
    short = [ObjectChange(f"s{n}.ics", f"s{n}", "e", blocks=(block(-3000 + 90 * n, 30),))
             for n in range(60)]  # fmt: skip
    store.apply_sync(
        BUSY,
        [*short, ObjectChange("away.ics", "away", "e", blocks=(block(-3 * 24 * 60, week),))],
        full=True,
        state=None,
        now=NOW,
    )
    for offset in (0, 24 * 60, 3 * 24 * 60 + 61):  # inside the week, far from its start
        inside = store.insert_booking(new_session(at(offset)), buffer=timedelta(0), now=NOW)
        assert isinstance(inside, Conflict) and inside.reason == "calendar event", inside
    after = at(4 * 24 * 60 + 60)  # the week is over
    assert isinstance(
        store.insert_booking(new_session(after), buffer=timedelta(0), now=NOW), Inserted
    )
    long = store.insert_booking(
        new_session(after + timedelta(hours=2), minutes=24 * 60), buffer=timedelta(0), now=NOW
    )
    assert isinstance(long, Inserted)
    late = store.insert_booking(
        new_session(after + timedelta(hours=20)), buffer=timedelta(0), now=NOW
    )
    assert isinstance(late, Conflict) and late.reason == f"session {long.session.id}", late


def test_full_sync_replaces_and_delta_sync_patches(store: Store) -> None:
    store.apply_sync(
        BUSY,
        [
            ObjectChange("a.ics", "a", "e1", blocks=(block(0, 60),)),
            ObjectChange("b.ics", "b", "e1", blocks=(block(120, 30), block(240, 30))),
        ],
        full=True,
        state="t1",
        now=NOW,
    )
    assert store.busy_intervals("ana", WINDOW) == [block(0, 60), block(120, 30), block(240, 30)]
    assert store.calendar_objects(BUSY) == {"a.ics": ("a", "e1"), "b.ics": ("b", "e1")}
    store.apply_sync(
        BUSY,
        [
            ObjectChange("a.ics", "a", None, deleted=True),
            ObjectChange("b.ics", "b", "e2", blocks=(block(240, 30),)),  # changed: one block left
            ObjectChange("c.ics", "c", "e1", blocks=(block(300, 15),)),
        ],
        full=False,
        state="t2",
        now=NOW + timedelta(minutes=1),
    )
    assert store.busy_intervals("ana", WINDOW) == [block(240, 30), block(300, 15)]
    assert store.calendar_objects(BUSY, ["c.ics", "a.ics", "nope.ics"]) == {"c.ics": ("c", "e1")}
    assert store.calendar_objects(BUSY, []) == {}
    state = store.calendar(BUSY)
    assert state is not None
    assert (state.sync_state, state.last_sync_ok_at) == ("t2", NOW + timedelta(minutes=1))
    store.apply_sync(
        BUSY,
        [ObjectChange("z.ics", "z", "e", blocks=(block(0, 5),))],
        full=True,
        state="t3",
        now=NOW,
    )
    assert store.busy_intervals("ana", WINDOW) == [block(0, 5)]
    assert store.calendar_objects(BUSY) == {"z.ics": ("z", "e")}
    assert store.busy_intervals("bruno", WINDOW) == []
    # Only what overlaps the window is returned (touching ends do not overlap).
    assert store.busy_intervals("ana", Interval(at(5), at(60))) == []


def test_a_sync_naming_an_object_twice_keeps_its_last_change(store: Store) -> None:
    """A sync's changes are stored together, not one after the other: an object named
    twice ends as its last change says, as if they had been applied in turn. Text that
    JSON escapes (quotes, backslashes, accents) and an own event's time and cancelled
    flag come through as given."""
    _synced_once(store)
    odd = 'x "q" \\ ç.ics'
    moved = Interval(at(500), at(530))
    store.apply_sync(
        BUSY,
        [
            ObjectChange("a.ics", "a", None, deleted=True),
            ObjectChange("a.ics", "a", "e2", blocks=(block(60, 30),)),  # deleted, then back
            ObjectChange("b.ics", "b", "e1", blocks=(block(120, 30),)),
            ObjectChange("b.ics", "b", None, deleted=True),  # added, then deleted
            ObjectChange(odd, 'uid "ç"', "e\\1", blocks=(block(200, 10), block(300, 10))),
            ObjectChange(
                "own.ics", "expediente-s1", "e", start=moved.start, end=moved.end, cancelled=True
            ),
        ],
        full=False,
        state="t2",
        now=NOW,
    )
    assert store.calendar_objects(BUSY) == {
        "a.ics": ("a", "e2"),
        odd: ('uid "ç"', "e\\1"),
        "own.ics": ("expediente-s1", "e"),
    }
    assert store.busy_intervals("ana", WINDOW) == [block(60, 30), block(200, 10), block(300, 10)]
    row = store._read("SELECT start_ts, end_ts, cancelled FROM calendar_objects WHERE href = ?",
                      ("own.ics",))[0]  # fmt: skip
    assert (row[0], row[1], row[2]) == (ts(moved.start), ts(moved.end), 1)


def test_a_sync_is_a_few_statements_whatever_its_size(tmp_path: Path) -> None:
    """The writer of a sync holds the store's write lock, and every statement step lets
    go of the GIL: with a busy thread beside it, a statement per changed object made 60
    changes take a second to store. The count must not grow with the changes."""
    counts = []
    for size in (1, 200):
        store = open_store(tmp_path / f"{size}.db")
        seen: list[str] = []
        store._connection().set_trace_callback(seen.append)
        store.apply_sync(
            BUSY,
            [ObjectChange(f"{n}.ics", str(n), "e", blocks=(block(n, 1),)) for n in range(size)],
            full=False,
            state="t",
            now=NOW,
        )
        assert len(store.busy_intervals("ana", WINDOW)) == size
        # A trigger's run inside a statement is traced with the statement's own text again.
        counts.append(sum(n == 0 or text != seen[n - 1] for n, text in enumerate(seen)))
        store.close()
    assert counts[0] == counts[1], counts


def test_a_sync_is_stored_whole_or_not_at_all(store: Store) -> None:
    store.apply_sync(
        BUSY,
        [ObjectChange("a.ics", "a", "e", blocks=(block(0, 60),))],
        full=True,
        state="t1",
        now=NOW,
    )
    naive = datetime(2026, 12, 1, 15, 0)  # naive: the bug under test
    with pytest.raises(ValueError, match="aware datetimes only"):
        store.apply_sync(
            BUSY,
            [
                ObjectChange("a.ics", "a", None, deleted=True),
                ObjectChange("n.ics", "n", "e", start=naive, end=naive),
            ],
            full=False,
            state="t2",
            now=NOW,
        )
    assert store.busy_intervals("ana", WINDOW) == [block(0, 60)]
    assert store.calendar(BUSY).sync_state == "t1"  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="unknown calendar 'nobody:busy:1'"):
        store.apply_sync("nobody:busy:1", [], full=True, state="x", now=NOW)


def _synced_once(store: Store) -> None:
    """BUSY holds one event, 0-60 min, after a full sync at NOW that left state "t1"."""
    store.apply_sync(
        BUSY,
        [ObjectChange("a.ics", "a", "e", blocks=(block(0, 60),))],
        full=True,
        state="t1",
        now=NOW,
    )


def test_a_failed_sync_keeps_the_last_good_data(store: Store) -> None:
    _synced_once(store)
    later = NOW + timedelta(minutes=5)
    store.record_sync_failure(BUSY, "connection refused", later)
    store.record_sync_failure(BUSY, "timed out", later + timedelta(minutes=1))
    state = store.calendar(BUSY)
    assert state is not None
    assert (state.last_error, state.consecutive_failures) == ("timed out", 2)
    assert (state.last_sync_ok_at, state.last_attempt_at) == (NOW, later + timedelta(minutes=1))
    assert state.sync_state == "t1"
    assert store.busy_intervals("ana", WINDOW) == [block(0, 60)]
    store.apply_sync(BUSY, [], full=False, state="t2", now=later + timedelta(minutes=2))
    state = store.calendar(BUSY)
    assert state is not None and (state.last_error, state.consecutive_failures) == (None, 0)
    assert store.busy_intervals("ana", WINDOW) == [block(0, 60)]  # an empty delta drops nothing


def test_a_sync_that_found_nothing_new_notes_only_its_time(store: Store) -> None:
    _synced_once(store)
    later = NOW + timedelta(minutes=1)
    assert store.record_sync_unchanged(BUSY, since="t1", state="t2", now=later)
    state = store.calendar(BUSY)
    assert state is not None
    assert (state.last_sync_ok_at, state.last_attempt_at, state.sync_state) == (later, later, "t2")
    assert store.busy_intervals("ana", WINDOW) == [block(0, 60)]
    # Not as the sync found it: nothing is written, the caller stores the sync whole.
    assert not store.record_sync_unchanged(
        BUSY, since="t1", state="t3", now=later + timedelta(minutes=1)
    )
    store.record_sync_failure(BUSY, "timed out", later + timedelta(minutes=2))
    assert not store.record_sync_unchanged(
        BUSY, since="t2", state="t3", now=later + timedelta(minutes=3)
    )
    state = store.calendar(BUSY)
    assert state is not None
    assert (state.last_sync_ok_at, state.last_error, state.sync_state) == (
        later, "timed out", "t2",
    )  # fmt: skip


def test_a_quiet_write_moves_the_quiet_version_not_the_data_version(tmp_path: Path) -> None:
    """What caches of busy time and slots compare stays put for a sync that found nothing
    new; what staleness depends on moves; any other write in the same commit moves both."""
    with open_store(tmp_path / "q.db") as store:
        store.OUTSIDE_POLL_S = 3600.0  # this process's commits only
        store.apply_sync(BUSY, [], full=True, state="t1", now=NOW)
        data, quiet = store.data_version(), store.quiet_version()
        assert store.record_sync_unchanged(
            BUSY, since="t1", state="t1", now=NOW + timedelta(minutes=1)
        )
        assert store.data_version() == data and store.quiet_version() != quiet
        quiet = store.quiet_version()
        store.apply_sync(BUSY, [], full=False, state="t2", now=NOW + timedelta(minutes=2))
        assert store.data_version() != data and store.quiet_version() == quiet
        # A commit shared with another writer (group commit) is only as quiet as both:
        # here the quiet one, queued behind the other, commits for both.
        data = store.data_version()
        quiet_one = threading.Thread(
            target=store.record_sync_unchanged,
            args=(BUSY,),
            kwargs={"since": "t2", "state": "t2", "now": NOW + timedelta(minutes=3)},
        )
        with store._write() as db:
            db.execute("UPDATE technicians SET name = 'Ana Maria' WHERE id = 'ana'")
            quiet_one.start()
            waited = threading.Event()
            for _ in range(30_000):  # it waits for the lock: it joins this group
                if store._file.queued:
                    break
                waited.wait(0.001)
            assert store._file.queued, "the quiet writer never queued for the lock"
        quiet_one.join()
        assert store.data_version() != data
        assert store.calendar(BUSY).last_sync_ok_at == NOW + timedelta(minutes=3)  # type: ignore[union-attr]


def test_the_calendars_version_tells_every_change_to_the_calendars_and_no_other(
    tmp_path: Path,
) -> None:
    """Which technicians are stale is kept on the calendars version: each write that
    changes the calendars table moves it (or, for the quiet note of a sync that found
    nothing new, the quiet version), and bookings, transitions, the audit and renames,
    which say they leave the calendars as they were, do not."""
    with open_store(tmp_path / "c.db") as store:
        store.OUTSIDE_POLL_S = 3600.0  # this process's commits only
        later = NOW + timedelta(minutes=5)
        session = book(store)
        writes: list[tuple[str, Callable[[], object]]] = [
            ("full sync", lambda: store.apply_sync(BUSY, [], full=True, state="t1", now=NOW)),
            ("unchanged", lambda: store.record_sync_unchanged(
                BUSY, since="t1", state="t2", now=NOW + timedelta(minutes=1))),
            ("incremental", lambda: store.apply_sync(
                BUSY, [], full=False, state="t3", now=NOW + timedelta(minutes=2))),
            ("failure", lambda: store.record_sync_failure(BUSY, "timed out", later)),
            ("reset", lambda: store.reset_sync_state(BUSY)),
            ("moved", lambda: store.upsert_calendars(
                [(BUSY, "ana", "busy", "caldav", "http://127.0.0.1/ana-new/")], prune=False)),
            ("configured", lambda: store.sync_technicians(
                [("ana", "Ana Souza"), ("bruno", "Bruno Lima")],
                [(BUSY, "ana", "busy", "caldav", "http://127.0.0.1/ana-new/")])),
            ("booking", lambda: book(store, START + timedelta(hours=1), tech="bruno")),
            ("transition", lambda: store.transition(
                session.id, Status.CANCELLED, now=later, actor="client")),
            ("audit", lambda: store.audit("system", "started", now=later)),
            ("renamed", lambda: store.upsert_technicians([("ana", "Ana Maria")])),
        ]  # fmt: skip

        def table() -> list[tuple[object, ...]]:
            return [tuple(r) for r in store._read("SELECT * FROM calendars ORDER BY id")]

        moved: dict[str, bool] = {}
        for name, write in writes:
            before, version, quiet = table(), store.calendars_version(), store.quiet_version()
            write()
            changed = table() != before
            moved[name] = store.calendars_version() != version
            if name == "unchanged":
                assert changed and not moved[name] and store.quiet_version() != quiet
            else:
                assert moved[name] == changed, name
        assert moved == {
            "full sync": True, "unchanged": False, "incremental": True, "failure": True,
            "reset": True, "moved": True, "configured": True, "booking": False,
            "transition": False, "audit": False, "renamed": False,
        }  # fmt: skip


def test_busy_blocks_are_rounded_outwards_to_whole_seconds(store: Store) -> None:
    half = timedelta(milliseconds=500)
    store.apply_sync(
        BUSY,
        [ObjectChange("a.ics", "a", "e", blocks=(Interval(at(0) + half, at(30) - half),))],
        full=True,
        state=None,
        now=NOW,
    )
    assert store.busy_intervals("ana", WINDOW) == [block(0, 30)]


def test_reconfigured_calendars_start_over_and_removed_ones_leave(store: Store) -> None:
    store.apply_sync(
        BUSY,
        [ObjectChange("a.ics", "a", "e", blocks=(block(0, 60),))],
        full=True,
        state="t1",
        now=NOW,
    )
    store.apply_sync(SESSIONS, [], full=True, state="s1", now=NOW)
    calendars = [
        (SESSIONS, "ana", "sessions", "caldav", "http://127.0.0.1/ana/"),
        (BUSY, "ana", "busy", "caldav", "http://127.0.0.1/elsewhere/"),
    ]
    store.upsert_calendars(calendars)
    moved = store.calendar(BUSY)
    assert moved is not None and moved.address == "http://127.0.0.1/elsewhere/"
    assert (moved.sync_state, moved.last_sync_ok_at) == (None, None)  # the old token is no use
    assert store.busy_intervals("ana", WINDOW) == []
    kept = store.calendar(SESSIONS)
    assert kept is not None and kept.sync_state == "s1"  # unchanged calendars keep their state
    assert store.calendar("bruno:sessions:1") is None  # not listed: pruned
    store.upsert_technicians([("bruno", "Bruno L."), ("ana", "Ana Souza")])
    assert store.technicians() == [("bruno", "Bruno L."), ("ana", "Ana Souza")]


# ------------------------------------------------------------------ our own session events


def test_a_session_event_at_the_session_time_does_not_count_twice(store: Store) -> None:
    session = book(store)
    store.apply_sync(SESSIONS, [own_event(session)], full=True, state="t", now=NOW)
    assert store.busy_intervals("ana", WINDOW) == []  # the session counts by itself
    assert store.active_session_intervals("ana", WINDOW) == [block(0, 30)]
    # The conflict a second booking meets is the session, which the API reports as slot_taken.
    assert store.insert_booking(new_session(START), buffer=ZERO, now=NOW) == Conflict(
        f"session {session.id}"
    )


def test_a_session_event_the_technician_moved_blocks_its_new_time(store: Store) -> None:
    session = book(store)
    store.apply_sync(SESSIONS, [own_event(session, at(120))], full=True, state="t", now=NOW)
    # Until the daemon reconciles the move, both times are taken.
    assert store.busy_intervals("ana", WINDOW) == [block(120, 30)]
    assert isinstance(store.insert_booking(new_session(at(120)), buffer=ZERO, now=NOW), Conflict)
    # Once the store follows the event, the event repeats the session again.
    moved = store.move_session(session.id, at(120), at(150), now=NOW, actor="technician:ana")
    assert isinstance(moved, SessionRecord)
    assert store.busy_intervals("ana", WINDOW) == []
    assert store.active_session_intervals("ana", WINDOW) == [block(120, 30)]
    book(store, START)  # the old time is free


def test_an_ended_session_frees_its_time_before_its_event_is_updated(store: Store) -> None:
    session = book(store)
    store.apply_sync(SESSIONS, [own_event(session)], full=True, state="t", now=NOW)
    store.transition(
        session.id, Status.RESCHEDULED, now=NOW, actor="system", expected=Status.BOOKED
    )
    assert store.busy_intervals("ana", WINDOW) == []
    assert store.active_session_intervals("ana", WINDOW) == []
    book(store, START)


def test_an_ended_session_event_never_blocks_wherever_it_is(store: Store) -> None:
    session = book(store)
    store.apply_sync(SESSIONS, [own_event(session, at(120))], full=True, state="t", now=NOW)
    assert store.busy_intervals("ana", WINDOW) == [block(120, 30)]
    store.transition(session.id, Status.CANCELLED, now=NOW, actor="admin", reason="moved away")
    assert store.busy_intervals("ana", WINDOW) == []
    book(store, at(120))


# ------------------------------------------------------------------ booking


def test_booking_conflicts_with_sessions_buffer_and_calendar_events(store: Store) -> None:
    first = book(store, START)
    assert first.status == Status.BOOKED and first.technician_id == "ana"
    assert store.insert_booking(new_session(at(15)), buffer=ZERO, now=NOW) == Conflict(
        f"session {first.id}"
    )
    assert isinstance(store.insert_booking(new_session(at(-15)), buffer=ZERO, now=NOW), Conflict)
    # Back to back is fine without a buffer, refused with one, on either side.
    book(store, at(30))
    for start in (at(63), at(-33)):
        assert isinstance(
            store.insert_booking(new_session(start), buffer=timedelta(minutes=5), now=NOW), Conflict
        )
    book(store, at(65), buffer=timedelta(minutes=5))  # exactly the buffer apart is fine
    # Another technician's time is independent.
    book(store, START, tech="bruno")
    # A private event in a busy calendar blocks too, within the buffer as well.
    store.apply_sync(
        BUSY,
        [ObjectChange("p.ics", "p", "e", blocks=(block(180, 60),))],
        full=True,
        state="t",
        now=NOW,
    )
    assert store.insert_booking(new_session(at(200)), buffer=ZERO, now=NOW) == Conflict(
        "calendar event"
    )
    assert isinstance(
        store.insert_booking(new_session(at(245)), buffer=timedelta(minutes=10), now=NOW), Conflict
    )
    book(store, at(240))
    # Refused bookings left nothing behind.
    assert len(store.list_sessions()) == 5
    assert len(store.audit_log()) == 5
    assert store.outbox_depth() == 5


def test_an_inactive_session_does_not_block(store: Store) -> None:
    session = book(store)
    store.transition(session.id, Status.CANCELLED, now=NOW, actor="admin", reason="client asked")
    again = book(store, START)
    assert again.id != session.id
    cancelled = store.get_session(session.id)
    assert cancelled is not None and cancelled.cancel_reason == "client asked"
    assert cancelled.ended_at == NOW


def test_a_booking_is_stored_with_every_field(store: Store) -> None:
    asked = new_session(at(60), rebooked_from=None, description="ponto não sincroniza")
    result = store.insert_booking(asked, buffer=ZERO, now=NOW)
    assert isinstance(result, Inserted)
    stored = store.get_session(asked.id)
    assert stored == result.session
    assert (stored.start, stored.end, stored.status) == (asked.start, asked.end, Status.BOOKED)
    assert (stored.company, stored.phone, stored.remote_id) == (
        asked.company,
        asked.phone,
        asked.remote_id,
    )
    assert stored.description == "ponto não sincroniza"
    assert stored.rules_accepted_at == stored.created_at == stored.updated_at == NOW
    assert stored.start.tzinfo is not None and stored.start.utcoffset() == timedelta(0)
    assert (stored.checked_in_at, stored.ended_at, stored.needs_attention) == (None, None, None)
    assert store.session_by_calendar_uid(asked.calendar_uid) == stored
    rebook = new_session(at(120), rebooked_from=asked.id)
    again = store.insert_booking(rebook, buffer=ZERO, now=NOW)
    assert isinstance(again, Inserted) and again.session.rebooked_from == asked.id


def test_new_sessions_refuse_naive_and_backwards_times() -> None:
    naive = datetime(2026, 12, 1, 12, 0)  # naive: the bug under test
    with pytest.raises(ValueError, match="time zone"):
        new_session(naive)
    with pytest.raises(ValueError, match="ends before it starts"):
        new_session(START, minutes=0)
    assert isinstance(new_session(START), NewSession)


def test_an_unknown_technician_is_an_error_not_a_conflict(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown technician 'zé'"):
        store.insert_booking(new_session(tech="zé"), buffer=ZERO, now=NOW)


def test_idempotency_key_replays_the_first_result(store: Store) -> None:
    first = book(store, idempotency_key="k1", request_hash="h1")
    again = store.insert_booking(
        new_session(), buffer=ZERO, now=NOW, idempotency_key="k1", request_hash="h1"
    )
    assert again == Replayed(first)
    other = store.insert_booking(
        new_session(at(120)), buffer=ZERO, now=NOW, idempotency_key="k1", request_hash="h2"
    )
    assert other == KeyReused(first.id)
    assert len(store.list_sessions()) == 1
    assert store.session_by_idempotency_key("k1") == (first, "h1")
    assert store.session_by_idempotency_key("k2") is None
    # A replay reports the session as it is now; the key keeps meaning that session.
    store.transition(first.id, Status.CANCELLED, now=NOW, actor="client")
    replay = store.insert_booking(
        new_session(), buffer=ZERO, now=NOW, idempotency_key="k1", request_hash="h1"
    )
    assert isinstance(replay, Replayed) and replay.session.status == Status.CANCELLED
    # A different key books normally.
    book(store, idempotency_key="k2", request_hash="h1")


# ------------------------------------------------------------------ lifecycle


def test_transition_is_compare_and_set_with_audit_and_outbox(store: Store) -> None:
    session = book(store)
    checked = store.transition(
        session.id, Status.IN_PROGRESS, now=START, actor="admin", expected=Status.BOOKED
    )
    assert checked is not None and checked.checked_in_at == START and checked.updated_at == START
    lost = store.transition(
        session.id, Status.RESCHEDULED, now=START, actor="system", expected=Status.BOOKED
    )
    assert lost is None
    assert store.get_session(session.id).status == Status.IN_PROGRESS  # type: ignore[union-attr]
    assert store.transition("nope", Status.CANCELLED, now=START, actor="admin") is None
    entries = store.audit_log(session.id)
    assert [(e.actor, e.action) for e in entries] == [
        ("client", "booking_accepted"),
        ("admin", "status_changed"),
    ]
    assert entries[1].details == {"from": "booked", "to": "in_progress"}
    assert entries[1].at == START
    done = store.transition(
        session.id,
        Status.COMPLETED,
        now=at(30),
        actor="system",
        reason="ended",
        expected=Status.IN_PROGRESS,
        outbox=(("put", {}), ("email", {"template": "thanks"})),
    )
    assert done is not None and done.ended_at == at(30)
    assert store.audit_log(session.id)[-1].reason == "ended"
    # The newest calendar write supersedes the older pending ones; other actions stay.
    pending = store.due_outbox(at(30))
    assert [(p.session_id, p.action, p.payload) for p in pending] == [
        (session.id, "put", {}),
        (session.id, "email", {"template": "thanks"}),
    ]


def test_an_ended_session_cannot_be_made_active_again(store: Store) -> None:
    session = book(store)
    store.transition(session.id, Status.RESCHEDULED, now=START, actor="system")
    other = book(store, START)
    with pytest.raises(ValueError, match="cannot become booked again"):
        store.transition(session.id, Status.BOOKED, now=START, actor="admin")
    assert store.active_session_intervals("ana", WINDOW) == [other.interval]


def test_a_conditional_move_never_double_books(store: Store) -> None:
    a = book(store, START)
    b = book(store, at(60))
    assert store.move_session(
        b.id, at(15), at(45), now=NOW, actor="admin", buffer=ZERO
    ) == Conflict(f"session {a.id}")
    assert store.get_session(b.id).start == at(60)  # type: ignore[union-attr]
    # Overlapping its own current time is fine; the move is audited and queued.
    moved = store.move_session(
        b.id, at(75), at(105), now=NOW, actor="admin", buffer=ZERO, outbox=(("put", {}),)
    )
    assert isinstance(moved, SessionRecord) and (moved.start, moved.end) == (at(75), at(105))
    entry = store.audit_log(b.id)[-1]
    assert (entry.action, entry.details["to"]) == (
        "moved",
        [int(at(75).timestamp()), int(at(105).timestamp())],
    )
    assert [p.session_id for p in store.due_outbox(NOW)] == [a.id, b.id]
    # Its own calendar event, wherever it is, never blocks it.
    store.apply_sync(SESSIONS, [own_event(moved, at(200))], full=True, state="t", now=NOW)
    assert isinstance(
        store.move_session(b.id, at(200), at(230), now=NOW, actor="admin", buffer=ZERO),
        SessionRecord,
    )
    # Without a buffer the move records what the technician did, even onto another session;
    # PostgreSQL itself refuses two overlapping active sessions, and nothing changes.
    forced = store.move_session(b.id, at(0), at(30), now=NOW, actor="technician:ana")
    if isinstance(store, PostgresStore):
        assert isinstance(forced, Conflict) and "refused by the database" in forced.reason
        assert store.get_session(b.id).start == at(200)  # type: ignore[union-attr]
    else:
        assert isinstance(forced, SessionRecord) and forced.start == START
    store.transition(b.id, Status.CANCELLED, now=NOW, actor="admin")
    assert store.move_session(b.id, at(300), at(330), now=NOW, actor="admin") is None


def test_flags_are_set_audited_and_cleared(store: Store) -> None:
    session = book(store)
    assert store.flag_session(session.id, "moved to a closed day", now=NOW, actor="sync")
    assert not store.flag_session("nope", "x", now=NOW)
    flagged = store.flagged_sessions()
    assert [(s.id, s.needs_attention) for s in flagged] == [(session.id, "moved to a closed day")]
    assert store.clear_flag(session.id, now=NOW, actor="admin", reason="called the client")
    assert not store.clear_flag(session.id, now=NOW, actor="admin")
    assert store.flagged_sessions() == []
    actions = [(e.actor, e.action, e.reason) for e in store.audit_log(session.id)][1:]
    assert actions == [
        ("sync", "flagged", "moved to a closed day"),
        ("admin", "flag_cleared", "called the client"),
    ]


def test_no_shows_are_due_only_after_the_grace_period(store: Store) -> None:
    grace = timedelta(minutes=10)
    a = book(store, START)
    b = book(store, at(60))
    assert store.sessions_due_for_noshow(at(10), grace=grace) == []  # the deadline itself
    assert [
        s.id for s in store.sessions_due_for_noshow(at(10) + timedelta(microseconds=1), grace=grace)
    ] == [a.id]
    assert [s.id for s in store.sessions_due_for_noshow(at(71), grace=grace)] == [a.id, b.id]
    store.transition(a.id, Status.IN_PROGRESS, now=START, actor="admin")
    assert [s.id for s in store.sessions_due_for_noshow(at(71), grace=grace)] == [b.id]
    assert store.sessions_to_complete(at(30) - timedelta(seconds=1)) == []
    assert [s.id for s in store.sessions_to_complete(at(30))] == [a.id]
    due = store.due_sessions(booked_started_before=at(61), in_progress_ended_by=at(30))
    assert [s.id for s in due] == [a.id, b.id]


def test_busy_reads_bounded_by_the_longest_session_find_every_overlap(store: Store) -> None:
    """The session reads stop at the technician's longest session before the window
    (busy.py); against a count by hand over sessions of mixed lengths (one of three days)
    and every status, they still find each session that overlaps, and only those."""
    rng = random.Random(7)
    made: list[tuple[str, Interval, Status]] = []
    for tech in ("ana", "bruno"):
        start = START - timedelta(days=10)
        for n in range(24):
            minutes = 3 * 24 * 60 if n == 9 else rng.choice((15, 30, 90, 240, 600))
            start += timedelta(minutes=rng.choice((0, 30, 300, 1440)))
            session = book(store, start, tech=tech, minutes=minutes)
            status = rng.choice(list(Status))
            path = {
                Status.BOOKED: [],
                Status.IN_PROGRESS: [Status.IN_PROGRESS],
                Status.COMPLETED: [Status.IN_PROGRESS, Status.COMPLETED],
                Status.CANCELLED: [Status.CANCELLED],
                Status.RESCHEDULED: [Status.RESCHEDULED],
            }[status]
            for step in path:
                assert store.transition(session.id, step, now=NOW, actor="admin") is not None
            made.append((tech, session.interval, status))
            start = session.interval.end
    first, last = made[0][1].start, max(interval.end for _, interval, _ in made)
    for _ in range(40):
        lo = first - timedelta(days=1) + (last - first) * rng.random()
        window = Interval(lo, lo + timedelta(minutes=rng.choice((30, 600, 3 * 1440, 20 * 1440))))
        counted = Counter(
            tech
            for tech, interval, status in made
            if interval.overlaps(window) and status in LOAD_STATUSES
        )
        assert store.load_by_technician(window) == dict(counted), window
        for tech in ("ana", "bruno"):
            active = sorted(
                interval
                for who, interval, status in made
                if who == tech and interval.overlaps(window) and status in ACTIVE_STATUSES
            )
            assert store.active_session_intervals(tech, window) == active, (tech, window)
            listed = [s.interval for s in store.list_sessions(technician_id=tech, window=window)]
            assert listed == sorted(i for w, i, _ in made if w == tech and i.overlaps(window))
        everyone = sorted((i.start, i.end) for _, i, _ in made if i.overlaps(window))
        assert [(s.start, s.end) for s in store.list_sessions(window=window)] == everyone
        loaded = [s.interval for s in store.list_sessions(status=LOAD_STATUSES, window=window)]
        assert loaded == sorted(
            i for _, i, st in made if i.overlaps(window) and st in LOAD_STATUSES
        )


def test_a_long_history_does_not_slow_the_everyday_reads(tmp_path: Path) -> None:
    """A desk's past sessions (completed, cancelled) stay in the store for years; the reads
    after each booking (the technician's sessions, the week's load), the console's
    listing of a day, the health probe's count of flagged sessions and every sync's look
    for the sessions it wrote skip them."""
    path = tmp_path / "store.db"
    store = open_store(path)
    book(store, at(60))
    window = Interval(START, START + timedelta(days=7))

    def steps_to_read(past: int) -> int:
        first = int(START.timestamp()) - 86_400
        with closing(sqlite3.connect(path)) as db, db:
            db.executemany(
                "INSERT INTO sessions (id, type, start_ts, end_ts, technician_id, status, "
                "company, responsible_name, phone, email, remote_tool, remote_id, description, "
                "language, rules_accepted_at, rules_version, created_at, updated_at, "
                "calendar_uid, calendar_id, calendar_href) VALUES (?, 'standard', ?, ?, 'ana', "
                "'completed', 'C', 'R', '+5511987654321', '', 'AnyDesk', '', '', 'pt-BR', 0, "
                "'v1', 0, 0, ?, ?, ?)",
                [
                    (
                        f"past-{n}",
                        first - n * 3600,
                        first - n * 3600 + 1800,
                        f"past-{n}",
                        SESSIONS,
                        f"/ana/past-{n}.ics",
                    )
                    for n in range(past)
                ],
            )
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        db = store._connection()
        db.set_progress_handler(count, 1)  # one call per SQLite VM instruction
        assert store.load_by_technician(window) == {"ana": 1}
        assert len(store.active_session_intervals("ana", window)) == 1
        # The desk console's day, and the same for one technician or some statuses.
        assert len(store.list_sessions(window=window)) == 1
        assert len(store.list_sessions(window=window, technician_id="ana")) == 1
        assert len(store.list_sessions(window=window, status=LOAD_STATUSES)) == 1
        assert store.flagged_sessions() == []  # counted by every /healthz and /metrics
        assert store.unlisted_session_writes(SESSIONS) == {}  # asked by every sync
        db.set_progress_handler(None, 1)
        return steps[0]

    assert steps_to_read(0) + 400 > steps_to_read(5_000)
    store.close()


def test_load_counts_sessions_that_took_the_technicians_time(store: Store) -> None:
    ids = [book(store, at(60 * n)).id for n in range(5)]
    book(store, START, tech="bruno")
    store.transition(ids[0], Status.IN_PROGRESS, now=START, actor="admin")
    store.transition(ids[0], Status.COMPLETED, now=at(30), actor="system")
    store.transition(ids[1], Status.CANCELLED, now=NOW, actor="client")
    store.transition(ids[2], Status.RESCHEDULED, now=NOW, actor="system")
    assert store.load_by_technician(WINDOW) == {"ana": 3, "bruno": 1}
    assert store.load_by_technician(Interval(at(120), at(200))) == {"ana": 1}


def test_list_sessions_filters(store: Store) -> None:
    a = book(store, START)
    b = book(store, at(60))
    c = book(store, START, tech="bruno")
    store.transition(b.id, Status.CANCELLED, now=NOW, actor="client")
    assert [s.id for s in store.list_sessions()] == [*sorted([a.id, c.id]), b.id]
    assert [s.id for s in store.list_sessions(technician_id="ana")] == [a.id, b.id]
    assert [s.id for s in store.list_sessions(status=Status.CANCELLED)] == [b.id]
    active = store.list_sessions(status=[Status.BOOKED, Status.IN_PROGRESS], technician_id="ana")
    assert [s.id for s in active] == [a.id]
    assert [s.id for s in store.list_sessions(window=Interval(at(30), at(61)))] == [b.id]


def test_iter_sessions_pages_by_start_then_id_across_ties(store: Store) -> None:
    """Pages of 3 over pairs sharing a start: every page boundary but one falls inside a tie,
    where a cursor on the start alone would skip or repeat a session."""
    pairs = [(book(store, at(60 * n)), book(store, at(60 * n), tech="bruno")) for n in range(4)]
    expected = [s.id for pair in pairs for s in sorted(pair, key=lambda s: s.id)]
    assert [s.id for s in store.iter_sessions(page=3)] == expected
    assert [s.id for s in store.iter_sessions(page=4)] == expected  # a last page that is full
    assert [s.id for s in store.iter_sessions(page=3, technician_id="bruno")] == [
        pair[1].id for pair in pairs
    ]
    first_page = store.list_sessions(limit=3)
    assert [s.id for s in store.list_sessions(after=first_page[-1], limit=3)] == expected[3:6]


def test_list_sessions_flagged_filter_is_applied_before_the_limit(store: Store) -> None:
    sessions = [book(store, at(60 * n)) for n in range(3)]
    store.flag_session(sessions[2].id, "moved to a closed day", now=NOW)
    assert [s.id for s in store.list_sessions(flagged=True, limit=1)] == [sessions[2].id]


# ------------------------------------------------------------------ outbox, audit, calendar writes


def test_outbox_retries_until_done(store: Store) -> None:
    session = book(store)
    (item,) = store.due_outbox(NOW)
    assert (item.session_id, item.action, item.attempts) == (session.id, "put", 0)
    store.outbox_failed(item.id, "503 from the server", NOW + timedelta(minutes=1))
    assert store.due_outbox(NOW) == [] and store.outbox_depth() == 1
    (retry,) = store.due_outbox(NOW + timedelta(minutes=1))
    assert (retry.attempts, retry.last_error) == (1, "503 from the server")
    store.outbox_done(retry.id, NOW + timedelta(minutes=1))
    assert store.outbox_depth() == 0 and store.due_outbox(NOW + timedelta(days=1)) == []
    # A put for one session does not supersede another session's put.
    other = book(store, at(60))
    store.enqueue(session.id, "put", {}, now=NOW)
    assert [p.session_id for p in store.due_outbox(NOW)] == [other.id, session.id]


def test_superseding_a_calendar_write_does_not_walk_other_sessions_pending_items(
    tmp_path: Path,
) -> None:
    """While a calendar server is down, thousands of writes wait; a booking queues its own
    write in its transaction, with the write lock held, and must not pay for theirs."""
    path = tmp_path / "store.db"
    store = open_store(path)
    session = book(store)
    store.close()

    def steps_to_queue_a_write(pending_elsewhere: int) -> int:
        with closing(sqlite3.connect(path)) as db:
            db.executemany(
                "INSERT INTO outbox (session_id, action, next_attempt_at, created_at) "
                "VALUES (?, 'put', 0, 0)",
                [(f"other-{n}",) for n in range(pending_elsewhere)],
            )
            steps = [0]

            def count() -> int:
                steps[0] += 1
                return 0

            db.set_progress_handler(count, 1)  # one call per SQLite VM instruction
            enqueue_item(db, NOW, session.id, "put", {})
            db.set_progress_handler(None, 1)
            rows = db.execute(
                "SELECT count(*) FROM outbox WHERE session_id = ? AND superseded = 1",
                (session.id,),
            ).fetchone()
            assert rows == (1,)  # the booking's own pending write was found and superseded
            db.rollback()
            return steps[0]

    assert steps_to_queue_a_write(5_000) < steps_to_queue_a_write(0) + 100


def test_a_calendar_write_is_recorded_with_its_item_done(store: Store) -> None:
    session = book(store)
    (item,) = store.due_outbox(NOW)
    written = CalendarWrite(session.id, session.calendar_uid, '"e-7"', SESSIONS, "/ana/w.ics")
    store.outbox_done(item.id, NOW, written=written)
    assert store.outbox_depth() == 0
    stored = store.get_session(session.id)
    assert stored is not None and stored.calendar_etag == '"e-7"'
    found = store.session_by_calendar_href(SESSIONS, "/ana/w.ics")
    assert found is not None and found.id == session.id


def test_set_calendar_write_records_uid_and_etag(store: Store) -> None:
    session = book(store)
    store.set_calendar_write(
        session.id, session.calendar_uid, '"etag-1"', calendar_id=SESSIONS, href="/ana/x.ics"
    )
    stored = store.get_session(session.id)
    assert stored is not None and stored.calendar_etag == '"etag-1"'
    store.set_calendar_write(session.id, "other-uid", None, calendar_id=SESSIONS, href="/ana/y.ics")
    stored = store.get_session(session.id)
    assert stored is not None and (stored.calendar_uid, stored.calendar_etag) == ("other-uid", None)


def test_a_written_session_is_found_by_its_calendar_and_href(store: Store) -> None:
    session = book(store)
    assert store.session_by_calendar_href(SESSIONS, "/ana/x.ics") is None  # not written yet
    store.set_calendar_write(
        session.id, session.calendar_uid, '"1"', calendar_id=SESSIONS, href="/ana/x.ics"
    )
    found = store.session_by_calendar_href(SESSIONS, "/ana/x.ics")
    assert found is not None and found.id == session.id
    assert store.session_by_calendar_href("bruno:sessions:1", "/ana/x.ics") is None
    assert store.session_by_calendar_href(SESSIONS, "/ana/other.ics") is None


def test_unlisted_session_writes_are_active_sessions_no_sync_has_listed(store: Store) -> None:
    listed, unlisted, ended, unwritten = (book(store, at(60 * n)) for n in range(4))
    other = book(store, at(300), tech="bruno")
    for session in (listed, unlisted, ended):
        store.set_calendar_write(
            session.id, session.calendar_uid, '"1"', calendar_id=SESSIONS,
            href=f"{session.calendar_uid}.ics",
        )  # fmt: skip
    store.set_calendar_write(
        other.id, other.calendar_uid, '"1"', calendar_id="bruno:sessions:1",
        href=f"{other.calendar_uid}.ics",
    )  # fmt: skip
    store.transition(ended.id, Status.CANCELLED, now=NOW, actor="admin")
    store.apply_sync(SESSIONS, [own_event(listed)], full=True, state="t1", now=NOW)
    found = store.unlisted_session_writes(SESSIONS)
    assert {href: s.id for href, s in found.items()} == {
        f"{unlisted.calendar_uid}.ics": unlisted.id
    }
    assert unwritten.id not in {s.id for s in found.values()}
    # Once a sync lists it, it is accounted for.
    store.apply_sync(SESSIONS, [own_event(unlisted)], full=False, state="t2", now=NOW)
    assert store.unlisted_session_writes(SESSIONS) == {}


def test_audit_records_accepts_with_details_and_rejections(store: Store) -> None:
    session = book(store)
    (entry,) = store.audit_log(session.id)
    assert (entry.at, entry.actor, entry.action) == (NOW, "client", "booking_accepted")
    assert entry.details["technician"] == "ana"
    assert entry.details["start"] == int(START.timestamp())
    store.audit(
        "client",
        "booking_rejected",
        now=NOW,
        reason="slot_taken",
        details={"start": START.isoformat()},
    )
    latest = store.audit_log()[0]
    assert (latest.action, latest.session_id, latest.reason) == (
        "booking_rejected",
        None,
        "slot_taken",
    )
    assert latest.at.tzinfo == UTC


def test_every_text_in_an_audit_entry_is_bounded(store: Store) -> None:
    long = "ç" * (10 * AUDIT_TEXT_MAX)
    store.audit(
        "client",
        "booking_rejected",
        now=NOW,
        reason=long,
        details={"type": long, "nested": [long, {"k": long}], long: 1, "n": 7},
    )
    (entry,) = store.audit_log()
    assert len(entry.reason) == AUDIT_TEXT_MAX and entry.reason.endswith("…")
    assert len(entry.details["type"]) == AUDIT_TEXT_MAX
    assert [len(entry.details["nested"][0]), len(entry.details["nested"][1]["k"])] == [
        AUDIT_TEXT_MAX
    ] * 2
    assert max(len(key) for key in entry.details) == AUDIT_TEXT_MAX
    assert entry.details["n"] == 7
    short = "até 500"
    store.audit("client", "booking_rejected", now=NOW, reason=short, details={"type": short})
    assert (store.audit_log()[0].reason, store.audit_log()[0].details) == (short, {"type": short})


def test_prune_audit_deletes_only_entries_before_the_cutoff(store: Store) -> None:
    session = book(store)  # its booking_accepted entry is at NOW
    for days in (400, 366, 365, 10):
        store.audit("client", "booking_rejected", now=NOW - timedelta(days=days), reason=str(days))
    assert store.prune_audit(NOW - timedelta(days=365)) == 2
    kept = sorted(e.reason for e in store.audit_log() if e.action == "booking_rejected")
    assert kept == ["10", "365"]  # the cutoff itself is kept
    assert store.prune_audit(NOW - timedelta(days=365)) == 0
    assert store.get_session(session.id) is not None  # sessions are not the audit's to prune
    assert [e.action for e in store.audit_log(session.id)] == ["booking_accepted"]


def test_prune_audit_goes_in_batches_until_nothing_is_left(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("daemon.store.audit.AUDIT_PRUNE_BATCH", 3)
    for minutes in range(10):
        store.audit("client", "booking_rejected", now=NOW - timedelta(days=2, minutes=minutes))
    assert store.prune_audit(NOW - timedelta(days=1)) == 10
    assert store.audit_log() == []


def _audit_from_another_process(path: Path) -> None:
    with Store(path) as store:
        store.audit("system", "started", now=NOW)


def test_data_version_sees_another_process_at_the_next_poll(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    with open_store(path) as watcher:
        watcher.OUTSIDE_POLL_S = 3600.0  # one reading, trusted for the whole test
        before, calendars = watcher.data_version(), watcher.calendars_version()
        writer = multiprocessing.get_context("spawn").Process(
            target=_audit_from_another_process, args=(path,)
        )
        writer.start()
        writer.join(timeout=60)
        assert writer.exitcode == 0
        # The other process's commit is not polled yet: the version has not moved ...
        assert watcher.data_version() == before
        assert watcher.calendars_version() == calendars
        # ... and a poll due now finds it. What it changed is not known here: the
        # calendars version moves too.
        watcher.OUTSIDE_POLL_S = 0.0
        assert watcher.data_version() != before
        assert watcher.calendars_version() != calendars


def test_data_version_moves_when_another_handle_commits(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    with open_store(path) as watcher, Store(path) as writer:
        watcher.OUTSIDE_POLL_S = 3600.0  # no poll: handles in one process share a count
        before = watcher.data_version()
        assert watcher.data_version() == before
        writer.audit("system", "started", now=NOW)
        assert watcher.data_version() != before


def test_a_packed_read_gives_the_rows_a_plain_read_gives(store: Store) -> None:
    """Text with quotes and accents, NULLs, integers past 2**53 and negatives come back
    as they went in, whichever way the backend hands the rows over."""
    store.sync_technicians([('zé "o\'" 👍', "Zé")], [])
    store.sync_technicians([("ana", "Ana"), ('zé "o\'" 👍', "Zé")], [])
    sql = "SELECT id, name, NULL, 9007199254740993, -5 FROM technicians WHERE id != 'nobody'"
    packed = sorted(store._read_packed(sql, 5))
    assert packed == sorted(store._read_tuples(sql))
    assert ('zé "o\'" 👍', "Zé", None, 9007199254740993, -5) in packed
    assert store._read_packed(f"{sql} AND 0 = 1", 5) == []


def test_an_insert_tells_the_technicians_versions_it_left(store: Store) -> None:
    """What the busy cache lays a booking over its view by (daemon/busy.py, ``booked``):
    the versions right after the insert, the sessions one a step past those before."""
    before = store.technician_versions().get("ana", (0, 0))
    for n in range(3):
        result = store.insert_booking(new_session(at(60 * n), 30), buffer=ZERO, now=NOW)
        assert isinstance(result, Inserted), result
        assert result.versions == store.technician_versions()["ana"]
        assert result.versions == (before[0], before[1] + n + 1)
