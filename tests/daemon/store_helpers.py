"""Shared builders for store tests (importable by spawned processes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.store import Inserted, Store
from tests.factories import SESSION_START, new_session

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
START = SESSION_START


def open_store(path: Path) -> Store:
    store = Store(path)
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
    store = Store(path)
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
