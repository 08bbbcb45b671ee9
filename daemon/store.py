"""The SQLite store: the single source of truth for sessions, and the busy cache.

One file, WAL journal (readers never block the writer), foreign keys on, a busy timeout
so concurrent writers queue instead of failing. Every write that decides something
(a booking, a status change) runs in one transaction taken up front with
``BEGIN IMMEDIATE``: the check and the write see the same data, so two requests can never
both book the same technician's time, whether they come from two threads or two
processes. Instants are stored as integer UTC epoch seconds; the API speaks aware
datetimes. The store never reads the clock: callers pass ``now``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from connectors.base import ObjectChange
from daemon.errors import ExpedienteError
from rules.intervals import Interval
from rules.model import ACTIVE_STATUSES, Status

BUSY_TIMEOUT_MS = 10_000


class StoreError(ExpedienteError):
    """The database cannot be used (unreadable, from a newer version, corrupt)."""


def ts(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("the store takes aware datetimes only")
    return int(value.timestamp())


def dt(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _dt(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class NewSession:
    """A validated booking, ready to insert."""

    id: str
    type: str
    start: datetime
    end: datetime
    technician_id: str
    company: str
    responsible_name: str
    phone: str
    email: str
    remote_tool: str
    remote_id: str
    description: str
    language: str
    rules_version: str
    calendar_uid: str
    rebooked_from: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    id: str
    type: str
    start: datetime
    end: datetime
    technician_id: str
    status: Status
    company: str
    responsible_name: str
    phone: str
    email: str
    remote_tool: str
    remote_id: str
    description: str
    language: str
    rules_accepted_at: datetime
    rules_version: str
    created_at: datetime
    updated_at: datetime
    checked_in_at: datetime | None
    ended_at: datetime | None
    cancel_reason: str | None
    calendar_uid: str
    calendar_etag: str | None
    needs_attention: str | None
    rebooked_from: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


_TIME_FIELDS = {"start", "end", "rules_accepted_at", "created_at", "updated_at"}
_OPTIONAL_TIME_FIELDS = {"checked_in_at", "ended_at"}
_SESSION_SELECT = (
    "SELECT id, type, start_ts AS start, end_ts AS end, technician_id, status, company, "
    "responsible_name, phone, email, remote_tool, remote_id, description, language, "
    "rules_accepted_at, rules_version, created_at, updated_at, checked_in_at, ended_at, "
    "cancel_reason, calendar_uid, calendar_etag, needs_attention, rebooked_from FROM sessions"
)


def _session(row: sqlite3.Row) -> SessionRecord:
    values: dict[str, Any] = dict(zip(row.keys(), tuple(row), strict=True))
    for name in _TIME_FIELDS:
        values[name] = _dt(values[name])
    for name in _OPTIONAL_TIME_FIELDS:
        values[name] = dt(values[name])
    values["status"] = Status(values["status"])
    return SessionRecord(**values)


@dataclass(frozen=True)
class Inserted:
    session: SessionRecord


@dataclass(frozen=True)
class Replayed:
    """The idempotency key was used before with the same request: its first result."""

    session: SessionRecord


@dataclass(frozen=True)
class Conflict:
    """The technician's time was taken meanwhile (``reason`` says by what)."""

    reason: str


@dataclass(frozen=True)
class KeyReused:
    """The idempotency key was used before for a different request."""

    session_id: str


@dataclass(frozen=True)
class OutboxItem:
    id: int
    session_id: str | None
    action: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class CalendarState:
    id: str
    technician_id: str
    role: str
    kind: str
    address: str
    sync_state: str | None
    last_sync_ok_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    consecutive_failures: int


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    session_id: str | None
    reason: str
    details: dict[str, Any]


def migrations() -> list[tuple[int, str]]:
    """The packaged migrations as ``(version, sql)``, in order."""
    folder = resources.files("daemon") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Store:
    """A handle on the database; safe to share between threads (one connection each)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._watch: sqlite3.Connection | None = None
        self._commits = 0
        self._migrate()

    # ------------------------------------------------------------- connections

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(
                    self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
                )
                db.row_factory = sqlite3.Row
                db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                db.execute("PRAGMA foreign_keys = ON")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as error:
                raise StoreError(f"cannot open the store {self.path}: {error}") from None
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def data_version(self) -> int:
        """A number that changes whenever any connection (any thread or process) commits.

        Caches compare it to know when to reload; it is read on a connection of its own,
        since SQLite reports changes made through *other* connections.
        """
        with self._lock:
            if self._watch is None:
                self._watch = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
                self._connections.append(self._watch)
            own = self._commits
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0]) * 1_000_003 + own

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
            self._watch = None
        self._local = threading.local()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, locked up front so the checks inside it stay true."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        with self._lock:
            self._commits += 1

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self._connection().execute(sql, args).fetchall()

    def _migrate(self) -> None:
        known = migrations()
        latest = known[-1][0] if known else 0
        with self._write() as db:
            current = db.execute("PRAGMA user_version").fetchone()[0]
            if current > latest:
                raise StoreError(
                    f"the store {self.path} has schema version {current}, newer than this "
                    f"expediente knows ({latest}); run the newer version or restore a backup"
                )
            for version, sql in known:
                if version > current:
                    for statement in _statements(sql):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {version}")

    @property
    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    # ----------------------------------------------------- technicians, calendars

    def sync_technicians(
        self,
        technicians: Sequence[tuple[str, str]],
        calendars: Sequence[tuple[str, str, str, str, str]],
    ) -> None:
        """Make the stored technicians and calendars match the configuration.

        ``technicians`` are ``(id, name)`` in configuration order; ``calendars`` are
        ``(id, technician_id, role, kind, address)``. A calendar no longer configured is
        removed with its cache; sessions are never removed.
        """
        with self._write() as db:
            for position, (tech_id, name) in enumerate(technicians):
                db.execute(
                    "INSERT INTO technicians (id, name, position) VALUES (?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                    "position = excluded.position",
                    (tech_id, name, position),
                )
            keep = [c[0] for c in calendars]
            placeholders = ",".join("?" * len(keep)) or "''"
            db.execute(f"DELETE FROM calendars WHERE id NOT IN ({placeholders})", keep)  # noqa: S608
            for cal_id, tech_id, role, kind, address in calendars:
                db.execute(
                    "INSERT INTO calendars (id, technician_id, role, kind, address) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "technician_id = excluded.technician_id, role = excluded.role",
                    (cal_id, tech_id, role, kind, address),
                )

    def calendars(self) -> list[CalendarState]:
        rows = self._read(
            "SELECT id, technician_id, role, kind, address, sync_state, last_sync_ok_at, "
            "last_attempt_at, last_error, consecutive_failures FROM calendars ORDER BY id"
        )
        return [
            CalendarState(
                r["id"],
                r["technician_id"],
                r["role"],
                r["kind"],
                r["address"],
                r["sync_state"],
                dt(r["last_sync_ok_at"]),
                dt(r["last_attempt_at"]),
                r["last_error"],
                r["consecutive_failures"],
            )
            for r in rows
        ]

    def calendar(self, calendar_id: str) -> CalendarState | None:
        return next((c for c in self.calendars() if c.id == calendar_id), None)

    def apply_sync(
        self,
        calendar_id: str,
        changes: Iterable[ObjectChange],
        *,
        full: bool,
        state: str | None,
        now: datetime,
    ) -> None:
        """Store a sync's result in one transaction: all of it or, on error, none of it.

        ``full`` replaces everything cached for the calendar; otherwise each change
        upserts or deletes its object.
        """
        with self._write() as db:
            if full:
                db.execute("DELETE FROM calendar_objects WHERE calendar_id = ?", (calendar_id,))
            for change in changes:
                db.execute(
                    "DELETE FROM calendar_objects WHERE calendar_id = ? AND href = ?",
                    (calendar_id, change.href),
                )
                if change.deleted:
                    continue
                db.execute(
                    "INSERT INTO calendar_objects "
                    "(calendar_id, href, uid, etag, start_ts, end_ts, cancelled) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        calendar_id,
                        change.href,
                        change.uid,
                        change.etag,
                        ts(change.start) if change.start else None,
                        ts(change.end) if change.end else None,
                        int(change.cancelled),
                    ),
                )
                db.executemany(
                    "INSERT INTO busy_intervals (calendar_id, href, start_ts, end_ts) "
                    "VALUES (?, ?, ?, ?)",
                    [(calendar_id, change.href, ts(b.start), ts(b.end)) for b in change.blocks],
                )
            db.execute(
                "UPDATE calendars SET sync_state = ?, last_sync_ok_at = ?, last_attempt_at = ?, "
                "last_error = NULL, consecutive_failures = 0 WHERE id = ?",
                (state, ts(now), ts(now), calendar_id),
            )

    def record_sync_failure(self, calendar_id: str, error: str, now: datetime) -> None:
        """Note a failed sync; the cached busy data stays as it was (marked by its age)."""
        with self._write() as db:
            db.execute(
                "UPDATE calendars SET last_attempt_at = ?, last_error = ?, "
                "consecutive_failures = consecutive_failures + 1 WHERE id = ?",
                (ts(now), error[:2000], calendar_id),
            )

    def reset_sync_state(self, calendar_id: str) -> None:
        """Forget the sync token so the next sync is full (the cache stays until then)."""
        with self._write() as db:
            db.execute("UPDATE calendars SET sync_state = NULL WHERE id = ?", (calendar_id,))

    def calendar_objects(self, calendar_id: str) -> dict[str, tuple[str | None, str | None]]:
        """``href -> (uid, etag)`` of what the calendar held at its last good sync."""
        rows = self._read(
            "SELECT href, uid, etag FROM calendar_objects WHERE calendar_id = ?", (calendar_id,)
        )
        return {r["href"]: (r["uid"], r["etag"]) for r in rows}

    # -------------------------------------------------------------- busy time

    def busy_pairs(self, technician_id: str, window: Interval) -> list[tuple[int, int]]:
        """Busy time from the technician's calendars, as epoch pairs ordered by start.

        Our own session events are left out: sessions count through
        :meth:`session_pairs`, by their status in the store, so a rescheduled session
        frees its time even before its calendar event is updated.
        """
        rows = self._connection().execute(
            "SELECT b.start_ts, b.end_ts FROM busy_intervals b "
            "JOIN calendars c ON c.id = b.calendar_id "
            "JOIN calendar_objects o ON o.calendar_id = b.calendar_id AND o.href = b.href "
            "WHERE c.technician_id = ? AND b.start_ts < ? AND b.end_ts > ? "
            "AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.calendar_uid = o.uid) "
            "ORDER BY b.start_ts",
            (technician_id, ts(window.end), ts(window.start)),
        )
        return [(row[0], row[1]) for row in rows]

    def session_pairs(self, technician_id: str, window: Interval) -> list[tuple[int, int]]:
        """Active sessions of the technician overlapping ``window``, as epoch pairs."""
        rows = self._connection().execute(
            "SELECT start_ts, end_ts FROM sessions WHERE technician_id = ? "
            "AND status IN ('booked', 'in_progress') AND start_ts < ? AND end_ts > ? "
            "ORDER BY start_ts",
            (technician_id, ts(window.end), ts(window.start)),
        )
        return [(row[0], row[1]) for row in rows]

    def busy_intervals(self, technician_id: str, window: Interval) -> list[Interval]:
        return [
            Interval(_dt(a), _dt(b))
            for a, b in self.busy_pairs(technician_id, window)
            + self.session_pairs(technician_id, window)
        ]

    def load_by_technician(self, window: Interval) -> dict[str, int]:
        """Sessions (booked, in progress, completed) per technician in ``window``."""
        rows = self._read(
            "SELECT technician_id, count(*) FROM sessions "
            "WHERE status IN ('booked', 'in_progress', 'completed') "
            "AND start_ts < ? AND end_ts > ? GROUP BY technician_id",
            (ts(window.end), ts(window.start)),
        )
        return {row[0]: row[1] for row in rows}

    # -------------------------------------------------------------- sessions

    def insert_booking(
        self,
        session: NewSession,
        *,
        buffer: timedelta,
        now: datetime,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        actor: str = "client",
    ) -> Inserted | Replayed | Conflict | KeyReused:
        """Insert a booking unless the technician's time was taken meanwhile.

        The re-check and the insert share one ``BEGIN IMMEDIATE`` transaction: no other
        writer can slip in between them. Also writes the audit entry and queues the
        calendar write (outbox) in the same transaction.
        """
        lo, hi = ts(session.start - buffer), ts(session.end + buffer)
        with self._write() as db:
            if idempotency_key is not None:
                row = db.execute(
                    f"{_SESSION_SELECT} WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
                if row is not None:
                    stored = db.execute(
                        "SELECT request_hash FROM sessions WHERE id = ?", (row["id"],)
                    ).fetchone()[0]
                    if stored == request_hash:
                        return Replayed(_session(row))
                    return KeyReused(row["id"])
            clash = db.execute(
                "SELECT id FROM sessions WHERE technician_id = ? "
                "AND status IN ('booked', 'in_progress') AND start_ts < ? AND end_ts > ? LIMIT 1",
                (session.technician_id, hi, lo),
            ).fetchone()
            if clash is not None:
                return Conflict(f"session {clash[0]}")
            busy = db.execute(
                "SELECT o.uid FROM busy_intervals b "
                "JOIN calendars c ON c.id = b.calendar_id "
                "JOIN calendar_objects o ON o.calendar_id = b.calendar_id AND o.href = b.href "
                "WHERE c.technician_id = ? AND b.start_ts < ? AND b.end_ts > ? "
                "AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.calendar_uid = o.uid) LIMIT 1",
                (session.technician_id, hi, lo),
            ).fetchone()
            if busy is not None:
                return Conflict("calendar event")
            stamp = ts(now)
            db.execute(
                "INSERT INTO sessions (id, type, start_ts, end_ts, technician_id, status, "
                "company, responsible_name, phone, email, remote_tool, remote_id, description, "
                "language, rules_accepted_at, rules_version, created_at, updated_at, "
                "idempotency_key, request_hash, calendar_uid, rebooked_from) "
                "VALUES (?, ?, ?, ?, ?, 'booked', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.type,
                    ts(session.start),
                    ts(session.end),
                    session.technician_id,
                    session.company,
                    session.responsible_name,
                    session.phone,
                    session.email,
                    session.remote_tool,
                    session.remote_id,
                    session.description,
                    session.language,
                    stamp,
                    session.rules_version,
                    stamp,
                    stamp,
                    idempotency_key,
                    request_hash,
                    session.calendar_uid,
                    session.rebooked_from,
                ),
            )
            self._audit(db, now, actor, "booking_accepted", session.id, "", {})
            self._enqueue(db, now, session.id, "put", {})
            row = db.execute(f"{_SESSION_SELECT} WHERE id = ?", (session.id,)).fetchone()
        return Inserted(_session(row))

    def session_by_idempotency_key(self, key: str) -> tuple[SessionRecord, str | None] | None:
        rows = self._read(f"{_SESSION_SELECT} WHERE idempotency_key = ?", (key,))
        if not rows:
            return None
        stored = self._read("SELECT request_hash FROM sessions WHERE id = ?", (rows[0]["id"],))
        return _session(rows[0]), stored[0][0]

    def get_session(self, session_id: str) -> SessionRecord | None:
        rows = self._read(f"{_SESSION_SELECT} WHERE id = ?", (session_id,))
        return _session(rows[0]) if rows else None

    def session_by_calendar_uid(self, uid: str) -> SessionRecord | None:
        rows = self._read(f"{_SESSION_SELECT} WHERE calendar_uid = ?", (uid,))
        return _session(rows[0]) if rows else None

    def list_sessions(
        self,
        *,
        status: Status | None = None,
        technician_id: str | None = None,
        window: Interval | None = None,
        limit: int = 1000,
    ) -> list[SessionRecord]:
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(str(status))
        if technician_id is not None:
            where.append("technician_id = ?")
            args.append(technician_id)
        if window is not None:
            where.append("start_ts < ? AND end_ts > ?")
            args += [ts(window.end), ts(window.start)]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(f"{_SESSION_SELECT}{clause} ORDER BY start_ts LIMIT ?", [*args, limit])
        return [_session(r) for r in rows]

    def transition(
        self,
        session_id: str,
        new_status: Status,
        *,
        now: datetime,
        actor: str,
        reason: str = "",
        expected: Status | None = None,
        outbox: Sequence[tuple[str, dict[str, Any]]] = (("put", {}),),
    ) -> SessionRecord | None:
        """Compare-and-set the status; None when it was not ``expected`` (someone won).

        The audit entry and the outbox items (calendar update, notifications) are written
        in the same transaction, so a crash can never leave one without the other.
        """
        stamp = ts(now)
        with self._write() as db:
            row = db.execute("SELECT status FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None or (expected is not None and row[0] != str(expected)):
                return None
            extra = ""
            if new_status == Status.IN_PROGRESS:
                extra = ", checked_in_at = :now"
            elif new_status in (Status.COMPLETED, Status.RESCHEDULED, Status.CANCELLED):
                extra = ", ended_at = :now"
            if new_status == Status.CANCELLED:
                extra += ", cancel_reason = :reason"
            db.execute(
                f"UPDATE sessions SET status = :status, updated_at = :now{extra} WHERE id = :id",  # noqa: S608
                {"status": str(new_status), "now": stamp, "reason": reason, "id": session_id},
            )
            self._audit(
                db, now, actor, "status_changed", session_id, reason,
                {"from": row[0], "to": str(new_status)},
            )  # fmt: skip
            for action, payload in outbox:
                self._enqueue(db, now, session_id, action, payload)
            updated = db.execute(f"{_SESSION_SELECT} WHERE id = ?", (session_id,)).fetchone()
        return _session(updated)

    def move_session(
        self, session_id: str, start: datetime, end: datetime, *, now: datetime, actor: str
    ) -> SessionRecord | None:
        """Move an active session (the technician moved its event); None if not active."""
        with self._write() as db:
            row = db.execute(
                "SELECT start_ts, end_ts FROM sessions WHERE id = ? "
                "AND status IN ('booked', 'in_progress')",
                (session_id,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE sessions SET start_ts = ?, end_ts = ?, updated_at = ?, "
                "needs_attention = NULL WHERE id = ?",
                (ts(start), ts(end), ts(now), session_id),
            )
            self._audit(
                db, now, actor, "moved", session_id, "",
                {"from": [row[0], row[1]], "to": [ts(start), ts(end)]},
            )  # fmt: skip
            updated = db.execute(f"{_SESSION_SELECT} WHERE id = ?", (session_id,)).fetchone()
        return _session(updated)

    def flag_session(self, session_id: str, reason: str, *, now: datetime, actor: str) -> None:
        """Mark a session for the admin's attention (kept until resolved)."""
        with self._write() as db:
            db.execute(
                "UPDATE sessions SET needs_attention = ?, updated_at = ? WHERE id = ?",
                (reason, ts(now), session_id),
            )
            self._audit(db, now, actor, "flagged", session_id, reason, {})

    def flagged_sessions(self) -> list[SessionRecord]:
        rows = self._read(f"{_SESSION_SELECT} WHERE needs_attention IS NOT NULL ORDER BY start_ts")
        return [_session(r) for r in rows]

    def set_calendar_etag(self, session_id: str, etag: str | None) -> None:
        with self._write() as db:
            db.execute("UPDATE sessions SET calendar_etag = ? WHERE id = ?", (etag, session_id))

    def due_sessions(
        self, *, booked_started_before: datetime, in_progress_ended_by: datetime
    ) -> list[SessionRecord]:
        """Booked sessions whose start is before the first bound (no-show candidates) and
        sessions in progress whose end is at or before the second (to complete)."""
        rows = self._read(
            f"{_SESSION_SELECT} WHERE (status = 'booked' AND start_ts < ?) "
            "OR (status = 'in_progress' AND end_ts <= ?) ORDER BY start_ts",
            (ts(booked_started_before), ts(in_progress_ended_by)),
        )
        return [_session(r) for r in rows]

    def next_session_start(self, after: datetime) -> datetime | None:
        row = self._read(
            "SELECT min(start_ts) FROM sessions WHERE status = 'booked' AND start_ts >= ?",
            (ts(after) - 86400,),
        )
        return dt(row[0][0])

    # ------------------------------------------------------------------ outbox

    def _enqueue(
        self,
        db: sqlite3.Connection,
        now: datetime,
        session_id: str | None,
        action: str,
        payload: dict[str, Any],
    ) -> None:
        if action == "put" and session_id is not None:
            # A newer calendar write carries the latest state: older ones are moot.
            db.execute(
                "UPDATE outbox SET superseded = 1 WHERE session_id = ? AND action = 'put' "
                "AND done_at IS NULL",
                (session_id,),
            )
        db.execute(
            "INSERT INTO outbox (session_id, action, payload, next_attempt_at, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (session_id, action, json.dumps(payload), ts(now), ts(now)),
        )

    def enqueue(
        self, session_id: str | None, action: str, payload: dict[str, Any], *, now: datetime
    ) -> None:
        with self._write() as db:
            self._enqueue(db, now, session_id, action, payload)

    def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        rows = self._read(
            "SELECT id, session_id, action, payload, attempts FROM outbox "
            "WHERE done_at IS NULL AND superseded = 0 AND next_attempt_at <= ? "
            "ORDER BY id LIMIT ?",
            (ts(now), limit),
        )
        return [
            OutboxItem(
                r["id"], r["session_id"], r["action"], json.loads(r["payload"]), r["attempts"]
            )
            for r in rows
        ]

    def outbox_done(self, item_id: int, now: datetime) -> None:
        with self._write() as db:
            db.execute("UPDATE outbox SET done_at = ? WHERE id = ?", (ts(now), item_id))

    def outbox_failed(self, item_id: int, error: str, next_attempt_at: datetime) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE id = ?",
                (error[:2000], ts(next_attempt_at), item_id),
            )

    def outbox_depth(self) -> int:
        row = self._read("SELECT count(*) FROM outbox WHERE done_at IS NULL AND superseded = 0")
        return int(row[0][0])

    # ------------------------------------------------------------------- audit

    def _audit(
        self,
        db: sqlite3.Connection,
        now: datetime,
        actor: str,
        action: str,
        session_id: str | None,
        reason: str,
        details: dict[str, Any],
    ) -> None:
        db.execute(
            "INSERT INTO audit (at, actor, action, session_id, reason, details) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ts(now), actor, action, session_id, reason, json.dumps(details, ensure_ascii=False)),
        )

    def audit(
        self,
        actor: str,
        action: str,
        *,
        now: datetime,
        session_id: str | None = None,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an event that changes no session (e.g. a rejected booking)."""
        with self._write() as db:
            self._audit(db, now, actor, action, session_id, reason, details or {})

    def audit_log(self, session_id: str | None = None, limit: int = 500) -> list[AuditEntry]:
        if session_id is None:
            rows = self._read(
                "SELECT at, actor, action, session_id, reason, details FROM audit "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        else:
            rows = self._read(
                "SELECT at, actor, action, session_id, reason, details FROM audit "
                "WHERE session_id = ? ORDER BY id LIMIT ?",
                (session_id, limit),
            )
        return [AuditEntry(_dt(r[0]), r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (no semicolons inside our literals)."""
    return [s.strip() for s in sql.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())
