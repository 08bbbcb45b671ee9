"""Technicians, their calendars and each calendar's sync: what sync writes, in one piece.

The configuration says which technicians and calendars exist; the store keeps them so
sessions and cached busy time can refer to them (technicians are never deleted, sessions
name them). A sync's result is applied whole or not at all, with the calendar's new sync
state and the time of its last good sync; a failed sync only counts a failure, so the
cache is never emptied by an outage and its age says how far to trust it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from connectors.base import ObjectChange
from daemon.store.base import Connection, StoreBase, StoreError
from daemon.store.records import (
    CALENDAR_SELECT,
    SESSION_UID_PREFIX,
    CalendarState,
    as_calendar,
    dt,
    ts,
    ts_ceil,
)

# A sync's objects and busy blocks, each table in one statement over a JSON array of rows.
# The writer holds the store's write lock meanwhile, and Python's sqlite3 lets go of the
# GIL at every step of a statement: a statement per object (three per change) gave the
# other threads a few hundred chances to keep the GIL for a switch interval each. With a
# busy thread beside it, storing 60 changes took a second instead of 5 ms; in the daemon,
# eight booking clients waited 20-30 ms behind a sync that brought in their own sessions.
_INSERT_OBJECTS = (
    "INSERT INTO calendar_objects "
    "(calendar_id, href, uid, etag, start_ts, end_ts, cancelled) "
    "SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), CAST(json_extract(value, '$[3]') AS BIGINT), "
    "CAST(json_extract(value, '$[4]') AS BIGINT), CAST(json_extract(value, '$[5]') AS INTEGER) "
    "FROM json_each(?)"
)
_INSERT_BLOCKS = (
    "INSERT INTO busy_intervals (calendar_id, href, start_ts, end_ts, own_event) "
    "SELECT ?, json_extract(value, '$[0]'), CAST(json_extract(value, '$[1]') AS BIGINT), "
    "CAST(json_extract(value, '$[2]') AS BIGINT), CAST(json_extract(value, '$[3]') AS INTEGER) "
    "FROM json_each(?)"
)


class CalendarsPart(StoreBase):
    """Technicians and calendars from the configuration; sync states and calendar health."""

    def upsert_technicians(self, technicians: Sequence[tuple[str, str]]) -> None:
        """Insert or rename technicians, given as ``(id, name)`` in configuration order
        (the order is kept as ``position``). Technicians are never deleted: sessions
        refer to them."""
        with self._write(calendars=False) as db:
            self._upsert_technicians(db, technicians)

    def upsert_calendars(
        self, calendars: Sequence[tuple[str, str, str, str, str]], *, prune: bool = True
    ) -> None:
        """Insert or update calendars given as ``(id, technician_id, role, kind, address)``.

        ``role`` is ``'sessions'`` or ``'busy'``. A calendar whose kind or address changed
        starts over (sync state and cache dropped: the old token means nothing to the new
        calendar). With ``prune``, calendars not listed are removed with their cache.
        """
        with self._write() as db:
            self._upsert_calendars(db, calendars, prune=prune)

    def sync_technicians(
        self,
        technicians: Sequence[tuple[str, str]],
        calendars: Sequence[tuple[str, str, str, str, str]],
    ) -> None:
        """Make the stored technicians and calendars match the configuration, in one
        transaction (see :meth:`upsert_technicians` and :meth:`upsert_calendars`)."""
        with self._write() as db:
            self._upsert_technicians(db, technicians)
            self._upsert_calendars(db, calendars, prune=True)

    @staticmethod
    def _upsert_technicians(db: Connection, technicians: Sequence[tuple[str, str]]) -> None:
        for position, (tech_id, name) in enumerate(technicians):
            db.execute(
                "INSERT INTO technicians (id, name, position) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                "position = excluded.position",
                (tech_id, name, position),
            )

    @staticmethod
    def _upsert_calendars(
        db: Connection,
        calendars: Sequence[tuple[str, str, str, str, str]],
        *,
        prune: bool,
    ) -> None:
        if prune:
            keep = json.dumps([c[0] for c in calendars])
            db.execute(
                "DELETE FROM calendars WHERE id NOT IN (SELECT value FROM json_each(?))", (keep,)
            )
        for cal_id, tech_id, role, kind, address in calendars:
            old = db.execute(
                "SELECT kind, address FROM calendars WHERE id = ?", (cal_id,)
            ).fetchone()
            if old is not None and (old["kind"], old["address"]) != (kind, address):
                db.execute("DELETE FROM calendar_objects WHERE calendar_id = ?", (cal_id,))
                db.execute(
                    "UPDATE calendars SET sync_state = NULL, last_sync_ok_at = NULL, "
                    "last_attempt_at = NULL, last_error = NULL, consecutive_failures = 0 "
                    "WHERE id = ?",
                    (cal_id,),
                )
            db.execute(
                "INSERT INTO calendars (id, technician_id, role, kind, address) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "technician_id = excluded.technician_id, role = excluded.role, "
                "kind = excluded.kind, address = excluded.address",
                (cal_id, tech_id, role, kind, address),
            )

    def technicians(self) -> list[tuple[str, str]]:
        """``(id, name)`` of every technician ever configured, in configuration order."""
        return [
            (r[0], r[1])
            for r in self._read("SELECT id, name FROM technicians ORDER BY position, id")
        ]

    def calendars(self) -> list[CalendarState]:
        rows = self._read(f"{CALENDAR_SELECT} ORDER BY id")
        return [as_calendar(r) for r in rows]

    def last_syncs(self) -> list[tuple[str, datetime | None]]:
        """``(technician, last successful sync)`` of every calendar: what staleness is
        decided by, read on every availability request after a commit, so in one step
        (see :meth:`_read_packed`) and without the rest of :meth:`calendars`."""
        rows = self._read_packed("SELECT technician_id, last_sync_ok_at FROM calendars", 2)
        return [(row[0], dt(row[1])) for row in rows]

    def calendar(self, calendar_id: str) -> CalendarState | None:
        rows = self._read(f"{CALENDAR_SELECT} WHERE id = ?", (calendar_id,))
        return as_calendar(rows[0]) if rows else None

    @staticmethod
    def _require_calendar(db: Connection, calendar_id: str) -> None:
        if db.execute("SELECT 1 FROM calendars WHERE id = ?", (calendar_id,)).fetchone() is None:
            raise StoreError(f"unknown calendar {calendar_id!r}: configure it before syncing")

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
        upserts or deletes its object (by href). Then ``state`` becomes the calendar's
        sync state and ``now`` its last good sync. Busy blocks are rounded outwards to
        whole seconds. Raises :class:`StoreError` for an unknown calendar and
        ``ValueError`` for a naive datetime (nothing is stored then).
        """
        # The last change of an object is the one that counts (as if applied in turn).
        latest = {change.href: change for change in changes}
        objects = [
            [
                c.href,
                c.uid,
                c.etag,
                None if c.start is None else ts(c.start),
                None if c.end is None else ts_ceil(c.end),
                int(c.cancelled),
            ]
            for c in latest.values()
            if not c.deleted
        ]
        blocks = [
            [
                c.href,
                ts(b.start),
                ts_ceil(b.end),
                int(c.uid is not None and c.uid.startswith(SESSION_UID_PREFIX)),
            ]
            for c in latest.values()
            if not c.deleted
            for b in c.blocks
            if b.end > b.start
        ]
        with self._write(alone=True) as db:
            self._require_calendar(db, calendar_id)
            if full:
                db.execute("DELETE FROM calendar_objects WHERE calendar_id = ?", (calendar_id,))
            elif latest:
                # busy_intervals rows go with their object (ON DELETE CASCADE).
                db.execute(
                    "DELETE FROM calendar_objects WHERE calendar_id = ? "
                    "AND href IN (SELECT value FROM json_each(?))",
                    (calendar_id, json.dumps(list(latest))),
                )
            if objects:
                db.execute(_INSERT_OBJECTS, (calendar_id, json.dumps(objects)))
            if blocks:
                db.execute(_INSERT_BLOCKS, (calendar_id, json.dumps(blocks)))
            db.execute(
                "UPDATE calendars SET sync_state = ?, last_sync_ok_at = ?, last_attempt_at = ?, "
                "last_error = NULL, consecutive_failures = 0 WHERE id = ?",
                (state, ts(now), ts(now), calendar_id),
            )

    def record_sync_unchanged(
        self, calendar_id: str, *, since: str, state: str | None, now: datetime
    ) -> bool:
        """Note a good incremental sync from ``since`` that found no change: its new
        ``state`` and ``now`` as the last good sync, in a quiet write (see
        :meth:`StoreBase._write`). Nothing that caches of busy time and slots depend on
        has changed, so they are not sent to re-read it.

        Returns False, having written nothing, when the calendar is not as the sync
        found it (its sync state is no longer ``since``, or a failure is on record): the
        caller stores the sync with :meth:`apply_sync` then, which clears the failure.
        """
        with self._write(quiet=True) as db:
            updated = db.execute(
                "UPDATE calendars SET sync_state = ?, last_sync_ok_at = ?, last_attempt_at = ? "
                "WHERE id = ? AND sync_state = ? AND last_error IS NULL "
                "AND consecutive_failures = 0",
                (state, ts(now), ts(now), calendar_id, since),
            ).rowcount
        return updated == 1

    def record_sync_failure(self, calendar_id: str, error: str, now: datetime) -> None:
        """Note a failed sync; the cached busy data and sync state stay as they were (the
        age of ``last_sync_ok_at`` tells how much to trust them)."""
        with self._write() as db:
            self._require_calendar(db, calendar_id)
            db.execute(
                "UPDATE calendars SET last_attempt_at = ?, last_error = ?, "
                "consecutive_failures = consecutive_failures + 1 WHERE id = ?",
                (ts(now), error[:2000], calendar_id),
            )

    def reset_sync_state(self, calendar_id: str) -> None:
        """Forget the sync token so the next sync is full (the cache stays until then)."""
        with self._write() as db:
            db.execute("UPDATE calendars SET sync_state = NULL WHERE id = ?", (calendar_id,))

    def calendar_objects(
        self, calendar_id: str, hrefs: Collection[str] | None = None
    ) -> dict[str, tuple[str | None, str | None]]:
        """``href -> (uid, etag)`` of what the calendar held at its last good sync: every
        object, or those of ``hrefs`` (an incremental sync needs only the ones it names;
        reading all of a 5,000-event calendar every 2 s was most of an idle sync)."""
        if hrefs is None:
            rows = self._read(
                "SELECT href, uid, etag FROM calendar_objects WHERE calendar_id = ?",
                (calendar_id,),
            )
        elif not hrefs:
            return {}
        else:
            rows = self._read(
                "SELECT href, uid, etag FROM calendar_objects WHERE calendar_id = ? "
                "AND href IN (SELECT value FROM json_each(?))",
                (calendar_id, json.dumps(sorted(hrefs))),
            )
        return {r["href"]: (r["uid"], r["etag"]) for r in rows}
