"""Calendar sync: connectors → store, and what technicians did to session events → sessions.

Each calendar syncs on its own (one dead server never stalls the others). A sync either
lands whole in the store (busy cache, sync state, last good sync time) or not at all: a
failed request is recorded as a failure and the last good busy data is kept, its age
visible in ``/healthz`` and ``/metrics``. A fetch error is never taken for a deletion.

Two-way sync (the technician's calendar is where people act):

- a session event deleted (or set to CANCELLED) by the technician cancels the session,
  even when it goes before any sync listed it: the store keeps the href the outbox wrote
  each event at, so a deletion naming only that href maps back to its session, and a
  written event that no listing names (some servers report nothing for an object
  created and deleted between two syncs) is read once to learn whether it is gone;
- a session event moved is re-validated: a valid time moves the session; an invalid one
  (outside hours, onto busy time, a changed length) flags the session for the admin and
  the event keeps blocking its new time, so nothing is silently lost or double-booked;
- any other edit (title, description, alarm) is ignored: the daemon's next write wins.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from connectors.base import ConnectorError, ObjectChange, SessionCalendar, SyncResult
from daemon.calendars import open_calendar
from daemon.config import CalendarConfig
from daemon.errors import ExpedienteError
from daemon.events import is_session_uid
from daemon.metrics import Metrics
from daemon.service import Service
from daemon.store import CalendarState, Conflict, SessionRecord, StoreError
from rules.lifecycle import CancelReason, Event, IllegalTransition, transition
from rules.model import Code, Status

log = logging.getLogger("expediente.sync")

Opener = Callable[[CalendarConfig], SessionCalendar]

# What a technician's own move may break without being flagged: the booking grid, notice
# and horizon exist for what clients may book, not for what a technician decides.
_MOVE_ALLOWED = {Code.INSUFFICIENT_NOTICE, Code.BEYOND_HORIZON}

# How long a good sync that found nothing new may go unrecorded (see _noted_lately).
NOTE_EVERY = timedelta(seconds=30)


@dataclass
class SyncReport:
    calendar_id: str
    ok: bool
    full: bool = False
    changes: int = 0
    error: str = ""
    cancelled: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)


class Calendars:
    """The adapters of the configured calendars, opened lazily and kept between syncs.

    Opening reads secrets; a calendar whose secret or settings are wrong fails its own
    syncs (reported like an outage) without stopping anyone else's.
    """

    def __init__(self, service: Service, opener: Opener | None = None) -> None:
        self.service = service
        self._opener = opener
        self._open: dict[str, SessionCalendar] = {}
        self._lock = threading.Lock()
        self._configs: tuple[object, dict[str, CalendarConfig]] = (None, {})

    def configs(self) -> Mapping[str, CalendarConfig]:
        """The calendars by id, built again only when a reload replaced the configuration
        (every sync asks, twice: 25 times a second for 50 calendars every 2 s)."""
        config = self.service.config
        built, by_id = self._configs
        if built is not config:
            by_id = {c.id: c for c in config.calendars}
            self._configs = (config, by_id)
        return by_id

    def get(self, calendar_id: str) -> SessionCalendar:
        config = self.configs().get(calendar_id)
        if config is None:
            raise KeyError(calendar_id)
        with self._lock:
            adapter = self._open.get(calendar_id)
        if adapter is not None:
            return adapter
        if self._opener is not None:
            adapter = self._opener(config)
        else:
            sync = self.service.config.sync
            adapter = open_calendar(
                config,
                self.service.policy.timezone,
                timeout=sync.timeout.total_seconds(),
            )
        with self._lock:
            return self._open.setdefault(calendar_id, adapter)

    def session_calendar(self, technician_id: str) -> tuple[str, SessionCalendar]:
        for config in self.service.config.calendars:
            if config.technician == technician_id and config.role == "sessions":
                return config.id, self.get(config.id)
        raise KeyError(f"technician {technician_id} has no session calendar")

    def close(self) -> None:
        """Close every adapter's connections (on shutdown, and for the set a reload
        replaced)."""
        with self._lock:
            adapters, self._open = list(self._open.values()), {}
        for adapter in adapters:
            close = getattr(adapter, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # closing must not stop a shutdown
                    log.debug("closing %s failed", adapter.name, exc_info=True)


def _as_written(result: SyncResult, unlisted: Mapping[str, SessionRecord]) -> SyncResult:
    """``result`` with each change the adapter reported ``written`` (listed with the ETag
    of our own write, not fetched) told in full: the session's event at the session's
    time, as the outbox wrote it. Stored and reconciled like a fetched one, it says what
    the store already holds, so it moves no version and no session."""
    if not any(change.written for change in result.changes):
        return result
    changes = []
    for change in result.changes:
        session = unlisted.get(change.href) if change.written else None
        if session is not None:
            change = ObjectChange(
                href=change.href,
                uid=session.calendar_uid,
                etag=change.etag,
                blocks=(session.interval,),
                start=session.start,
                end=session.end,
            )
        changes.append(change)
    return replace(result, changes=changes)


class Syncer:
    def __init__(self, service: Service, calendars: Calendars, metrics: Metrics) -> None:
        self.service = service
        self.calendars = calendars
        self.metrics = metrics
        # One sync per calendar at a time: a slow server must not get a second request
        # stacked on the first by the next tick.
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def sync(self, calendar_id: str, *, full: bool = False) -> SyncReport:
        with self._lock:
            if calendar_id in self._running:
                return SyncReport(calendar_id, ok=False, error="already syncing")
            self._running.add(calendar_id)
        try:
            return self._sync(calendar_id, full=full)
        finally:
            with self._lock:
                self._running.discard(calendar_id)

    def sync_all(self, *, full: bool = False) -> list[SyncReport]:
        return [self.sync(c.id, full=full) for c in self.service.config.calendars]

    def _sync(self, calendar_id: str, *, full: bool) -> SyncReport:
        config = self.calendars.configs().get(calendar_id)
        if config is None:
            return SyncReport(calendar_id, ok=False, error="not configured")
        store = self.service.store
        now = self.service.clock.now()
        found = None if full else store.calendar(calendar_id)
        state = found.sync_state if found is not None else None
        # Read before listing: a write recorded by now landed before the listing, so a
        # listing that leaves it out means it is gone, not that it came too late.
        unlisted = store.unlisted_session_writes(calendar_id) if config.role == "sessions" else {}
        # What the outbox wrote there comes back as a change on this sync: listed with the
        # ETag the server gave our write, its body is ours, and need not be fetched.
        known = {href: s.calendar_etag for href, s in unlisted.items() if s.calendar_etag}
        try:
            adapter = self.calendars.get(calendar_id)
            result = adapter.sync(state, self.service.cache_window(now), known)
        except (ConnectorError, OSError, ExpedienteError) as error:
            # ExpedienteError: a secret file that became unreadable, say.
            return self._failed(calendar_id, error)
        result = _as_written(result, unlisted)
        before: dict[str, tuple[str | None, str | None]] = {}
        if config.role == "sessions":
            # What the sync replaces: all of it after a full listing, else what it deletes.
            named = None if result.full else [c.href for c in result.changes if c.deleted]
            before = store.calendar_objects(calendar_id, named)
        now = self.service.clock.now()
        # The adapter has logged result.problems, each naming its calendar and UID.
        try:
            quiet = False
            if not result.full and not result.changes and state is not None:
                # Nothing new (most syncs): the time is noted now and then, in a quiet
                # write, so the caches of busy time and slots are not sent to re-read
                # what has not changed (_noted_lately: when nothing is written at all).
                quiet = (
                    result.state == state and self._noted_lately(found, now)
                ) or store.record_sync_unchanged(
                    calendar_id, since=state, state=result.state, now=now
                )
            if not quiet:
                store.apply_sync(
                    calendar_id, result.changes, full=result.full, state=result.state, now=now
                )
        except ValueError as error:  # data the store refuses (a naive time): keep the old
            return self._failed(calendar_id, error)
        self.metrics.inc("expediente_syncs_total", calendar=calendar_id, outcome="ok")
        report = SyncReport(calendar_id, ok=True, full=result.full, changes=len(result.changes))
        if config.role == "sessions":
            self._reconcile(calendar_id, adapter, result, before, unlisted, report)
        if result.changes or result.full:
            self._refresh(config.technician)
        log.debug(
            "%s: synced (%s, %d changes)",
            calendar_id, "full" if result.full else "incremental", len(result.changes),
        )  # fmt: skip
        return report

    def _refresh(self, technician: str) -> None:
        """The technician's busy time rebuilt before this sync ends, off the request
        threads (on the refresher, while this thread waits); what has landed stays
        landed if the rebuild cannot read the store (the next request rebuilds then)."""
        try:
            self.service.refresh_busy([technician])
        except StoreError as error:
            log.warning("%s: could not rebuild the busy-time cache: %s", technician, error)

    def _noted_lately(self, found: CalendarState | None, now: datetime) -> bool:
        """Whether a good sync that found nothing new may go unrecorded: the last one
        noted is recent and no failure is on record since.

        Idle syncs are most of a daemon's writes (50 calendars every 2 s: 25 commits a
        second, each flushed to disk, and the CPU of each taken from the requests). The
        age of the last good sync is what makes a calendar stale, so it is noted at least
        every ``NOTE_EVERY``, and more often when ``stale_after`` leaves less room: a
        calendar that keeps syncing is never seen stale. ``/healthz`` may show its age
        that much higher than the last sync's.
        """
        if found is None or found.last_sync_ok_at is None:
            return False
        if found.last_error is not None or found.consecutive_failures:
            return False
        sync = self.service.config.sync
        every = min(NOTE_EVERY, (sync.stale_after - sync.interval) / 4)
        return timedelta(0) <= now - found.last_sync_ok_at < every

    def _failed(self, calendar_id: str, error: Exception) -> SyncReport:
        message = f"{type(error).__name__}: {error}"
        self.service.store.record_sync_failure(calendar_id, message, self.service.clock.now())
        self.metrics.inc("expediente_syncs_total", calendar=calendar_id, outcome="error")
        log.warning("%s: sync failed, keeping the last good data: %s", calendar_id, message)
        return SyncReport(calendar_id, ok=False, error=message)

    # ------------------------------------------------------------- two-way sync

    def _reconcile(
        self,
        calendar_id: str,
        adapter: SessionCalendar,
        result: SyncResult,
        before: dict[str, tuple[str | None, str | None]],
        unlisted: dict[str, SessionRecord],
        report: SyncReport,
    ) -> None:
        present: dict[str, ObjectChange] = {}
        deleted: set[str] = set()  # hrefs
        listed: set[str] = set()
        gone: set[str] = set()
        for change in result.changes:
            if change.deleted:
                deleted.add(change.href)
                if change.uid:
                    gone.add(change.uid)
            else:
                listed.add(change.href)
                if change.uid and is_session_uid(change.uid):
                    present[change.uid] = change
        if result.full:
            deleted |= set(before) - listed
        store = self.service.store
        # Gone means its object is gone: an object still listed but unreadable this time
        # (no UID parsed) is not a deletion. A deletion names a bare href; its UID is the
        # one the last sync listed there or, for an event deleted before any sync listed
        # it, the session the outbox wrote there.
        for href in deleted:
            uid = before.get(href, (None, None))[0]
            if uid is None and (written := store.session_by_calendar_href(calendar_id, href)):
                uid = written.calendar_uid
            if uid:
                gone.add(uid)
        # Written before this listing, yet neither listed nor reported deleted: a server
        # may report nothing for an object created and deleted between two syncs
        # (Xandikos), and a full listing never names what is gone. A read settles it.
        for href, pending in unlisted.items():
            if href not in listed and href not in deleted and self._gone(adapter, pending):
                gone.add(pending.calendar_uid)
        # Only our own events can be sessions: a full resync of a busy calendar looks up
        # its few session events, not every object.
        gone = {uid for uid in gone if is_session_uid(uid)} - set(present)
        for uid in sorted(gone):
            session = store.session_by_calendar_uid(uid)
            if session is not None and session.active:
                self._cancel(session, CancelReason.TECHNICIAN_DELETED, report)
        for uid, change in present.items():
            session = store.session_by_calendar_uid(uid)
            if session is None or not session.active:
                continue
            if change.cancelled:
                self._cancel(session, CancelReason.TECHNICIAN_CANCELLED, report)
            elif (
                change.start is not None
                and change.end is not None
                and (change.start != session.start or change.end != session.end)
            ):
                self._moved(session, change, report)
            elif change.etag and change.etag != session.calendar_etag:
                # Another edit (title, alarm...): ignored, but the next write must be
                # conditional on what is there now, or it would fail forever.
                store.set_calendar_etag(session.id, change.etag)

    def _gone(self, adapter: SessionCalendar, session: SessionRecord) -> bool:
        """Whether the session's event is absent from the calendar; a failed read is not
        an answer (the session stays as it is and the next sync asks again)."""
        try:
            found = adapter.get_session(session.calendar_uid)
        except (ConnectorError, OSError) as error:
            log.warning(
                "%s: could not check whether session %s's event is still there: %s",
                adapter.name, session.id, error,
            )  # fmt: skip
            return False
        if found is not None:
            log.debug("%s: session %s's event exists but was not listed", adapter.name, session.id)
        return found is None

    def _cancel(self, session: SessionRecord, reason: CancelReason, report: SyncReport) -> None:
        try:
            new_status = transition(session.status, Event.CANCEL)
        except IllegalTransition:
            return
        updated = self.service.store.transition(
            session.id,
            new_status,
            now=self.service.clock.now(),
            actor="technician",
            reason=reason,
            expected=session.status,
            # The event is gone from the calendar: no write back (it would reappear).
            outbox=(("notify", {"event": "cancelled"}),),
        )
        if updated is not None:
            log.info("session %s cancelled: %s", session.id, reason)
            self.metrics.inc("expediente_two_way_total", kind="cancelled")
            report.cancelled.append(session.id)

    def _moved(self, session: SessionRecord, change: ObjectChange, report: SyncReport) -> None:
        if change.start is None or change.end is None:
            return
        store = self.service.store
        now = self.service.clock.now()
        reason = self._move_problem(session, change)
        if reason is None and session.status == Status.BOOKED:
            moved = store.move_session(
                session.id,
                change.start,
                change.end,
                now=now,
                actor="technician",
                buffer=self.service.policy.buffer,
                outbox=(
                    ("put", {}),
                    # The old time, for the mail and webhooks that say what changed.
                    (
                        "notify",
                        {
                            "event": "moved",
                            "from_start": session.start.isoformat(),
                            "from_end": session.end.isoformat(),
                        },
                    ),
                ),
            )
            if moved is None:
                return  # no longer active: nothing to move
            if isinstance(moved, Conflict):
                reason = f"moved onto busy time ({moved.reason})"
            else:
                if change.etag:
                    store.set_calendar_etag(session.id, change.etag)
                log.info("session %s moved by the technician to %s", session.id, change.start)
                self.metrics.inc("expediente_two_way_total", kind="moved")
                report.moved.append(session.id)
                return
        if reason is None:
            reason = "moved while in progress"
        if session.needs_attention == reason:
            return  # already flagged for this; don't repeat the audit every sync
        store.flag_session(session.id, reason, now=now, actor="technician")
        log.warning(
            "session %s flagged for the admin: the technician moved its event to %s: %s",
            session.id, change.start.isoformat(), reason,
        )  # fmt: skip
        self.metrics.inc("expediente_two_way_total", kind="flagged")
        report.flagged.append(session.id)

    def _move_problem(self, session: SessionRecord, change: ObjectChange) -> str | None:
        if change.start is None or change.end is None:
            return "the event has no time"
        policy = self.service.policy
        session_type = policy.session_types.get(session.type)
        if session_type is None:
            return f"unknown session type {session.type!r}"
        if (
            change.end.timestamp() - change.start.timestamp()
            != session_type.duration.total_seconds()
        ):
            return "the event's length was changed"
        violations = [
            v
            for v in self.service.time_check(session.type, change.start)
            if v.code not in _MOVE_ALLOWED and v.code != Code.INVALID_FIELD
        ]
        if violations:
            return "moved to a time the desk does not serve: " + ", ".join(
                sorted({str(v.code) for v in violations})
            )
        return None
