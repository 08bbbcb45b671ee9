"""Shared builders for store tests (importable by spawned processes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.store import Inserted, NewSession, Store

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def new_session(
    start: datetime = START, minutes: int = 30, tech: str = "ana", **changes: object
) -> NewSession:
    session_id = uuid.uuid4().hex
    values: dict[str, object] = {
        "id": session_id,
        "type": "standard",
        "start": start,
        "end": start + timedelta(minutes=minutes),
        "technician_id": tech,
        "company": "Relojoaria Central",
        "responsible_name": "Maria Lima",
        "phone": "+5511987654321",
        "email": "maria@example.com",
        "remote_tool": "AnyDesk",
        "remote_id": "123456789",
        "description": "ponto não sincroniza",
        "language": "pt-BR",
        "rules_version": "v1",
        "calendar_uid": f"expediente-{session_id}",
    }
    values.update(changes)
    return NewSession(**values)  # type: ignore[arg-type]


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
