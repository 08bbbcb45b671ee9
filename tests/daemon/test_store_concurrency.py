"""No double booking, ever: concurrent bookings of one technician's time, threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta
from pathlib import Path

from daemon.store import Inserted, Store
from rules.model import Status
from tests.daemon.store_helpers import NOW, START, book_in_process, new_session, open_store


def test_twenty_threads_booking_overlapping_times_yield_exactly_one(tmp_path: Path) -> None:
    store = open_store(tmp_path / "t.db")
    barrier = threading.Barrier(20)
    results: list[object] = []
    lock = threading.Lock()

    def book(offset: int) -> None:
        session = new_session(START + timedelta(minutes=offset))
        barrier.wait()
        result = store.insert_booking(session, buffer=timedelta(0), now=NOW)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=book, args=(n % 20,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(r, Inserted) for r in results) == 1
    assert len(store.list_sessions(status=Status.BOOKED)) == 1


def test_separate_processes_booking_the_same_time_yield_exactly_one(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    open_store(path).close()
    context = multiprocessing.get_context("spawn")
    with context.Pool(6) as pool:
        outcomes = pool.starmap(book_in_process, [(str(path), n * 5) for n in range(6)])
    assert outcomes.count(True) == 1
    store = Store(path)
    assert len(store.list_sessions(status=Status.BOOKED)) == 1


def test_check_in_and_no_show_race_has_one_winner(tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.db")
    inserted = store.insert_booking(new_session(), buffer=timedelta(0), now=NOW)
    assert isinstance(inserted, Inserted)
    barrier = threading.Barrier(2)
    winners: list[Status] = []

    def attempt(status: Status) -> None:
        barrier.wait()
        if store.transition(
            inserted.session.id, status, now=START, actor="x", expected=Status.BOOKED
        ):
            winners.append(status)

    threads = [
        threading.Thread(target=attempt, args=(s,))
        for s in (Status.IN_PROGRESS, Status.RESCHEDULED)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert store.get_session(inserted.session.id).status == winners[0]  # type: ignore[union-attr]
