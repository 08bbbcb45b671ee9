"""Busy time as the store knows it: the calendar busy cache and the active sessions.

A technician's time is taken by two things kept apart: busy blocks from their calendars
(``busy_intervals``, filled by sync) and their active sessions (the ``sessions`` table,
the truth). The two queries below serve both the readers that feed ``rules/`` and
:func:`clash`, the re-check a booking or a move makes in its own transaction, so the time
a slot is offered on is the time a booking is checked against. The in-memory timelines
built from these reads are ``daemon/busy.py``; :meth:`BusyPart.technician_versions`
tells it whose to rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import timedelta

from daemon.store.base import Connection, StoreBase
from daemon.store.records import Conflict, instant, span, ts, ts_ceil
from rules.intervals import Interval

# Busy blocks from the technician's calendars. Our own session events are left out when
# they say nothing the sessions table does not: the event of an inactive session (its
# time is free), and the event of an active session at the session's stored time (the
# session counts by itself). An active session's event found at *another* time — the
# technician moved it and the daemon has not reconciled yet — still blocks that time.
# ``:own`` is a session whose every event is ignored (the one being moved).
#
# Only a block marked ``own_event`` (its object's UID is a session event's, migration
# 0013) can be left out, so the thousands of others are read from the
# ``busy_intervals_by_time`` index alone; a marked one looks up its object and session.
_REPEATS_SESSION = (
    "SELECT 1 FROM calendar_objects o JOIN sessions s ON s.calendar_uid = o.uid "
    "WHERE o.calendar_id = b.calendar_id AND o.href = b.href AND ("
    "s.status NOT IN ('booked', 'in_progress') OR s.id IS :own "
    "OR (s.start_ts = o.start_ts AND s.end_ts = o.end_ts))"
)
_CALENDAR_BUSY = (
    "FROM calendars c "
    "JOIN busy_intervals b ON b.calendar_id = c.id "
    "WHERE c.technician_id = :tech AND b.start_ts < :hi AND b.end_ts > :lo "
    f"AND (b.own_event = 0 OR NOT EXISTS ({_REPEATS_SESSION}))"
)
# What :func:`clash` asks: the same blocks, limited to those that can overlap
# ``[:lo, :hi)`` from the indexes' side as well (migration 0005): a block starts no
# earlier than ``:lo`` minus its calendar's longest one.
_CALENDAR_CLASH = (  # constant text, the f-string only joins the one above
    "SELECT 1 FROM calendars c "  # noqa: S608
    "JOIN busy_intervals b ON b.calendar_id = c.id "
    "WHERE c.technician_id = :tech AND b.start_ts < :hi AND b.end_ts > :lo "
    "AND b.start_ts >= :lo - (SELECT max(m.end_ts - m.start_ts) FROM busy_intervals m "
    "WHERE m.calendar_id = c.id) "
    f"AND (b.own_event = 0 OR NOT EXISTS ({_REPEATS_SESSION})) "
    "LIMIT 1"
)
_SESSION_CLASH = (
    "SELECT id FROM sessions WHERE technician_id = :tech "
    "AND status IN ('booked', 'in_progress') AND start_ts < :hi AND end_ts > :lo "
    "AND start_ts >= :lo - (SELECT max(end_ts - start_ts) FROM sessions "
    "WHERE technician_id = :tech) "
    "AND id IS NOT :own LIMIT 1"
)
# The two below are bounded from both sides like the clash checks: with only
# ``start_ts < :hi`` to go on, the index hands over every session the technician ever had
# before the window, a desk's whole history (20,000 sessions: 7 ms for one technician's
# sessions, 9 ms for the load, read after every booking); a session that overlaps the
# window starts no earlier than ``:lo`` minus the technician's longest one.
_ACTIVE_SESSIONS = (
    "FROM sessions WHERE technician_id = :tech "
    "AND status IN ('booked', 'in_progress') AND start_ts < :hi AND end_ts > :lo "
    "AND start_ts >= :lo - (SELECT max(end_ts - start_ts) FROM sessions "
    "WHERE technician_id = :tech) "
    "AND id IS NOT :own"
)
# One row per technician, a count of 0 included (the caller drops those): a WHERE on the
# count here would have SQLite count each technician twice.
_LOAD = (
    "SELECT t.id, (SELECT count(*) FROM sessions s "
    "WHERE s.technician_id = t.id AND s.status IN ('booked', 'in_progress', 'completed') "
    "AND s.start_ts < :hi AND s.end_ts > :lo "
    "AND s.start_ts >= :lo - (SELECT max(m.end_ts - m.start_ts) FROM sessions m "
    "WHERE m.technician_id = t.id)) FROM technicians t"
)
# The same for some technicians only (``:ids``, a JSON array): those whose sessions moved
# since their count was cached (daemon/busy.py, LoadCache).
_LOAD_OF = _LOAD + " WHERE t.id IN (SELECT value FROM json_each(:ids))"  # noqa: S608


def clash(
    db: Connection,
    technician_id: str,
    interval: Interval,
    buffer: timedelta,
    own: str | None = None,
) -> Conflict | None:
    """What blocks ``interval`` widened by ``buffer`` for the technician, if anything.

    Run inside the writer's transaction: the booking or move it guards is written in the
    same ``BEGIN IMMEDIATE``, so nothing can take the time between the check and the write.
    """
    args = {
        "tech": technician_id,
        "lo": ts(interval.start - buffer),
        "hi": ts_ceil(interval.end + buffer),
        "own": own,
    }
    row = db.execute(_SESSION_CLASH, args).fetchone()
    if row is not None:
        return Conflict(f"session {row[0]}")
    if db.execute(_CALENDAR_CLASH, args).fetchone() is not None:
        return Conflict("calendar event")
    return None


class BusyPart(StoreBase):
    """Reading a technician's busy time and the desk's load."""

    def technician_versions(self) -> dict[str, tuple[int, int]]:
        """``technician -> (calendar, sessions)``: two numbers per technician, kept by
        triggers (migration 0004) for every writer in any process, that only grow. The
        first moves whenever the calendar busy time :meth:`busy_pairs` gives could have
        changed; the second whenever :meth:`session_pairs` could. A technician not listed
        has had neither."""
        rows = self._read_packed(
            "SELECT technician_id, calendar, sessions FROM technician_versions", 3
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def busy_pairs(self, technician_id: str, window: Interval) -> list[tuple[int, int]]:
        """Busy time from the technician's calendars overlapping ``window``, as epoch pairs
        in no particular order, not merged: the timeline built from them sorts anyway, and
        an ORDER BY here was half the read.

        Our own session events are left out where they only repeat a session (see
        ``_CALENDAR_BUSY``): sessions count through :meth:`session_pairs`, by their
        status in the store, so a rescheduled session frees its time at once.
        """
        lo, hi = span(window)
        return self._read_bulk(
            f"SELECT b.start_ts, b.end_ts {_CALENDAR_BUSY}",
            {"tech": technician_id, "lo": lo, "hi": hi, "own": None},
        )

    def session_pairs(
        self, technician_id: str, window: Interval, without: str | None = None
    ) -> list[tuple[int, int]]:
        """Active sessions (booked, in progress) of the technician overlapping ``window``,
        but ``without``."""
        lo, hi = span(window)
        # Packed (see _read_packed): read inline by the request after each booking of the
        # technician, and a technician can have hundreds of sessions in the window.
        rows = self._read_packed(
            f"SELECT start_ts, end_ts {_ACTIVE_SESSIONS}",
            2,
            {"tech": technician_id, "lo": lo, "hi": hi, "own": without},
        )
        return sorted((row[0], row[1]) for row in rows)

    def busy_intervals(self, technician_id: str, window: Interval) -> list[Interval]:
        """What the technician's calendars say is busy in ``window`` (the busy cache), by
        start time.

        Active sessions are not included: add :meth:`active_session_intervals`.
        """
        pairs = sorted(self.busy_pairs(technician_id, window))
        return [Interval(instant(a), instant(b)) for a, b in pairs]

    def active_session_intervals(self, technician_id: str, window: Interval) -> list[Interval]:
        """The technician's booked and in-progress sessions overlapping ``window``."""
        return [
            Interval(instant(a), instant(b)) for a, b in self.session_pairs(technician_id, window)
        ]

    def load_by_technician(
        self, window: Interval, technicians: Collection[str] | None = None
    ) -> dict[str, int]:
        """Sessions (booked, in progress, completed) per technician overlapping ``window``,
        of every technician or only of ``technicians``; those with none are absent."""
        lo, hi = span(window)
        if technicians is None:
            rows = self._read_packed(_LOAD, 2, {"lo": lo, "hi": hi})
        else:
            ids = json.dumps(sorted(technicians))
            rows = self._read_packed(_LOAD_OF, 2, {"lo": lo, "hi": hi, "ids": ids})
        return {row[0]: row[1] for row in rows if row[1]}
