"""Moving a desk from its SQLite file to PostgreSQL: ``expediente store copy``.

Everything the file holds is copied, in one transaction on the target: technicians,
calendars with their sync states and busy cache, sessions, the outbox (delivered items,
pending ones with their attempts and next times), the audit log, the WhatsApp
conversation's facts and the desk console's accounts, logins and failed logins, with their
ids, so a pending delivery, an audit entry or a logged-in attendant reads the same
afterwards. The per-technician versions
start over (the target's triggers keep them; only a running daemon's cache reads them).

The target must be empty: copying onto a desk already there would mix two desks' sessions.
The source is brought to the current schema first (as the daemon would on start), and its
active sessions must not overlap, since PostgreSQL refuses that (SQLite let a technician's
own move record one); such pairs are named so the admin can settle them first.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import UserError
from daemon.store import Store
from daemon.store.postgres import PostgresStore

# In an order that satisfies the foreign keys (sessions among themselves are deferred).
TABLES = ("technicians", "calendars", "calendar_objects", "busy_intervals", "sessions",
          "outbox", "audit", "whatsapp_inbound", "whatsapp_contacts", "whatsapp_messages",
          "whatsapp_health", "staff", "staff_logins", "staff_login_failures")  # fmt: skip
# Tables whose queries break ties by SQLite's rowid: read in that order, so the target's
# explicit ``rowid`` column (pg_migrations/0004) numbers them the same way.
ROWID_ORDERED = ("whatsapp_inbound", "whatsapp_messages")


class CopyRefused(UserError):
    """The copy cannot be made as things are; the message says what to do."""


@dataclass(frozen=True)
class Copied:
    rows: dict[str, int]


def copy_sqlite_to_postgres(source: Path, target: PostgresStore) -> Copied:
    """Copy the desk in the SQLite file ``source`` into the empty ``target``.

    Raises :class:`CopyRefused` when the source is missing, the target holds data, or two
    active sessions of one technician overlap in the source. Nothing is written then, and
    a failure half-way rolls the whole copy back.
    """
    if not source.is_file():
        raise CopyRefused(f"no SQLite store at {source}: give the path of the desk's .db file")
    if not target.is_empty():
        raise CopyRefused(
            f"the PostgreSQL database {target.path} already holds a desk: copy only into an "
            "empty database (create a new one, or drop this one's tables if it is a failed try)"
        )
    Store(source).close()  # the current schema, as the daemon would make it on start
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as db:
        overlaps = db.execute(
            "SELECT a.technician_id, a.id, b.id FROM sessions a JOIN sessions b "
            "ON a.technician_id = b.technician_id AND a.id < b.id "
            "AND a.start_ts < b.end_ts AND b.start_ts < a.end_ts "
            "WHERE a.status IN ('booked', 'in_progress') AND b.status IN ('booked', 'in_progress')"
        ).fetchall()
        if overlaps:
            pairs = "; ".join(f"{tech}: {a} and {b}" for tech, a, b in overlaps[:10])
            raise CopyRefused(
                f"active sessions overlap in {source} ({pairs}); PostgreSQL refuses that: "
                "cancel or move one of each pair (expediente cancel ID --config ...) and copy again"
            )
        tables = []
        for table in TABLES:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            order = " ORDER BY rowid" if table in ROWID_ORDERED else ""
            rows = db.execute(f"SELECT {', '.join(columns)} FROM {table}{order}")  # noqa: S608
            tables.append((table, columns, rows))
        counts = target.load_tables(tables)
    return Copied(counts)
