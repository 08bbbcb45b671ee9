"""No double booking, ever: concurrent writers on one store, as threads and as processes,
on each backend (the ``store_at`` fixture: an SQLite file, a PostgreSQL database).

Every worker waits at a barrier and then books at once, so the inserts really contend for
the write lock; the outcome must be exactly one winner whatever the interleaving.
"""

from __future__ import annotations

import multiprocessing
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

import daemon.store.base
from daemon.store import Conflict, Inserted, Store, StoreError
from rules.intervals import Interval
from rules.model import Status
from tests.daemon.store_helpers import NOW, START, open_store, run_together
from tests.daemon.store_helpers import store_at as handle_at
from tests.factories import new_session

PROCESSES = 8
WINDOW = Interval(START - timedelta(hours=2), START + timedelta(hours=3))


def active_sessions(store: Store, technician: str = "ana") -> list[Interval]:
    return store.active_session_intervals(technician, WINDOW)


def test_twenty_threads_booking_overlapping_times_yield_exactly_one(store_at: str | Path) -> None:
    with open_store(store_at) as store:
        # Starts 0..19 minutes after START, 30 minutes long: every pair overlaps.
        results = run_together(
            20,
            lambda n: store.insert_booking(
                new_session(START + timedelta(minutes=n)), buffer=timedelta(0), now=NOW
            ),
        )
        winners = [r for r in results if isinstance(r, Inserted)]
        assert len(winners) == 1
        assert all(isinstance(r, Conflict) for r in results if r is not winners[0]), results
        assert active_sessions(store) == [winners[0].session.interval]
        assert len(store.list_sessions()) == 1
        assert [e.action for e in store.audit_log()] == ["booking_accepted"]
        assert store.outbox_depth() == 1


def test_threads_queue_for_the_write_lock_instead_of_sqlites_busy_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many threads booking distinct times at once are all accepted, none twice.

    SQLite's busy wait is switched off here: a writer that reached ``BEGIN IMMEDIATE``
    while another of this process held the file would fail at once. They all succeed only
    because they queue before it, whichever handle on the file they use (a reload opens a
    second one).
    """
    path = tmp_path / "q.db"
    open_store(path).close()
    monkeypatch.setattr(daemon.store.base, "BUSY_TIMEOUT_MS", 0)
    with Store(path) as first, Store(path) as second:
        results = run_together(
            24,
            lambda n: (first, second)[n % 2].insert_booking(
                new_session(START + timedelta(minutes=30 * n), tech=("ana", "bruno")[n % 2]),
                buffer=timedelta(0),
                now=NOW,
            ),
        )
        assert all(isinstance(r, Inserted) for r in results), results
        assert len(first.list_sessions()) == 24
        for tech in ("ana", "bruno"):
            times = first.active_session_intervals(tech, Interval(START, START + timedelta(days=1)))
            assert len(times) == 12
            assert all(a.end <= b.start for a, b in pairwise(times))


def test_a_write_inside_a_write_is_refused_at_once(store_at: str | Path) -> None:
    with (
        open_store(store_at) as store,
        store._write(),
        pytest.raises(StoreError, match="inside another one"),
    ):
        store.insert_booking(new_session(), buffer=timedelta(0), now=NOW)


def test_the_buffer_holds_under_concurrency(store_at: str | Path) -> None:
    """Half the threads book 12:00-12:30, half 12:30-13:00: back to back they both fit;
    with a 5-minute buffer only one of the two can (one technician each)."""
    with open_store(store_at) as store:
        for tech, buffer, expected in (
            ("ana", timedelta(0), 2),
            ("bruno", timedelta(minutes=5), 1),
        ):

            def book(n: int, tech: str = tech, buffer: timedelta = buffer) -> object:
                start = START + timedelta(minutes=30 * (n % 2))
                return store.insert_booking(new_session(start, tech=tech), buffer=buffer, now=NOW)

            results = run_together(12, book)
            assert sum(isinstance(r, Inserted) for r in results) == expected
            assert all(isinstance(r, Inserted | Conflict) for r in results), results
            assert len(active_sessions(store, tech)) == expected


def book_in_spawned_process(path: str, offset_minutes: int, barrier: Any, results: Any) -> None:
    """A spawned process: open its own Store, wait for the others, book, report one line."""
    outcome = "nothing"
    try:
        with handle_at(path) as store:
            session = new_session(START + timedelta(minutes=offset_minutes))
            barrier.wait(timeout=60)
            outcome = type(store.insert_booking(session, buffer=timedelta(0), now=NOW)).__name__
    except BaseException as error:  # reported to the parent, which fails the test
        barrier.abort()  # the others stop waiting for this one
        outcome = repr(error)
    finally:
        results.put(outcome)


def test_separate_processes_booking_the_same_time_yield_exactly_one(store_at: str | Path) -> None:
    path = store_at
    open_store(path).close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=book_in_spawned_process, args=(str(path), 3 * n, barrier, results))
        for n in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = []
    try:
        for _ in processes:
            outcomes.append(results.get(timeout=120))
    except queue.Empty:
        pass
    for process in processes:
        process.join(timeout=60)
    results.close()
    results.join_thread()
    assert sorted(outcomes) == ["Conflict"] * (PROCESSES - 1) + ["Inserted"], outcomes
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    with open_store(path) as store:
        assert len(active_sessions(store)) == 1
        assert len(store.list_sessions()) == 1


def test_processes_opening_a_fresh_file_at_once_migrate_it_once(store_at: str | Path) -> None:
    stores = run_together(8, lambda _: handle_at(store_at))
    try:
        assert all(isinstance(s, Store) for s in stores), stores
        versions = {s.schema_version for s in stores if isinstance(s, Store)}
        assert len(versions) == 1 and versions.pop() >= 1
    finally:
        for opened in stores:
            if isinstance(opened, Store):
                opened.close()


def test_check_in_and_no_show_race_has_one_winner(store_at: str | Path) -> None:
    contenders = ((Status.IN_PROGRESS, "admin"), (Status.RESCHEDULED, "system"))
    with open_store(store_at) as store:
        for round_ in range(10):
            inserted = store.insert_booking(
                new_session(START + timedelta(hours=round_)), buffer=timedelta(0), now=NOW
            )
            assert isinstance(inserted, Inserted)
            session_id = inserted.session.id

            def attempt(n: int, session_id: str = session_id) -> object:
                status, actor = contenders[n]
                return store.transition(
                    session_id, status, now=START, actor=actor, expected=Status.BOOKED
                )

            winners = [r for r in run_together(2, attempt) if r is not None]
            assert len(winners) == 1, winners
            stored = store.get_session(session_id)
            assert stored is not None and stored == winners[0]
            changes = [e for e in store.audit_log(session_id) if e.action == "status_changed"]
            assert len(changes) == 1 and changes[0].details["to"] == str(stored.status)


def test_a_store_used_by_many_threads_closes_from_another(store_at: str | Path) -> None:
    store = open_store(store_at)
    results = run_together(4, lambda n: store.list_sessions())
    assert results == [[]] * 4
    store.close()  # the worker threads' connections are closed here, not leaked
    assert store.list_sessions() == []  # and the handle reopens on use
    store.close()


def _queued_writers(
    tmp_path: Path, count: int, work: Callable[[int, Any], None], alone: int | None = None
) -> tuple[daemon.store.base.StoreBase, list[object], int]:
    """``count`` threads each run ``work(n, db)`` in a write (writer ``alone`` in one
    that shares no transaction), all queued behind a write lock held by the test until
    every one of them waits for it; returns the handle, what each thread ended with
    (None, or the exception it raised) and the commits made."""
    base = daemon.store.base.StoreBase(
        tmp_path / "g.db", migrations=[(1, "CREATE TABLE t (n INTEGER NOT NULL);")]
    )
    file = base._file
    before = file.commits
    results: list[object] = [None] * count
    seen_at_return: list[bool] = [False] * count

    def writer(n: int) -> None:
        try:
            with base._write(alone=n == alone) as db:
                work(n, db)
        except Exception as error:
            results[n] = error
            return
        # Durable when _write returns: a connection of its own already sees the row.
        with closing(sqlite3.connect(base.path)) as other:
            found = other.execute("SELECT count(*) FROM t WHERE n = ?", (n,)).fetchone()[0]
            seen_at_return[n] = found == 1

    file.write_lock.acquire()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while file.queued < count:
        assert time.monotonic() < deadline, f"only {file.queued} of {count} writers queued"
        time.sleep(0.001)
    file.write_lock.release()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    for n, result in enumerate(results):
        assert result is not None or seen_at_return[n], f"writer {n} returned before its commit"
    return base, results, file.commits - before


def test_writers_queued_together_share_one_commit(tmp_path: Path) -> None:
    def insert(n: int, db: Any) -> None:
        db.execute("INSERT INTO t (n) VALUES (?)", (n,))

    base, results, commits = _queued_writers(tmp_path, 12, insert)
    with base:
        assert results == [None] * 12
        assert commits == 1
        assert sorted(r[0] for r in base._read("SELECT n FROM t")) == list(range(12))


def test_a_failing_writer_in_a_group_takes_back_only_its_own_changes(tmp_path: Path) -> None:
    def insert(n: int, db: Any) -> None:
        db.execute("INSERT INTO t (n) VALUES (?)", (n,))
        if n % 4 == 1:
            raise ValueError(f"writer {n} changed its mind")
        if n == 6:
            db.execute("INSERT INTO t (n) VALUES (NULL)")  # a constraint the database refuses

    base, results, commits = _queued_writers(tmp_path, 10, insert)
    with base:
        failed = {n for n, r in enumerate(results) if r is not None}
        assert failed == {1, 5, 6, 9}
        assert isinstance(results[1], ValueError) and "writer 1" in str(results[1])
        assert isinstance(results[6], sqlite3.IntegrityError)
        kept = sorted(r[0] for r in base._read("SELECT n FROM t"))
        assert kept == sorted(set(range(10)) - failed)
        assert commits == 1


def test_a_long_write_shares_no_transaction(tmp_path: Path) -> None:
    """A write ``alone`` (a sync's changes) commits the writers before it first, which
    only wait for a commit, and its own at once, before the writers after it begin."""
    path = tmp_path / "g.db"
    order: list[int] = []
    committed: dict[int, int] = {}  # rows an outside connection sees as each writer runs

    def insert(n: int, db: Any) -> None:
        with closing(sqlite3.connect(path)) as other:
            committed[n] = other.execute("SELECT count(*) FROM t").fetchone()[0]
        order.append(n)
        db.execute("INSERT INTO t (n) VALUES (?)", (n,))

    base, results, commits = _queued_writers(tmp_path, 9, insert, alone=4)
    with base:
        assert results == [None] * 9
        place = order.index(4)
        assert committed[4] == place  # everyone before it was committed first
        if place + 1 < len(order):
            assert committed[order[place + 1]] == place + 1  # and it was, at once
        assert commits == 1 + (place > 0) + (place < len(order) - 1)
