"""The SQLite store on real files: migrations, busy cache, sessions, outbox, audit."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.base import ObjectChange
from daemon.store import Conflict, Inserted, KeyReused, Replayed, Store, StoreError
from rules.intervals import Interval
from rules.model import Status
from tests.daemon.store_helpers import NOW, START, new_session, open_store

WINDOW = Interval(START - timedelta(days=1), START + timedelta(days=1))


def block(start_minutes: int, minutes: int) -> Interval:
    begin = START + timedelta(minutes=start_minutes)
    return Interval(begin, begin + timedelta(minutes=minutes))


def test_migrations_apply_once_and_record_the_version(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    store = open_store(path)
    version = store.schema_version
    assert version >= 1
    store.insert_booking(new_session(), buffer=timedelta(0), now=NOW)
    store.close()
    reopened = Store(path)  # idempotent: nothing re-applied, nothing lost
    assert reopened.schema_version == version
    assert len(reopened.list_sessions()) == 1
    journal = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 999")
    with pytest.raises(StoreError, match="newer than this expediente knows"):
        Store(path)


def test_full_sync_replaces_and_delta_sync_patches(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    store.apply_sync(
        "ana:busy:1",
        [
            ObjectChange("a.ics", "a", "e1", blocks=(block(0, 60),)),
            ObjectChange("b.ics", "b", "e1", blocks=(block(120, 30), block(240, 30))),
        ],
        full=True,
        state="t1",
        now=NOW,
    )
    assert len(store.busy_intervals("ana", WINDOW)) == 3
    store.apply_sync(
        "ana:busy:1",
        [
            ObjectChange("a.ics", "a", None, deleted=True),
            ObjectChange("c.ics", "c", "e1", blocks=(block(300, 15),)),
        ],
        full=False,
        state="t2",
        now=NOW,
    )
    assert store.busy_intervals("ana", WINDOW) == [block(120, 30), block(240, 30), block(300, 15)]
    assert store.calendar("ana:busy:1").sync_state == "t2"  # type: ignore[union-attr]
    store.apply_sync(
        "ana:busy:1",
        [ObjectChange("z.ics", "z", "e", blocks=(block(0, 5),))],
        full=True,
        state="t3",
        now=NOW,
    )
    assert store.busy_intervals("ana", WINDOW) == [block(0, 5)]
    assert store.busy_intervals("bruno", WINDOW) == []


def test_a_failed_sync_keeps_the_last_good_data(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    store.apply_sync(
        "ana:busy:1",
        [ObjectChange("a.ics", "a", "e", blocks=(block(0, 60),))],
        full=True,
        state="t1",
        now=NOW,
    )
    store.record_sync_failure("ana:busy:1", "connection refused", NOW + timedelta(minutes=5))
    state = store.calendar("ana:busy:1")
    assert state is not None and state.last_error == "connection refused"
    assert state.consecutive_failures == 1 and state.last_sync_ok_at == NOW
    assert store.busy_intervals("ana", WINDOW) == [block(0, 60)]


def test_booking_conflicts_with_sessions_buffer_and_calendar_events(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    first = store.insert_booking(new_session(START), buffer=timedelta(0), now=NOW)
    assert isinstance(first, Inserted) and first.session.status == Status.BOOKED
    assert isinstance(
        store.insert_booking(
            new_session(START + timedelta(minutes=15)), buffer=timedelta(0), now=NOW
        ),
        Conflict,
    )
    # Back to back is fine without a buffer, refused with one.
    assert isinstance(
        store.insert_booking(
            new_session(START + timedelta(minutes=30)), buffer=timedelta(0), now=NOW
        ),
        Inserted,
    )
    assert isinstance(
        store.insert_booking(
            new_session(START + timedelta(minutes=60)), buffer=timedelta(minutes=5), now=NOW
        ),
        Conflict,
    )
    # Another technician's time is independent.
    assert isinstance(
        store.insert_booking(new_session(START, tech="bruno"), buffer=timedelta(0), now=NOW),
        Inserted,
    )
    # A private event in a busy calendar blocks too.
    store.apply_sync(
        "ana:busy:1",
        [ObjectChange("p.ics", "p", "e", blocks=(block(180, 60),))],
        full=True,
        state="t",
        now=NOW,
    )
    result = store.insert_booking(
        new_session(START + timedelta(minutes=200)), buffer=timedelta(0), now=NOW
    )
    assert result == Conflict("calendar event")


def test_our_own_session_events_do_not_block_twice(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    inserted = store.insert_booking(new_session(START), buffer=timedelta(0), now=NOW)
    assert isinstance(inserted, Inserted)
    uid = inserted.session.calendar_uid
    store.apply_sync(
        "ana:sessions:1",
        [ObjectChange(f"{uid}.ics", uid, "e", blocks=(block(0, 30),))],
        full=True,
        state="t",
        now=NOW,
    )
    assert store.busy_pairs("ana", WINDOW) == []  # the event is the session itself
    store.transition(
        inserted.session.id, Status.RESCHEDULED, now=NOW, actor="system", expected=Status.BOOKED
    )
    assert store.busy_intervals("ana", WINDOW) == []  # rescheduled frees the time at once
    assert isinstance(
        store.insert_booking(new_session(START), buffer=timedelta(0), now=NOW), Inserted
    )


def test_idempotency_key_replays_the_first_result(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    first = store.insert_booking(
        new_session(), buffer=timedelta(0), now=NOW, idempotency_key="k1", request_hash="h1"
    )
    assert isinstance(first, Inserted)
    again = store.insert_booking(
        new_session(), buffer=timedelta(0), now=NOW, idempotency_key="k1", request_hash="h1"
    )
    assert again == Replayed(first.session)
    other = store.insert_booking(
        new_session(START + timedelta(hours=2)),
        buffer=timedelta(0),
        now=NOW,
        idempotency_key="k1",
        request_hash="h2",
    )
    assert other == KeyReused(first.session.id)
    assert len(store.list_sessions()) == 1


def test_transition_is_compare_and_set_with_audit_and_outbox(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    inserted = store.insert_booking(new_session(), buffer=timedelta(0), now=NOW)
    assert isinstance(inserted, Inserted)
    session_id = inserted.session.id
    checked = store.transition(
        session_id, Status.IN_PROGRESS, now=START, actor="admin", expected=Status.BOOKED
    )
    assert checked is not None and checked.checked_in_at == START
    lost = store.transition(
        session_id, Status.RESCHEDULED, now=START, actor="system", expected=Status.BOOKED
    )
    assert lost is None
    assert store.get_session(session_id).status == Status.IN_PROGRESS  # type: ignore[union-attr]
    actions = [(e.actor, e.action) for e in store.audit_log(session_id)]
    assert actions == [("client", "booking_accepted"), ("admin", "status_changed")]
    # The booking's calendar write was superseded by the check-in's: one pending write.
    pending = store.due_outbox(START)
    assert [(p.session_id, p.action) for p in pending] == [(session_id, "put")]
    store.outbox_failed(pending[0].id, "down", START + timedelta(minutes=1))
    assert store.due_outbox(START) == [] and store.outbox_depth() == 1
    retry = store.due_outbox(START + timedelta(minutes=1))
    assert retry[0].attempts == 1
    store.outbox_done(retry[0].id, START + timedelta(minutes=1))
    assert store.outbox_depth() == 0


def test_due_sessions_and_moves_and_flags(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    a = store.insert_booking(new_session(START), buffer=timedelta(0), now=NOW)
    b = store.insert_booking(new_session(START + timedelta(hours=1)), buffer=timedelta(0), now=NOW)
    assert isinstance(a, Inserted) and isinstance(b, Inserted)
    due = store.due_sessions(
        booked_started_before=START + timedelta(minutes=1), in_progress_ended_by=START
    )
    assert [s.id for s in due] == [a.session.id]
    moved = store.move_session(
        b.session.id,
        START + timedelta(hours=3),
        START + timedelta(hours=3, minutes=30),
        now=NOW,
        actor="technician:ana",
    )
    assert moved is not None and moved.start == START + timedelta(hours=3)
    store.flag_session(a.session.id, "moved to a closed day", now=NOW, actor="sync")
    assert [s.id for s in store.flagged_sessions()] == [a.session.id]
    assert store.load_by_technician(WINDOW) == {"ana": 2}
