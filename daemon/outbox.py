"""The outbox worker: what was committed to SQLite reaches calendars, mail and webhooks.

A booking is accepted when its row commits, together with its outbox items; this worker
delivers them afterwards, retried with capped, jittered backoff. So a calendar outage
delays a write but never loses it, and a crash (even ``kill -9``) between the commit and
the write only means the write happens after the restart. Calendar writes are idempotent
by the session's UID (a retried create compares and updates, never duplicates), so
delivering an item twice after a crash is harmless.

A calendar that fails once is skipped for the rest of the flush: its other items wait
for the next one, and other technicians' writes are not held up behind its timeouts.

In the daemon, the technicians' items are delivered side by side, each technician's in
order on a lane of its own (``lanes``): written one after the other, each calendar write
waiting on its server and each item's commit on the disk, a burst of bookings reached the
calendars a minute after it was accepted. WhatsApp messages keep one lane, in order.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from connectors.base import (
    AuthFailed,
    BadConfiguration,
    ConnectorError,
    NotFound,
    Unavailable,
)
from connectors.base import Conflict as CalendarConflict
from connectors.retry import backoff_delay
from daemon.events import session_event
from daemon.metrics import Metrics
from daemon.notify import Delivery, DeliveryFailed
from daemon.service import Service
from daemon.signing import Signer
from daemon.store import CalendarWrite, OutboxItem, SessionRecord
from daemon.sync import Calendars

if TYPE_CHECKING:
    from daemon.whatsapp import WhatsApp

log = logging.getLogger("expediente.outbox")

# Items a flush claims at a time, and for how long: another instance (after a failover)
# redelivers an item only once its claim has run out, so the claim must outlast the
# delivery of a batch (each request has its own timeout, far shorter).
CLAIM_BATCH = 20
CLAIM_LEASE = timedelta(seconds=60)
# Technicians whose items are delivered at the same time (the daemon's lane threads).
LANES = 4

BASE_DELAY = timedelta(seconds=5)
# Mail and webhooks are worth retrying for a while, not forever: a reminder a day late
# helps no one, and a receiver that refuses for a day needs a person.
MAX_NOTIFY_ATTEMPTS = 20


class Notifications(Protocol):
    """What the outbox needs of notifications (``daemon.notify.Notifier``, or the log).
    ``details`` is the ``notify`` item's payload (e.g. a move's old time)."""

    def plan(
        self,
        session: SessionRecord,
        event: str,
        now: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> Sequence[Delivery]: ...

    def deliver(self, delivery: Delivery, session: SessionRecord, now: datetime) -> None: ...


class LogNotifications:
    """The notification hook when no mail or webhook is configured: a log line per event."""

    def plan(
        self,
        session: SessionRecord,
        event: str,
        now: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> Sequence[Delivery]:
        log.info(
            "notify %s: session %s (%s, %s) %s",
            event, session.id, session.company, session.email or "no e-mail", session.start,
        )  # fmt: skip
        return ()

    def deliver(self, delivery: Delivery, session: SessionRecord, now: datetime) -> None:
        log.info("deliver %s for session %s (not configured)", delivery.action, session.id)


class Retry(Exception):
    """Try this item again soon (without counting it as a failed delivery)."""

    def __init__(self, why: str, delay: timedelta = timedelta(seconds=5)) -> None:
        super().__init__(why)
        self.delay = delay


@dataclass
class FlushReport:
    delivered: int = 0
    failed: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: FlushReport) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.deferred += other.deferred
        self.errors += other.errors


class OutboxWorker:
    def __init__(
        self,
        service: Service,
        calendars: Calendars,
        signer: Signer,
        metrics: Metrics,
        notifications: Notifications | None = None,
        *,
        rng: random.Random | None = None,
        whatsapp: WhatsApp | None = None,
        owner: str = "daemon",
        lanes: Executor | None = None,
        give_way: Callable[[], object] | None = None,
    ) -> None:
        """``give_way`` is called before each calendar write: the daemon's waits for a
        gap in the requests being answered (``daemon/loop.py``, ``SwitchableApp``), so
        the clients of a burst of bookings are answered before their sessions are
        written."""
        self.service = service
        self.owner = owner  # the instance its claims name (several share a PostgreSQL store)
        self.calendars = calendars
        self.signer = signer
        self.metrics = metrics
        self.notifications: Notifications = notifications or LogNotifications()
        self.whatsapp = whatsapp
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._lock = threading.Lock()
        self._lanes = lanes  # None: one item after the other (admin commands, tests)
        self._give_way = give_way

    def flush(self, limit: int = 200) -> FlushReport:
        """Deliver what is due; one flush at a time (the loop and ``sync --once`` share it).

        A flush asked for while another runs (the one the daemon submits at start, the
        loop's) waits for it, then delivers what is left (items it had not claimed, or
        queued since): whoever asks for a flush gets one, not an empty report.
        """
        report = FlushReport()
        self._lock.acquire()
        try:
            if self.whatsapp is not None:
                # The clients' messages first: a check-in queues its answer for this flush.
                self.whatsapp.process()
            down: dict[str, str] = {}
            store = self.service.store
            taken = 0
            while taken < limit:
                # Claimed a few at a time, so a claim never outlives its delivery.
                batch = store.claim_outbox(
                    self.service.clock.now(),
                    self.owner,
                    CLAIM_LEASE,
                    min(CLAIM_BATCH, limit - taken),
                )
                self._deliver(batch, down, report)
                taken += len(batch)
                if len(batch) < CLAIM_BATCH:
                    break
        finally:
            self._lock.release()
        return report

    def _deliver(self, batch: list[OutboxItem], down: dict[str, str], report: FlushReport) -> None:
        """Deliver ``batch``: each lane's items in order, the lanes side by side when the
        worker has lane threads. ``down`` is shared (a calendar found down on one lane is
        skipped on the others); an error that escapes a lane is raised once all are over."""
        lanes: dict[str, list[OutboxItem]] = {}
        for item in batch:
            lanes.setdefault(self._lane(item), []).append(item)
        if self._lanes is None or len(lanes) == 1:
            for item in batch:
                self._one(item, down, report)
            return

        def run(items: list[OutboxItem]) -> FlushReport:
            found = FlushReport()
            for item in items:
                self._one(item, down, found)
            return found

        futures = [self._lanes.submit(run, items) for items in lanes.values()]
        failure: BaseException | None = None
        for future in futures:
            try:
                report.add(future.result())
            except BaseException as error:  # the others still finish and are counted
                failure = failure or error
        if failure is not None:
            raise failure

    def _lane(self, item: OutboxItem) -> str:
        """Items on one lane are delivered in order: a technician's, or the WhatsApp ones."""
        if item.action == "whatsapp" or item.session_id is None:
            return "whatsapp"
        session = self.service.store.get_session(item.session_id)
        return f"technician:{session.technician_id}" if session else "whatsapp"

    def _one(self, item: OutboxItem, down: dict[str, str], report: FlushReport) -> None:
        store = self.service.store
        now = self.service.clock.now()
        session = store.get_session(item.session_id) if item.session_id else None
        # An answer to someone who has no session (the booking link) has no session.
        sessionless = item.action == "whatsapp" and item.session_id is None
        if session is None and not sessionless:
            store.outbox_give_up(item.id, "no such session", now)
            return
        if session is None or item.action == "whatsapp":
            self._deliver_whatsapp(item, session, down, report, now)
            return
        key = f"{item.action}:{session.technician_id}" if item.action == "put" else item.action
        if key in down:
            self._reschedule(item, down[key], report, count=False)
            return
        written: CalendarWrite | None = None
        try:
            if item.action == "put":
                if self._give_way is not None:
                    self._give_way()
                written = self._put(session)
            elif item.action == "notify":
                self._notify(item, session, now)
            elif item.action == "mail":
                self.notifications.deliver(Delivery("mail", item.payload), session, now)
            elif item.action == "webhook":
                self.notifications.deliver(Delivery("webhook", item.payload), session, now)
            else:
                store.outbox_give_up(item.id, f"unknown outbox action {item.action!r}", now)
                return
        except Retry as again:
            store.outbox_failed(item.id, str(again), now + again.delay)
            report.deferred += 1
            return
        except (AuthFailed, BadConfiguration) as error:
            # A person must fix the credentials or the URL; keep the write until then.
            down[key] = str(error)
            self._reschedule(item, f"{type(error).__name__}: {error}", report)
            return
        except (Unavailable, ConnectorError, OSError) as error:
            down[key] = str(error)
            retry_after = getattr(error, "retry_after", None)
            self._reschedule(item, f"{type(error).__name__}: {error}", report, retry_after)
            return
        except DeliveryFailed as error:
            self._notify_failed(item, error, report)
            return
        if item.action != "notify":
            store.outbox_done(item.id, self.service.clock.now(), written=written)
        report.delivered += 1
        self.metrics.inc("expediente_outbox_deliveries_total", action=item.action, outcome="ok")

    def _deliver_whatsapp(
        self,
        item: OutboxItem,
        session: SessionRecord | None,
        down: dict[str, str],
        report: FlushReport,
        now: datetime,
    ) -> None:
        """Send one WhatsApp item. After a transient refusal (down, slow, rate-limited) the
        other WhatsApp items wait for the next flush, as a failing calendar's writes do: a
        queue of messages must not hold the one delivery thread through their timeouts."""
        store = self.service.store
        if self.whatsapp is None:
            store.outbox_give_up(item.id, "WhatsApp is off: no [whatsapp] section", now)
            return
        if "whatsapp" in down:
            self._reschedule(item, down["whatsapp"], report, count=False)
            return
        try:
            self.whatsapp.deliver(item.payload, session, now)
        except DeliveryFailed as error:
            if not error.permanent:
                down["whatsapp"] = str(error)
            self._notify_failed(item, error, report)
            return
        store.outbox_done(item.id, self.service.clock.now())
        report.delivered += 1
        self.metrics.inc("expediente_outbox_deliveries_total", action=item.action, outcome="ok")

    def _reschedule(
        self,
        item: OutboxItem,
        error: str,
        report: FlushReport,
        retry_after: float | None = None,
        *,
        count: bool = True,
    ) -> None:
        max_delay = self.service.config.sync.max_backoff.total_seconds()
        delay = backoff_delay(
            item.attempts,
            base_delay=BASE_DELAY.total_seconds(),
            max_delay=max_delay,
            rng=self._rng,
        )
        delay = max(delay, BASE_DELAY.total_seconds() / 2, min(retry_after or 0.0, max_delay))
        next_at = self.service.clock.now() + timedelta(seconds=delay)
        self.service.store.outbox_failed(item.id, error, next_at)
        report.failed += 1
        report.errors.append(error)
        if count:
            self.metrics.inc(
                "expediente_outbox_deliveries_total", action=item.action, outcome="error"
            )
            log.warning(
                "outbox %s for session %s failed (attempt %d), next at %s: %s",
                item.action, item.session_id, item.attempts + 1, next_at.isoformat(), error,
            )  # fmt: skip

    def _notify_failed(self, item: OutboxItem, error: DeliveryFailed, report: FlushReport) -> None:
        permanent = error.permanent
        if permanent or item.attempts + 1 >= MAX_NOTIFY_ATTEMPTS:
            self.service.store.outbox_give_up(item.id, str(error), self.service.clock.now())
            self.metrics.inc(
                "expediente_outbox_deliveries_total", action=item.action, outcome="gave_up"
            )
            log.error("outbox %s for session %s given up: %s", item.action, item.session_id, error)
            report.failed += 1
            report.errors.append(str(error))
            return
        self._reschedule(item, str(error), report, error.retry_after)

    # ------------------------------------------------------------------ actions

    def _put(self, session: SessionRecord) -> CalendarWrite | None:
        """Write the session as it is now (an item queued earlier sends the latest state);
        what the calendar holds then, recorded with the item done."""
        config = self.service.config
        event = session_event(
            session,
            self.service.policy,
            public_url=config.server.public_url,
            signer=self.signer,
            language=config.desk.language,
            now=self.service.clock.now(),
        )
        calendar_id, calendar = self.calendars.session_calendar(session.technician_id)
        try:
            etag = calendar.put_session(event, session.calendar_etag)
        except NotFound as error:
            if session.active:
                # The technician deleted it; the next sync cancels the session. Writing it
                # back would undo what they did.
                raise Retry("the event was deleted in the calendar; waiting for sync") from error
            return None  # nothing to record: the event is gone, the session over anyway
        except CalendarConflict as error:
            current = calendar.get_session(event.uid)
            if current is None:
                etag = calendar.put_session(event, None)
            else:
                change, current_etag = current
                if session.active and change.start is not None and change.start != session.start:
                    raise Retry("the technician moved the event; waiting for sync") from error
                etag = calendar.put_session(event, current_etag)
        return CalendarWrite(
            session.id, event.uid, etag, calendar_id, calendar.session_href(event.uid)
        )

    def _notify(self, item: OutboxItem, session: SessionRecord, now: datetime) -> None:
        event = str(item.payload.get("event", ""))
        deliveries = [*self.notifications.plan(session, event, now, item.payload)]
        if self.whatsapp is not None:
            deliveries += self.whatsapp.plan(session, event, now)
        self.service.store.outbox_expand(
            item.id,
            [(d.action, dict(d.payload), d.not_before) for d in deliveries],
            session_id=session.id,
            now=now,
        )
