"""Sessions: booking, the status lifecycle, moves, flags, and reading them back.

A booking, and a move with a buffer, re-check the technician's time inside their own
``BEGIN IMMEDIATE`` transaction (:func:`~daemon.store.busy.clash`); a status change is a
compare-and-set. Each write adds its audit entry and outbox items in that same
transaction, so "accepted" means committed and a crash never leaves a change without what
must follow it. Which transitions are allowed is for ``rules.lifecycle`` to say; the
store only refuses to make an inactive session active again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from daemon.store.audit import record_audit
from daemon.store.base import Connection, StoreBase, StoreError
from daemon.store.busy import clash
from daemon.store.queue import enqueue_item
from daemon.store.records import (
    SESSION_SELECT,
    CalendarWrite,
    Conflict,
    InProgress,
    Inserted,
    KeyReused,
    NewSession,
    OutboxRequest,
    Replayed,
    SessionRecord,
    as_session,
    record_calendar_write,
    span,
    ts,
    ts_ceil,
)
from rules.intervals import Interval, require_aware
from rules.lifecycle import CancelReason
from rules.model import ACTIVE_STATUSES, Status

# The longest session of any technician, each technician's read from their index
# (migration 0005): a lower bound for the sessions that can overlap a window.
_LONGEST = (
    "(SELECT max((SELECT max(m.end_ts - m.start_ts) FROM sessions m "
    "WHERE m.technician_id = t.id)) FROM technicians t)"
)


class SessionsPart(StoreBase):
    """Booking, transitions, moves and flags; sessions by id, UID, href, status and time."""

    def insert_booking(
        self,
        session: NewSession,
        *,
        buffer: timedelta,
        now: datetime,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        actor: str = "client",
        outbox: Sequence[OutboxRequest] = (("put", {}),),
        replaced_outbox: Sequence[OutboxRequest] = (("put", {}),),
        audit: dict[str, Any] | None = None,
    ) -> Inserted | Replayed | Conflict | KeyReused | InProgress:
        """Insert a booking unless the technician's time was taken meanwhile.

        The re-check (no active session and no cached busy block within ``buffer`` of the
        session) and the insert share one ``BEGIN IMMEDIATE`` transaction: no other
        writer can slip in between them. The audit entry and the ``outbox`` items (by
        default the calendar write) are written in the same transaction. An
        ``idempotency_key`` seen before yields :class:`Replayed` when ``request_hash``
        matches the first request and :class:`KeyReused` otherwise.

        A rebooking (``session.rebooked_from``) replaces a session that is still booked in
        the same transaction: the old one is cancelled with its ``replaced_outbox`` items
        and its time does not count against the new one, so a client can move a session
        by less than its length, and a crash never leaves both (or neither) held. One
        checked in meanwhile is :class:`InProgress` and nothing is written. ``audit`` adds
        to the audit entry's details (the desk's notice override and its reason).
        """
        with self._write(calendars=False) as db:
            if idempotency_key is not None:
                row = db.execute(
                    "SELECT id, request_hash FROM sessions WHERE idempotency_key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row is not None:
                    if row["request_hash"] != request_hash:
                        return KeyReused(row["id"])
                    first = db.execute(f"{SESSION_SELECT} WHERE id = ?", (row["id"],)).fetchone()
                    return Replayed(as_session(first))
            known = db.execute(
                "SELECT 1 FROM technicians WHERE id = ?", (session.technician_id,)
            ).fetchone()
            if known is None:
                raise StoreError(f"unknown technician {session.technician_id!r}")
            replaced: str | None = None
            if session.rebooked_from is not None:
                row = db.execute(
                    "SELECT status FROM sessions WHERE id = ?", (session.rebooked_from,)
                ).fetchone()
                if row is not None and row[0] == Status.IN_PROGRESS:
                    return InProgress(session.rebooked_from)
                if row is not None and row[0] == Status.BOOKED:
                    replaced = session.rebooked_from
            interval = Interval(session.start, session.end)
            conflict = clash(db, session.technician_id, interval, buffer, replaced)
            if conflict is not None:
                return conflict
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
                    ts_ceil(session.end),
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
            details: dict[str, Any] = {
                "technician": session.technician_id,
                "type": session.type,
                "start": ts(session.start),
                "end": ts_ceil(session.end),
            }
            if session.rebooked_from:
                details["rebooked_from"] = session.rebooked_from
            details.update(audit or {})
            record_audit(db, now, actor, "booking_accepted", session.id, "", details)
            for action, payload in outbox:
                enqueue_item(db, now, session.id, action, payload, new_session=True)
            if replaced is not None:
                self._set_status(
                    db, replaced, Status.BOOKED, Status.CANCELLED, now, actor,
                    CancelReason.REBOOKED, replaced_outbox,
                )  # fmt: skip
            row = db.execute(f"{SESSION_SELECT} WHERE id = ?", (session.id,)).fetchone()
            versions = db.execute(
                "SELECT calendar, sessions FROM technician_versions WHERE technician_id = ?",
                (session.technician_id,),
            ).fetchone()
        return Inserted(
            as_session(row), None if versions is None else (int(versions[0]), int(versions[1]))
        )

    def session_by_idempotency_key(self, key: str) -> tuple[SessionRecord, str | None] | None:
        """The session first booked with ``key`` and that request's hash, if any."""
        rows = self._read("SELECT id, request_hash FROM sessions WHERE idempotency_key = ?", (key,))
        if not rows:
            return None
        session = self.get_session(rows[0]["id"])
        return None if session is None else (session, rows[0]["request_hash"])

    def get_session(self, session_id: str) -> SessionRecord | None:
        rows = self._read(f"{SESSION_SELECT} WHERE id = ?", (session_id,))
        return as_session(rows[0]) if rows else None

    def session_by_calendar_uid(self, uid: str) -> SessionRecord | None:
        rows = self._read(f"{SESSION_SELECT} WHERE calendar_uid = ?", (uid,))
        return as_session(rows[0]) if rows else None

    def list_sessions(
        self,
        *,
        status: Status | Iterable[Status] | None = None,
        technician_id: str | None = None,
        window: Interval | None = None,
        flagged: bool = False,
        after: SessionRecord | None = None,
        limit: int | None = None,
    ) -> list[SessionRecord]:
        """Sessions by start time (then id), filtered by status(es), technician, overlap
        with ``window`` and, when ``flagged``, waiting for the admin; those after ``after``
        in that order, at most ``limit`` (all when None).

        ``after`` is a keyset cursor: a page goes on from the last row of the one before,
        so sessions booked or cancelled between pages neither repeat nor go missing the
        way they would with an offset."""
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, Status) else list(status)
            where.append("status IN (SELECT value FROM json_each(?))")
            args.append(json.dumps([str(s) for s in statuses]))
        if technician_id is not None:
            where.append("technician_id = ?")
            args.append(technician_id)
        if window is not None:
            lo, hi = span(window)
            # Bounded from below by the longest session, as busy.py's reads: otherwise every
            # session before the window (a desk's whole history) is visited.
            where.append(f"start_ts < ? AND end_ts > ? AND start_ts >= ? - {_LONGEST}")
            args += [hi, lo, lo]
        if flagged:
            where.append("needs_attention IS NOT NULL")
        if after is not None:
            where.append("(start_ts, id) > (?, ?)")
            args += [ts(after.start), after.id]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        if limit is not None:
            args.append(limit)
        rows = self._read(
            f"{SESSION_SELECT}{clause} ORDER BY start_ts, id{'' if limit is None else ' LIMIT ?'}",
            args,
        )
        return [as_session(r) for r in rows]

    def iter_sessions(
        self,
        *,
        status: Status | Iterable[Status] | None = None,
        technician_id: str | None = None,
        window: Interval | None = None,
        flagged: bool = False,
        page: int = 500,
    ) -> Iterator[SessionRecord]:
        """Every session :meth:`list_sessions` would return, read ``page`` rows at a time:
        memory stays flat however many there are, and no read holds the file for long."""
        statuses = None if status is None else [status] if isinstance(status, Status) else [*status]
        last: SessionRecord | None = None
        while True:
            found = self.list_sessions(
                status=statuses,
                technician_id=technician_id,
                window=window,
                flagged=flagged,
                after=last,
                limit=page,
            )
            yield from found
            if len(found) < page:
                return
            last = found[-1]

    def transition(
        self,
        session_id: str,
        new_status: Status,
        *,
        now: datetime,
        actor: str,
        reason: str = "",
        expected: Status | None = None,
        outbox: Sequence[OutboxRequest] = (("put", {}),),
        details: dict[str, Any] | None = None,
    ) -> SessionRecord | None:
        """Compare-and-set the status; None when the session is missing or its status was
        not ``expected`` (another actor won: a check-in racing the no-show sweep).
        ``details`` join the audit entry's (how a check-in came: ``source``).

        Whether the transition is allowed is for ``rules.lifecycle`` to say; the store only
        refuses to make an inactive session active again (``ValueError``), since that would
        skip the overlap check a booking gets. The audit entry and the ``outbox`` items are
        written in the same transaction, so a crash never leaves one without the other.
        """
        with self._write(calendars=False) as db:
            row = db.execute("SELECT status FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None or (expected is not None and row[0] != str(expected)):
                return None
            self._set_status(
                db, session_id, Status(row[0]), new_status, now, actor, reason, outbox, details
            )
            updated = db.execute(f"{SESSION_SELECT} WHERE id = ?", (session_id,)).fetchone()
        return as_session(updated)

    def _set_status(
        self,
        db: Connection,
        session_id: str,
        old_status: Status,
        new_status: Status,
        now: datetime,
        actor: str,
        reason: str,
        outbox: Sequence[OutboxRequest],
        details: dict[str, Any] | None = None,
    ) -> None:
        if new_status in ACTIVE_STATUSES and old_status not in ACTIVE_STATUSES:
            raise ValueError(
                f"session {session_id} is {old_status}: it cannot become {new_status} again "
                "(book a new session instead)"
            )
        extra = ""
        if new_status == Status.IN_PROGRESS:
            extra = ", checked_in_at = :now"
        elif new_status in (Status.COMPLETED, Status.RESCHEDULED, Status.CANCELLED):
            extra = ", ended_at = :now"
        if new_status == Status.CANCELLED:
            extra += ", cancel_reason = :reason"
        db.execute(
            f"UPDATE sessions SET status = :status, updated_at = :now{extra} WHERE id = :id",  # noqa: S608
            {"status": str(new_status), "now": ts(now), "reason": reason, "id": session_id},
        )
        record_audit(
            db, now, actor, "status_changed", session_id, reason,
            {"from": str(old_status), "to": str(new_status), **(details or {})},
        )  # fmt: skip
        for action, payload in outbox:
            enqueue_item(db, now, session_id, action, payload)

    def move_session(
        self,
        session_id: str,
        start: datetime,
        end: datetime,
        *,
        now: datetime,
        actor: str,
        buffer: timedelta | None = None,
        outbox: Sequence[OutboxRequest] = (),
    ) -> SessionRecord | Conflict | None:
        """Give an active session a new time; None if it is missing or no longer active.

        With ``buffer`` the move is conditional like a booking: :class:`Conflict` when the
        new time (widened by ``buffer``) overlaps another active session or busy calendar
        time. Without it the move is recorded as is (a technician moved the event in
        their own calendar: that is what happened, and the caller re-validates). Clears
        ``needs_attention``; writes a ``moved`` audit entry and the ``outbox`` items.
        """
        if require_aware(end, "end") <= require_aware(start, "start"):
            raise ValueError(f"session {session_id} would end before it starts")
        interval = Interval(start, end)
        with self._write(calendars=False) as db:
            row = db.execute(
                "SELECT start_ts, end_ts, technician_id FROM sessions WHERE id = ? "
                "AND status IN ('booked', 'in_progress')",
                (session_id,),
            ).fetchone()
            if row is None:
                return None
            if buffer is not None:
                conflict = clash(db, row["technician_id"], interval, buffer, session_id)
                if conflict is not None:
                    return conflict
            db.execute(
                "UPDATE sessions SET start_ts = ?, end_ts = ?, updated_at = ?, "
                "needs_attention = NULL WHERE id = ?",
                (ts(start), ts_ceil(end), ts(now), session_id),
            )
            record_audit(
                db, now, actor, "moved", session_id, "",
                {"from": [row[0], row[1]], "to": [ts(start), ts_ceil(end)]},
            )  # fmt: skip
            for action, payload in outbox:
                enqueue_item(db, now, session_id, action, payload)
            updated = db.execute(f"{SESSION_SELECT} WHERE id = ?", (session_id,)).fetchone()
        return as_session(updated)

    def flag_session(
        self, session_id: str, reason: str, *, now: datetime, actor: str = "system"
    ) -> bool:
        """Mark a session for the admin's attention (kept until cleared or moved);
        False if there is no such session."""
        with self._write(calendars=False) as db:
            changed = db.execute(
                "UPDATE sessions SET needs_attention = ?, updated_at = ? WHERE id = ?",
                (reason, ts(now), session_id),
            ).rowcount
            if changed:
                record_audit(db, now, actor, "flagged", session_id, reason, {})
        return bool(changed)

    def clear_flag(self, session_id: str, *, now: datetime, actor: str, reason: str = "") -> bool:
        """The admin dealt with a flagged session; False if it was not flagged."""
        with self._write(calendars=False) as db:
            changed = db.execute(
                "UPDATE sessions SET needs_attention = NULL, updated_at = ? "
                "WHERE id = ? AND needs_attention IS NOT NULL",
                (ts(now), session_id),
            ).rowcount
            if changed:
                record_audit(db, now, actor, "flag_cleared", session_id, reason, {})
        return bool(changed)

    def flagged_sessions(self) -> list[SessionRecord]:
        rows = self._read(f"{SESSION_SELECT} WHERE needs_attention IS NOT NULL ORDER BY start_ts")
        return [as_session(r) for r in rows]

    def set_calendar_write(
        self, session_id: str, uid: str, etag: str | None, *, calendar_id: str, href: str
    ) -> None:
        """Record what the calendar holds for the session after a write: its UID, the
        ETag the server returned (for the next conditional update), and where it is (so a
        deletion naming only the href maps back to the session)."""
        with self._write(calendars=False) as db:
            record_calendar_write(db, CalendarWrite(session_id, uid, etag, calendar_id, href))

    def session_by_calendar_href(self, calendar_id: str, href: str) -> SessionRecord | None:
        """The session whose event the outbox wrote at ``href`` in ``calendar_id``."""
        rows = self._read(
            f"{SESSION_SELECT} WHERE calendar_id = ? AND calendar_href = ?", (calendar_id, href)
        )
        return as_session(rows[0]) if rows else None

    def unlisted_session_writes(self, calendar_id: str) -> dict[str, SessionRecord]:
        """``href -> session`` for the active sessions whose event was written to
        ``calendar_id`` but is not among the objects its last good sync holds: written
        since, or deleted before any sync listed it."""
        rows = self._read(
            # The statuses spelled out, as migration 0012's index of active written
            # sessions has them: every session ever written to the calendar (a desk's
            # history) stays in the older index, and this read runs on every sync.
            "SELECT id, calendar_href FROM sessions s "
            "WHERE calendar_id = ? AND calendar_href IS NOT NULL "
            "AND status IN ('booked', 'in_progress') AND NOT EXISTS ("
            "SELECT 1 FROM calendar_objects o "
            "WHERE o.calendar_id = s.calendar_id AND o.href = s.calendar_href)",
            (calendar_id,),
        )
        if not rows:
            return {}
        # One read for all of them: after a burst of bookings a sync finds hundreds written
        # since the last one, and a read each made every such sync slower than the burst.
        hrefs = {r["id"]: r["calendar_href"] for r in rows}
        sessions = self._read(
            f"{SESSION_SELECT} WHERE id IN (SELECT value FROM json_each(?))",  # noqa: S608 - constant text
            (json.dumps(sorted(hrefs)),),
        )
        return {hrefs[r["id"]]: as_session(r) for r in sessions}

    def set_calendar_etag(self, session_id: str, etag: str | None) -> None:
        with self._write(calendars=False) as db:
            db.execute("UPDATE sessions SET calendar_etag = ? WHERE id = ?", (etag, session_id))

    def sessions_due_for_noshow(self, now: datetime, *, grace: timedelta) -> list[SessionRecord]:
        """Booked sessions whose check-in deadline (``start + grace``) is before ``now``.

        A check-in at the deadline itself still counts, as in ``rules.lifecycle``.
        """
        rows = self._read(
            f"{SESSION_SELECT} WHERE status = 'booked' AND start_ts < ? ORDER BY start_ts, id",
            (ts_ceil(now - grace),),
        )
        return [as_session(r) for r in rows]

    def sessions_to_complete(self, now: datetime) -> list[SessionRecord]:
        """Sessions in progress whose end is at or before ``now``."""
        rows = self._read(
            f"{SESSION_SELECT} WHERE status = 'in_progress' AND end_ts <= ? ORDER BY start_ts, id",
            (ts(now),),
        )
        return [as_session(r) for r in rows]

    def due_sessions(
        self, *, booked_started_before: datetime, in_progress_ended_by: datetime
    ) -> list[SessionRecord]:
        """Booked sessions starting before the first bound (no-show candidates) and
        sessions in progress whose end is at or before the second (to complete)."""
        rows = self._read(
            f"{SESSION_SELECT} WHERE (status = 'booked' AND start_ts < ?) "
            "OR (status = 'in_progress' AND end_ts <= ?) ORDER BY start_ts, id",
            (ts_ceil(booked_started_before), ts(in_progress_ended_by)),
        )
        return [as_session(r) for r in rows]
