"""The daemon's operations, wired: configuration → store → rules, and back to the store.

Rules decide (slots, validity, technician, lifecycle); the store records atomically;
this module only gathers the inputs (busy time, load, staleness, ``now`` from the one
clock) and maps outcomes. Calendar and mail I/O never happens here: accepted changes put
work in the outbox, which the loop drains.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from daemon.busy import BusyCache, LoadCache
from daemon.clock import Clock
from daemon.config import Config
from daemon.events import calendar_uid
from daemon.leader import Leadership, SoleLeader
from daemon.refresh import Refresher
from daemon.slotcache import SlotCache
from daemon.store import (
    InProgress,
    Inserted,
    KeyReused,
    NewSession,
    Replayed,
    SessionRecord,
    Store,
    StoreError,
)
from daemon.store.records import span
from rules.booking import validate
from rules.intervals import BusyTimeline, Interval, later
from rules.lifecycle import (
    CancelReason,
    Event,
    IllegalTransition,
    check_in,
    due_event,
    transition,
)
from rules.model import Accepted, BookingRequest, Code, Policy, Rejected, Status, Violation
from rules.slots import Slot, free_counts, free_slots, slots_valid_until, time_violations

log = logging.getLogger("expediente.service")

BOOKING_ATTEMPTS = 3
# Slot queries answered ahead after a booking or a calendar change (see answer_ahead), at
# most: the booking page's and the API's few ranges asked since the last time, not every
# answer the cache keeps.
AHEAD = 4

# Turns one answer's slots, as free_counts() gives them (start, technicians free), into what
# is sent. The cache keys answers on it by identity: pass one function, not a new lambda.
Render = Callable[[Policy, str, Sequence[tuple[datetime, int]]], bytes]

# The notification (and webhook) event each new status sends.
_NOTIFY_EVENT = {
    Status.IN_PROGRESS: "checked_in",
    Status.COMPLETED: "completed",
    Status.RESCHEDULED: "rescheduled",
    Status.CANCELLED: "cancelled",
}


class SessionNotFound(LookupError):
    pass


class NotResendable(ValueError):
    """Only a booked session's confirmation is sent again: the client of any other has
    had the mail that matters (cancelled, rescheduled...)."""

    def __init__(self, status: Status) -> None:
        super().__init__(f"only a booked session's confirmation is resent; this one is {status}")
        self.status = status


@dataclass(frozen=True)
class BookingOutcome:
    """``session`` when accepted (``replayed`` for an idempotent retry), else violations."""

    session: SessionRecord | None = None
    violations: tuple[Violation, ...] = ()
    replayed: bool = False

    @property
    def codes(self) -> list[str]:
        return [str(v.code) for v in self.violations]


def request_hash(request: BookingRequest) -> str:
    """Fingerprint of what was asked, to tell an idempotent retry from a key reused."""
    fields = {
        name: getattr(request, name)
        for name in (
            "type", "company", "responsible_name", "phone", "email",
            "remote_tool", "remote_id", "description", "accept_rules",
        )
    }  # fmt: skip
    fields["start"] = request.start.timestamp()
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


_FOREVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Stale:
    """Who was stale at ``since``, true until ``until`` while the store is at ``version``
    (and, while anyone is stale, at ``quiet``)."""

    version: int
    quiet: int
    since: datetime
    until: datetime
    technicians: frozenset[str]


class Service:
    def __init__(
        self, config: Config, store: Store, clock: Clock, *, refresher: Refresher | None = None
    ) -> None:
        """``refresher``: where the caches rebuild what a change made out of date while
        requests keep the previous view (the daemon's; see ``daemon/refresh.py``). Without
        one (admin commands, most tests) the request that notices a change does the work."""
        self.config = config
        self.store = store
        self.clock = clock
        self.cache = BusyCache(
            store.busy_pairs,
            store.session_pairs,
            versions=store.technician_versions,
            data_version=store.data_version,
            refresher=refresher,
        )
        self.slot_cache = SlotCache(refresher=refresher)
        self._refresher = refresher
        # The slot queries asked since the last computation ahead (last is newest).
        self._asked: OrderedDict[Hashable, tuple[str, date, date, Render]] = OrderedDict()
        self._asked_lock = threading.Lock()
        self.load_cache = LoadCache(store.load_by_technician, self.cache.versions)
        self._stale: _Stale | None = None
        # The day's cache window, asked for on every slot listing and booking (see
        # cache_window).
        self._window: tuple[Policy, date, date, Interval] | None = None
        # Called with each booking's outcome name (booked, replayed, rejected, slot_taken).
        self.on_booking: Callable[[str], None] = lambda outcome: None
        # Called when there is outbox work to do now (a WhatsApp message to act on).
        self.wake: Callable[[], None] = lambda: None
        # Which instance runs the background work; the daemon sets it (/healthz tells).
        self.leadership: Leadership = SoleLeader()
        store.sync_technicians(
            [(t.id, t.name) for t in config.technicians],
            [(c.id, c.technician, c.role, c.kind, c.address) for c in config.calendars],
        )

    @property
    def policy(self) -> Policy:
        return self.config.policy

    # ------------------------------------------------------------ busy time

    def cache_window(self, now: datetime) -> Interval:
        """The span every availability question falls in: yesterday to past the horizon.

        Fixed for a whole day, so cached timelines serve every request of the day; the
        same object is handed out while its days are the same.
        """
        policy = self.policy
        tz = policy.timezone
        today = now.astimezone(tz).date()
        last = (now + policy.horizon).astimezone(tz).date()
        known = self._window
        if known is not None and known[0] is policy and known[1] == today and known[2] == last:
            return known[3]
        start = datetime.combine(today - timedelta(days=1), time(0), tzinfo=tz)
        end = datetime.combine(last + timedelta(days=2), time(0), tzinfo=tz)
        window = Interval(start, end)
        self._window = (policy, today, last, window)
        return window

    def timelines(
        self, now: datetime, without: SessionRecord | None = None, *, fresh: bool = False
    ) -> dict[str, BusyTimeline]:
        """Every technician's busy time; ``without`` frees one session's time (the session
        a rebooking replaces); ``fresh`` waits for a rebuild in progress rather than take
        the previous timeline (see ``daemon/busy.py``)."""
        return self.cache.timelines(
            self.policy.technician_ids,
            self.cache_window(now),
            without=None if without is None else (without.technician_id, without.id),
            fresh=fresh,
        )

    def refresh_busy(self, technicians: Iterable[str]) -> None:
        """Rebuild these technicians' busy time now; return once it is rebuilt.

        Called by a sync that changed their calendars, right after it landed: the sync's
        thread waits for the rebuild (done on the refresher when there is one, so that one
        connection reads busy time in bulk), instead of the next request finding the
        change and answering from the previous view meanwhile. So a request after a sync
        sees it, and none pays for it.
        """
        self.cache.timelines(list(technicians), self.cache_window(self.clock.now()), fresh=True)
        self.answer_ahead()

    def warm(self) -> None:
        """Build every technician's timeline now.

        Called at start and on a reload before the new service answers: its busy cache
        starts empty, and the first request after it would otherwise read and build every
        technician's busy time at once (about a second at 50 technicians x 5,000
        intervals) while the requests behind it wait. A store that fails here fails the
        first request instead; nothing is lost by going on.
        """
        try:
            self.timelines(self.clock.now())
        except StoreError as error:
            log.warning("could not build the busy-time cache ahead of requests: %s", error)

    def stale_technicians(self, now: datetime) -> set[str]:
        """Technicians whose calendar data is too old to promise their time.

        Asked on every availability request and every booking, so the answer is kept
        while it holds: until the calendars change (a sync landing moves the store's
        calendars version; a booking does not) or the next instant a calendar that is
        fresh now turns stale, whichever comes first. A sync that found nothing new only
        moves the store's quiet version: it can make a stale calendar fresh, so it counts
        while anyone is stale; otherwise it only makes a calendar fresh for longer, and
        the answer kept is still right until its ``until`` (then read again).
        """
        version = self.store.calendars_version()
        quiet = self.store.quiet_version()
        known = self._stale
        if (
            known is not None
            and known.version == version
            and (known.quiet == quiet or not known.technicians)
            and known.since <= now <= known.until
        ):
            return set(known.technicians)
        after = self.config.sync.stale_after
        limit = now - after
        synced = self.store.last_syncs()
        stale = frozenset(tech for tech, ok_at in synced if ok_at is None or ok_at < limit)
        until = min(
            (ok_at + after for _, ok_at in synced if ok_at is not None and ok_at >= limit),
            default=_FOREVER,
        )
        self._stale = _Stale(version, quiet, now, until, stale)
        return set(stale)

    def eligible(self, now: datetime) -> set[str]:
        return set(self.policy.technician_ids) - self.stale_technicians(now)

    # ------------------------------------------------------------------ slots

    def slots(
        self,
        type_name: str,
        first: date,
        last: date,
        *,
        technician: str | None = None,
        waive_notice: bool = False,
    ) -> list[Slot]:
        """Raises KeyError for an unknown type. ``technician`` and ``waive_notice``: the
        desk console's choices, as :meth:`book` takes them."""
        now = self.clock.now()
        eligible = self.eligible(now)
        if technician is not None:
            eligible &= {technician}
        return free_slots(
            self.policy, type_name, first, last, now, self.timelines(now), eligible,
            waive_notice=waive_notice,
        )  # fmt: skip

    def rendered_slots(self, type_name: str, first: date, last: date, render: Render) -> bytes:
        """``render`` of :meth:`slots` as :func:`rules.slots.free_counts` gives them (a
        count of free technicians per start), from :attr:`slot_cache` while the inputs
        that decide it are the same and :func:`rules.slots.slots_valid_until` says its
        time holds (``daemon/slotcache.py``). Raises KeyError for an unknown type.

        The query is remembered as asked, for :meth:`answer_ahead`."""
        key = (id(render), id(self.policy), type_name, first, last)
        with self._asked_lock:
            self._asked[key] = (type_name, first, last, render)
            self._asked.move_to_end(key)
            if len(self._asked) > AHEAD:
                self._asked.popitem(last=False)
        return self._rendered_slots(type_name, first, last, render)

    def _rendered_slots(self, type_name: str, first: date, last: date, render: Render) -> bytes:
        """:meth:`rendered_slots` without remembering the query: what computing ahead
        calls, which nobody asked for."""
        now = self.clock.now()
        policy = self.policy
        timelines = self.timelines(now)
        eligible = self.eligible(now)
        key = (id(render), id(policy), type_name, first, last)
        # The timelines come in the policy's order of technicians (the key names the
        # policy): their identities alone say whose busy time is which.
        inputs = (frozenset(eligible), tuple(map(id, timelines.values())))

        def compute() -> tuple[bytes, datetime]:
            counted = free_counts(policy, type_name, first, last, now, timelines, eligible)
            valid_until = slots_valid_until(policy, type_name, first, last, now)
            return render(policy, type_name, counted), valid_until

        body = self.slot_cache.answer(
            key, inputs, now, compute, (render, policy, tuple(timelines.values()))
        )
        return body

    def answers_at_once(self) -> bool:
        """Whether a slot listing would be answered now from what is in memory, without
        waiting on anything: the store is a local file and every technician's busy time is
        built and current. At most the answer itself is computed (under a millisecond at
        50 technicians x 5,000 intervals); the HTTP loop's own thread may then answer it
        (``daemon/web/server.py``). Otherwise a worker thread does, which may wait for a
        rebuild or a database server."""
        if not self.store.local:
            return False
        technicians = self.policy.technician_ids
        return self.cache.ready(technicians, self.cache_window(self.clock.now()))

    def answer_ahead(self) -> None:
        """Compute, on the refresher, the slot answers asked for since the last time this
        ran, from the busy time as it is now: called when a booking or a calendar change
        has just made them out of date.

        Otherwise the first slots request after the change finds its answer out of date
        and hands the computation to the refresher, which then holds the interpreter (a
        few milliseconds at 50 technicians) while that request is still being answered:
        one more slow request per booking, in the process that answers them all. Done
        ahead, the computation runs while the booking that caused it is being answered,
        and the next request finds its answer ready.

        Only answers someone asked for since the last computation ahead are computed: in
        a burst of bookings with nobody listing slots, recomputing after every booking
        held the interpreter the bookings needed (eight clients at 10 x 2,000: 305-339
        bookings/s with it, 375-454/s without; docs/benchmarks.md). The first listing
        after such a burst gets the answer from before it while the refresher computes
        the current one, as after any change. Without a refresher (admin commands, most
        tests), nothing is done ahead.
        """
        if self._refresher is None:
            return
        with self._asked_lock:
            if not self._asked:
                return

        def answer() -> None:
            # Taken when the job runs, not when it was queued: a job already waiting
            # takes what was asked since, and a request asking meanwhile is not lost.
            with self._asked_lock:
                asked = list(self._asked.values())
                self._asked.clear()
            for type_name, first, last, render in asked:
                # KeyError: a type a reload removed; nobody asks for it any more.
                with contextlib.suppress(KeyError):
                    self._rendered_slots(type_name, first, last, render)

        self._refresher.submit(("answer-ahead", id(self)), answer)

    # ---------------------------------------------------------------- booking

    def book(
        self,
        request: BookingRequest,
        *,
        idempotency_key: str | None = None,
        actor: str = "client",
        rebooked_from: str | None = None,
        technician: str | None = None,
        notice_override: str = "",
    ) -> BookingOutcome:
        """Validate and store a booking (or replay an idempotent retry).

        ``rebooked_from`` names the session the client is moving: while it is still booked
        its time is free for the new one and the store cancels it in the booking's own
        transaction. Raises :class:`IllegalTransition` when that session was checked in
        meanwhile. The desk console may name the ``technician`` (the only one then
        eligible) and override the minimum notice with a reason, ``notice_override``:
        the rules get it as their ``waive_notice`` input, and the reason goes into the
        booking's audit entry.
        """
        now = self.clock.now()
        fingerprint = request_hash(request)
        if idempotency_key is not None:
            previous = self.store.session_by_idempotency_key(idempotency_key)
            if previous is not None:
                if previous[1] == fingerprint:
                    self.on_booking("replayed")
                    return BookingOutcome(previous[0], replayed=True)
                return self._rejected(
                    request, now, actor,
                    (Violation(Code.INVALID_FIELD, "idempotency_key", detail="reused"),),
                )  # fmt: skip
        waive = bool(notice_override)
        audit = {"notice_override": notice_override} if waive else {}
        for attempt in range(BOOKING_ATTEMPTS):
            replaced = self._replaced(rebooked_from)
            eligible = self.eligible(now)
            if technician is not None:
                eligible &= {technician}
            # A retry follows a conflict: the view that offered the time was out of date,
            # so it waits for the current one rather than pick the same technician again.
            timelines = self.timelines(now, without=replaced, fresh=attempt > 0)
            result = validate(
                self.policy, request, now, timelines, self._load(request, now), eligible,
                waive_notice=waive,
            )  # fmt: skip
            if isinstance(result, Rejected):
                explained = self._explain(result, request, eligible, now, waive=waive)
                return self._rejected(request, now, actor, explained)
            inserted = self.store.insert_booking(
                self._new_session(result, request, rebooked_from),
                buffer=self.policy.buffer,
                now=now,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                actor=actor,
                outbox=(("put", {}), ("notify", {"event": "booked"})),
                replaced_outbox=(("put", {}), ("notify", {"event": "cancelled"})),
                audit=audit,
            )
            if isinstance(inserted, InProgress):
                raise IllegalTransition(Status.IN_PROGRESS, Event.CANCEL, "it was checked in")
            if isinstance(inserted, Inserted):
                if inserted.versions is not None:
                    self.cache.booked(
                        inserted.session.technician_id,
                        span(inserted.session.interval),
                        inserted.versions,
                    )
                self.answer_ahead()
                log.info(
                    "booked %s for %s at %s",
                    inserted.session.id, inserted.session.technician_id, inserted.session.start,
                )  # fmt: skip
                self.on_booking("booked")
                return BookingOutcome(inserted.session)
            if isinstance(inserted, Replayed):
                self.on_booking("replayed")
                return BookingOutcome(inserted.session, replayed=True)
            if isinstance(inserted, KeyReused):
                return self._rejected(
                    request, now, actor,
                    (Violation(Code.INVALID_FIELD, "idempotency_key", detail="reused"),),
                )  # fmt: skip
            # A Conflict: someone else took that technician's time between our read and our write;
            # read again: another technician may still be free.
        return self._rejected(request, now, actor, (Violation(Code.SLOT_TAKEN, "start"),))

    def _replaced(self, rebooked_from: str | None) -> SessionRecord | None:
        """The session a rebooking moves, while it still holds its time."""
        if rebooked_from is None:
            return None
        old = self.store.get_session(rebooked_from)
        return old if old is not None and old.status == Status.BOOKED else None

    def _load(self, request: BookingRequest, now: datetime) -> dict[str, int]:
        """Sessions per technician in the desk-local week of the requested start."""
        tz = self.policy.timezone
        day = request.start.astimezone(tz).date()
        monday = day - timedelta(days=day.weekday())
        start = datetime.combine(monday, time(0), tzinfo=tz)
        week = Interval(start, start + timedelta(days=7))
        return self.load_cache.load(week, self.policy.technician_ids)

    def _explain(
        self,
        rejected: Rejected,
        request: BookingRequest,
        eligible: Collection[str],
        now: datetime,
        *,
        waive: bool = False,
    ) -> tuple[Violation, ...]:
        """Say ``slot_taken`` when only bookings (not calendars) fill the time, and
        ``calendar_stale`` when only technicians whose calendars are out of date are free.

        The slot was offered and someone booked it first: a 409 the page can answer with
        fresh slots, rather than a rule the client broke. A stale calendar is a moment's
        outage on our side: the client should try again, not pick another time.
        """
        if rejected.codes != [Code.NO_TECHNICIAN_AVAILABLE]:
            return rejected.violations
        stale = self.stale_technicians(now)
        if stale:
            everyone = set(eligible) | stale
            retry = validate(
                self.policy, request, now, self.timelines(now), self._load(request, now),
                everyone, waive_notice=waive,
            )  # fmt: skip
            if isinstance(retry, Accepted):
                return (Violation(Code.CALENDAR_STALE, "start"),)
        session_type = self.policy.session_types[request.type]
        end = later(request.start, session_type.duration)
        window = Interval(request.start - self.policy.buffer, end + self.policy.buffer)
        if any(not self.store.busy_pairs(tech, window) for tech in eligible):
            return (Violation(Code.SLOT_TAKEN, "start"),)
        return rejected.violations

    def _rejected(
        self,
        request: BookingRequest,
        now: datetime,
        actor: str,
        violations: tuple[Violation, ...],
    ) -> BookingOutcome:
        taken = any(v.code == Code.SLOT_TAKEN for v in violations)
        self.on_booking("slot_taken" if taken else "rejected")
        self.store.audit(
            actor,
            "booking_rejected",
            now=now,
            reason=",".join(str(v.code) for v in violations),
            details={"type": request.type, "start": request.start.isoformat()},
        )
        return BookingOutcome(violations=violations)

    def _new_session(
        self, accepted: Accepted, request: BookingRequest, rebooked_from: str | None
    ) -> NewSession:
        session_id = uuid.uuid4().hex
        fields = accepted.fields
        return NewSession(
            id=session_id,
            type=accepted.type,
            start=accepted.start,
            end=accepted.end,
            technician_id=accepted.technician_id,
            company=fields["company"],
            responsible_name=fields["responsible_name"],
            phone=fields["phone"],
            email=fields["email"],
            remote_tool=fields["remote_tool"],
            remote_id=fields["remote_id"],
            description=fields["description"],
            language=request.language,
            rules_version=self.policy.rules_version,
            calendar_uid=calendar_uid(session_id),
            rebooked_from=rebooked_from,
        )

    # -------------------------------------------------------------- lifecycle

    def get(self, session_id: str) -> SessionRecord:
        session = self.store.get_session(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        return session

    def check_in(self, session_id: str, *, actor: str, source: str = "") -> SessionRecord:
        """Mark the session in progress; raises IllegalTransition (too early/late, final).
        ``source`` says how, in the audit (``whatsapp``: the client's message)."""
        session = self.get(session_id)
        now = self.clock.now()
        new_status = check_in(self.policy, session.status, session.start, now)
        return self._apply(session, new_status, now, actor, "checked in", source)

    def cancel(self, session_id: str, *, actor: str, reason: str = "") -> SessionRecord:
        """Cancel; ``reason`` is a :class:`CancelReason` code or a person's words (shown
        to the client), by default :attr:`CancelReason.DESK`."""
        session = self.get(session_id)
        new_status = transition(session.status, Event.CANCEL)
        return self._apply(
            session, new_status, self.clock.now(), actor, reason or CancelReason.DESK
        )

    def complete(self, session_id: str, *, actor: str) -> SessionRecord:
        """Mark an in-progress session completed before its end (the sweep does it at the
        end); raises IllegalTransition for any other status."""
        session = self.get(session_id)
        new_status = transition(session.status, Event.COMPLETE)
        return self._apply(session, new_status, self.clock.now(), actor, "completed by the desk")

    def resend_confirmation(self, session_id: str, *, actor: str) -> SessionRecord:
        """Send a booked session's confirmation to the client again and rewrite its
        calendar event (both idempotent); raises :class:`NotResendable` unless booked."""
        session = self.get(session_id)
        if session.status != Status.BOOKED:
            raise NotResendable(session.status)
        self.store.enqueue_audited(
            session.id,
            (("put", {}), ("notify", {"event": "resend"})),
            now=self.clock.now(),
            actor=actor,
            action="confirmation_resent",
        )
        return session

    def _apply(
        self,
        session: SessionRecord,
        new_status: Status,
        now: datetime,
        actor: str,
        reason: str,
        source: str = "",
    ) -> SessionRecord:
        updated = self.store.transition(
            session.id,
            new_status,
            now=now,
            actor=actor,
            reason=reason,
            expected=session.status,
            outbox=(("put", {}), ("notify", {"event": _NOTIFY_EVENT[new_status]})),
            details={"source": source} if source else None,
        )
        if updated is None:  # another actor changed it first: report what it is now
            current = self.get(session.id)
            raise IllegalTransition(current.status, Event.CHECK_IN, f"it is {current.status} now")
        return updated

    def sweep(self) -> list[SessionRecord]:
        """Apply due no-shows (R5) and completions; returns the sessions changed."""
        now = self.clock.now()
        changed = []
        for session in self.store.due_sessions(
            booked_started_before=now - self.policy.grace, in_progress_ended_by=now
        ):
            event = due_event(self.policy, session.status, session.start, session.end, now)
            if event is None:
                continue
            new_status = transition(session.status, event)
            reason = "no check-in within the tolerance" if event == Event.NO_SHOW else "ended"
            outbox: list[tuple[str, dict[str, Any]]] = [
                ("put", {}),
                ("notify", {"event": _NOTIFY_EVENT[new_status]}),
            ]
            updated = self.store.transition(
                session.id, new_status, now=now, actor="system", reason=reason,
                expected=session.status, outbox=outbox,
            )  # fmt: skip
            if updated is not None:
                log.info("session %s %s: %s", session.id, new_status, reason)
                changed.append(updated)
        return changed

    def time_check(self, type_name: str, start: datetime) -> list[Violation]:
        """Whether a start time is bookable, ignoring who is free (for moved events)."""
        return time_violations(
            self.policy, self.policy.session_types[type_name], start, self.clock.now()
        )
