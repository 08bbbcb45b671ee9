"""Shared builders for store tests (importable by spawned processes)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.store import Inserted, Store
from tests.factories import SESSION_START, new_session

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
START = SESSION_START


def store_at(where: str | Path) -> Store:
    """A handle on a test store: a libpq connection string ("host=...") opens the
    PostgreSQL store, anything else is an SQLite file."""
    if str(where).startswith("host="):
        from daemon.store.postgres import PostgresStore

        return PostgresStore(str(where), pool_size=4)
    return Store(where)


def open_store(path: str | Path) -> Store:
    """A test store with the two technicians and their calendars, on either backend."""
    store = store_at(path)
    store.sync_technicians(
        [("ana", "Ana Souza"), ("bruno", "Bruno Lima")],
        [
            ("ana:sessions:1", "ana", "sessions", "caldav", "http://127.0.0.1/ana/"),
            ("ana:busy:1", "ana", "busy", "caldav", "http://127.0.0.1/ana-p/"),
            ("bruno:sessions:1", "bruno", "sessions", "caldav", "http://127.0.0.1/bruno/"),
        ],
    )
    return store


def book_in_process(path: str, offset_minutes: int) -> bool:
    """Run in a spawned process: try one booking, report whether it was inserted."""
    store = store_at(path)
    try:
        result = store.insert_booking(
            new_session(START + timedelta(minutes=offset_minutes)),
            buffer=timedelta(0),
            now=NOW,
        )
        return isinstance(result, Inserted)
    finally:
        store.close()


def cancel_notices(store: Store, now: datetime) -> list[str | None]:
    """Sessions whose cancellation notice waits in the outbox (due at ``now``), in order."""
    return [
        item.session_id
        for item in store.due_outbox(now)
        if item.action == "notify" and item.payload == {"event": "cancelled"}
    ]


def run_together(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(n)`` in ``count`` threads released at the same instant; return results
    (an exception raised in a thread is returned as its result, never lost)."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(n: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[n] = work(n)
        except Exception as error:
            results[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results
