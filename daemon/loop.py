"""The running daemon: configuration → store → connectors → rules → web, driven by a loop.

The loop thread only decides *when* things happen (the ``schedule`` library) and does
cheap store work (the no-show sweep). Calendar, mail and webhook I/O runs in a thread
pool, one job per calendar at a time, so a slow or dead calendar never stalls the others
or the sweep. Every job is guarded: an exception is logged, never allowed to escape
``run_pending()`` and stop the loop.

Signals are only recorded by their handlers and acted on by the loop (gunicorn's arbiter
does the same): SIGTERM/SIGINT stop gracefully (the HTTP server finishes in-flight
requests, the pool finishes in-flight writes), SIGHUP reloads the configuration and keeps
the running one when the new file is invalid.
"""

from __future__ import annotations

import gc
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import Any

import pytz
import schedule

from daemon.clock import Clock, SystemClock
from daemon.config import Config, load_config
from daemon.errors import ExpedienteError
from daemon.leader import leadership_for
from daemon.log import queue_summary, repeat_summary
from daemon.metrics import Metrics
from daemon.outbox import LANES, FlushReport, Notifications, OutboxWorker
from daemon.refresh import Refresher
from daemon.service import Service
from daemon.signing import Signer
from daemon.store import SessionRecord, StoreUnavailable, open_store
from daemon.sync import Calendars, Opener, Syncer, SyncReport
from daemon.systemd import Notifier
from daemon.web.app import build_app
from daemon.web.http import App
from daemon.web.server import HttpServer
from daemon.whatsapp import WhatsApp

log = logging.getLogger("expediente")

SWEEP_EVERY = 1  # seconds: no-shows are marked within about a second of the deadline
OUTBOX_EVERY = 1
STATUS_EVERY = 15
DAILY_RESYNC_AT = "03:30"  # desk time: a full resync rolls the expansion window forward
AUDIT_PRUNE_AT = "03:45"  # desk time, after the resync: the audit retention
FIRST_SYNC_TIMEOUT = 120.0
# How long a calendar write waits for a gap in the requests before it goes ahead anyway
# (see SwitchableApp): a burst of bookings is answered first, and under requests without
# such a gap each outbox lane still writes one session a second.
GIVE_WAY_S = 1.0
# The gap: this long with no request being answered. A client booking in a loop leaves
# well under a millisecond between its requests, and a write (a few milliseconds of CPU)
# started in there delays its next answer; twenty idle milliseconds is a pause in the
# traffic, and comes often even at 100 requests a second arriving at random.
GIVE_WAY_GAP_S = 0.02
# The shortest pause between two looks of a wait for a gap: with no gap asked for, a
# request in flight would otherwise have it spin.
QUIET_POLL_S = 0.005

NotificationsFactory = Callable[[Config, Signer], Notifications | None]


def _leave_out_of_full_collections() -> None:
    """Collect, then leave every object alive now out of the collector's later passes.

    The daemon holds some 80,000 objects from its libraries, configuration and caches; a
    full collection walks them all (about 50 ms, holding the GIL), and under load one
    came every few seconds: a stall of every request in flight, the slots p99. Frozen,
    they are not walked again. Done after start and after each reload, unfrozen and
    collected first, so what a reload replaced is collected at the next one at the latest.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class SwitchableApp:
    """The WSGI app the server holds; a reload swaps what it delegates to.

    It also counts the requests being answered, so that background work that can wait
    gives way to them (:meth:`wait_quiet`): a calendar write is a few milliseconds of
    CPU, and under a burst of bookings the outbox's lanes took a tenth of the daemon's
    time from the clients waiting for an answer. Waiting for no request in flight was not
    enough: clients booking in a loop leave that state for a fraction of a millisecond
    between requests, the writes went ahead in there, and each delayed the next answer.
    """

    def __init__(
        self,
        app: App,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.current = app
        self._monotonic = monotonic  # a test's own clock in tests
        self._sleep = sleep  # and its own pauses
        self._answering = 0
        self._answered_at = -math.inf  # when the last request was answered
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._lock:
            self._answering += 1
        try:
            return self.current(environ, start_response)
        finally:
            with self._lock:
                self._answering -= 1
                self._answered_at = self._monotonic()

    def answers_at_once(self, method: str, path: str) -> bool:
        """The current app's :meth:`App.answers_at_once`, for the HTTP server."""
        return self.current.answers_at_once(method, path)

    def wait_quiet(self, longest: float, gap: float = 0.0) -> bool:
        """Return once no request has been answered for ``gap`` seconds (True), or after
        ``longest`` seconds of requests without such a gap (False).

        The waiter looks again when the gap could have come, not when a request ends. It
        used to be woken at the end of every request: under steady traffic (slots every
        10 ms) that was a thread switch at the moment the server writes each answer, for
        the whole second a calendar write waits. In short runs the slots p99 with
        changes was about 0.2 ms lower without it (docs/benchmarks.md)."""
        clock = self._monotonic
        end = clock() + longest
        while True:
            with self._lock:
                answering, answered_at = self._answering, self._answered_at
            now = clock()
            idle = now - answered_at
            if not answering and idle >= gap:
                return True
            if now >= end:
                return False
            # The gap cannot end before ``gap`` after an answer still to come, or before
            # what is left of it after the last one.
            self._sleep(min(end - now, max(gap if answering else gap - idle, QUIET_POLL_S)))


def default_notifications(config: Config, signer: Signer) -> Notifications | None:
    """Mail and webhooks when configured; None (log only) otherwise."""
    if config.smtp is None and not config.webhooks:
        return None
    from daemon.notify import Notifier as MailAndWebhooks

    notifications: Notifications = MailAndWebhooks(config, signer)
    return notifications


@dataclass
class Parts:
    """Everything built from one configuration; a reload builds a new set."""

    config: Config
    signer: Signer
    service: Service
    calendars: Calendars
    syncer: Syncer
    outbox: OutboxWorker
    app: App


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        opener: Opener | None = None,
        notifications: NotificationsFactory = default_notifications,
        systemd: Notifier | None = None,
        rng: random.Random | None = None,
        instance: str | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.store = open_store(config.store)
        # Every instance serves HTTP; the one leading runs the background work (leader.py).
        self.leadership = leadership_for(
            config.store.kind,
            config.store.dsn.reveal().strip() if config.store.dsn else None,
            instance,
        )
        self._took_over = False
        self.metrics = Metrics()
        self.metrics.watch_store(lambda: self.store, self.clock.now)
        self.metrics.watch_leadership(self.leadership)
        self.systemd = systemd or Notifier()
        self._opener = opener
        self._notifications = notifications
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        # Cache rebuilds after a change, off the request threads (shared across reloads).
        self.refresher = Refresher()
        # The outbox's technician lanes (daemon/outbox.py), shared across reloads.
        self.lane_pool = ThreadPoolExecutor(max_workers=LANES, thread_name_prefix="outbox-lane")
        self.parts = self._build(config)
        self.web = SwitchableApp(self.parts.app)
        self.scheduler = schedule.Scheduler()
        # Syncs and deliveries in pools of their own: calendars hanging until their timeouts
        # can fill the sync pool without holding up the outbox, and the other way round.
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sync")
        self.delivery_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self.server: HttpServer | None = None
        self._jobs: dict[str, Future[Any]] = {}
        self._jobs_lock = threading.Lock()
        self._wake = threading.Event()
        self._signals: list[int] = []
        self._stopping = False
        self._freezing = False  # run() keeps start-up objects out of full collections
        # Calendars a reload replaced, each with the jobs that were running at the time.
        self._replaced: list[tuple[list[Future[Any]], Calendars]] = []

    # ------------------------------------------------------------- wiring

    def _build(self, config: Config) -> Parts:
        signer = Signer(config.server.signing_key.reveal().encode())
        service = Service(config, self.store, self.clock, refresher=self.refresher)
        service.on_booking = self._booked
        service.wake = lambda: self._wake.set()  # (the event is made after the first build)
        service.leadership = self.leadership
        calendars = Calendars(service, self._opener)
        syncer = Syncer(service, calendars, self.metrics)
        outbox = OutboxWorker(
            service,
            calendars,
            signer,
            self.metrics,
            self._notifications(config, signer),
            rng=self._rng,
            whatsapp=WhatsApp(service, signer) if config.whatsapp else None,
            owner=self.leadership.instance,
            lanes=self.lane_pool,
            give_way=lambda: self.web.wait_quiet(GIVE_WAY_S, GIVE_WAY_GAP_S),
        )
        app = build_app(service, signer, self.metrics)
        return Parts(config, signer, service, calendars, syncer, outbox, app)

    def _booked(self, outcome: str) -> None:
        self.metrics.inc("expediente_bookings_total", outcome=outcome)
        if outcome == "booked":
            self._wake.set()  # write it to the calendar now, not at the next tick

    @property
    def config(self) -> Config:
        return self.parts.config

    @property
    def service(self) -> Service:
        return self.parts.service

    # --------------------------------------------------------------- work units

    def sync_calendar(self, calendar_id: str, *, full: bool = False) -> SyncReport:
        return self.parts.syncer.sync(calendar_id, full=full)

    def sync_all(self, *, full: bool = False) -> list[SyncReport]:
        """Every calendar at once, in the pool; waits for all of them."""
        syncer = self.parts.syncer
        futures = [self.pool.submit(syncer.sync, c.id, full=full) for c in self.config.calendars]
        done, _ = wait(futures, timeout=FIRST_SYNC_TIMEOUT)
        return [f.result() for f in futures if f in done and f.exception() is None]

    def flush(self) -> FlushReport:
        return self.parts.outbox.flush()

    def sweep(self) -> list[SessionRecord]:
        changed = self.service.sweep()
        for session in changed:
            name = (
                "expediente_noshows_total"
                if session.status == "rescheduled"
                else "expediente_completed_total"
            )
            self.metrics.inc(name)
        if changed:
            self._wake.set()
        return changed

    def prune_audit(self) -> int:
        """Delete audit entries older than ``[store] audit_retention``; how many went.
        Desk console logins past their expiry go too (the console refuses them anyway;
        this keeps a login never used again from staying in the store)."""
        now, console = self.clock.now(), self.config.console
        self.store.prune_staff_logins(
            idle_before=now - console.idle_timeout, created_before=now - console.login_lifetime
        )
        retention = self.config.store.audit_retention
        if retention is None:
            return 0
        removed = self.store.prune_audit(self.clock.now() - retention)
        if removed:
            log.info("audit: deleted %d entries older than %s", removed, retention)
        return removed

    def once(self) -> tuple[list[SyncReport], list[SessionRecord], FlushReport]:
        """One round of everything (``expediente sync --once``)."""
        reports = self.sync_all()
        changed = self.sweep()
        return reports, changed, self.flush()

    # -------------------------------------------------------------------- loop

    def _guarded(self, name: str, job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except StoreUnavailable as error:  # no traceback each second of an outage
                log.warning("job %s: %s; it runs again at its next time", name, error)
            except Exception:
                log.exception("job %s failed; it runs again at its next time", name)

        return run

    def _leading(self, job: Callable[[], object]) -> Callable[[], object]:
        """``job``, run only while this instance leads (the background work)."""

        def run() -> object:
            return job() if self.leadership.is_leader() else None

        return run

    def _leadership_changed(self, leading: bool) -> None:
        # Called from the leadership's thread: only record it and wake the loop.
        if leading:
            self._took_over = True
        self._wake.set()

    def _take_over(self) -> None:
        """Won leadership after start: catch up on what the last leader may have left
        (every calendar, the sweep, the outbox) now rather than at their next times."""
        log.info("took over the background work")
        self.metrics.inc("expediente_leadership_changes_total")
        for calendar in self.config.calendars:
            self._submit(f"sync:{calendar.id}", self._sync_job(calendar.id))
        self._guarded("sweep", self._leading(self.sweep))()
        self._submit("outbox", self.flush)

    def _submit(self, name: str, job: Callable[[], object]) -> None:
        """Run ``job`` in the pool unless its previous run is still going, and only while
        this instance leads: every job submitted here is background work."""
        if not self.leadership.is_leader():
            return
        with self._jobs_lock:
            running = self._jobs.get(name)
            if running is not None and not running.done():
                return
            if self._stopping:
                return
            pool = self.delivery_pool if name == "outbox" else self.pool
            self._jobs[name] = pool.submit(self._guarded(name, job))

    def _schedule_jobs(self) -> None:
        self.scheduler.clear()
        config = self.config
        interval = max(1, int(config.sync.interval.total_seconds()))
        count = len(config.calendars)
        for n, calendar in enumerate(config.calendars):
            job = self.scheduler.every(interval).seconds.do(
                self._submit, f"sync:{calendar.id}", self._sync_job(calendar.id)
            )
            # Spread over the interval, each calendar at a random point of a slot of its
            # own: 50 calendars every 2 s are a sync every 40 ms, not bursts of dozens in
            # the same instant (schedule keeps whole-second periods from when a job ran,
            # so jobs made together stay together) that hold up the requests meanwhile.
            # The first run comes earlier than a period from now, never later.
            job.next_run -= timedelta(seconds=interval * (1 - (n + self._rng.random()) / count))
        self.scheduler.every(OUTBOX_EVERY).seconds.do(self._submit, "outbox", self.flush)
        self.scheduler.every(SWEEP_EVERY).seconds.do(
            self._guarded("sweep", self._leading(self.sweep))
        )
        self.scheduler.every(STATUS_EVERY).seconds.do(self._guarded("status", self._status))
        zone = pytz.timezone(config.policy.timezone.key)
        self.scheduler.every().day.at(DAILY_RESYNC_AT, zone).do(
            self._guarded("daily resync", self._leading(self._daily_resync))
        )
        # In the pool: a first pruning of a large audit must not hold up the sweep.
        self.scheduler.every().day.at(AUDIT_PRUNE_AT, zone).do(
            self._submit, "audit retention", self.prune_audit
        )
        if self.systemd.watchdog_interval:
            every = max(1, int(self.systemd.watchdog_interval))
            # On the loop thread: the ping proves the loop itself is alive.
            self.scheduler.every(every).seconds.do(self.systemd.watchdog)

    def _sync_job(self, calendar_id: str, *, full: bool = False) -> Callable[[], object]:
        return lambda: self.sync_calendar(calendar_id, full=full)

    def _daily_resync(self) -> None:
        for calendar in self.config.calendars:
            self._submit(f"sync:{calendar.id}", self._sync_job(calendar.id, full=True))

    def _status(self) -> None:
        # An overload or an outage that ended is reported without waiting for another;
        # first, since the store reads below fail while the database is away.
        queue_summary.flush()
        repeat_summary.flush()
        now = self.clock.now()
        stale = self.service.stale_technicians(now)
        calendars = self.store.calendars()
        fresh = sum(1 for c in calendars if c.technician_id not in stale)
        text = (
            f"{fresh}/{len(calendars)} calendars fresh; outbox {self.store.outbox_depth()}; "
            f"{len(self.store.flagged_sessions())} flagged"
        )
        self.systemd.status(text)

    def start(self, *, serve: bool = True, port: int | None = None) -> None:
        """Serve HTTP, sync every calendar once, then tell systemd we are ready.

        ``port`` overrides the configured one (0: any free port, for tests).
        """
        if serve:
            server = self.config.server
            self.server = HttpServer(
                self.web,
                server.host,
                server.port if port is None else port,
                behind_proxy=server.behind_proxy,
                at_once=self.web.answers_at_once,
            )
            self.server.start()
            log.info("listening on %s (public URL %s)", self.server.url, server.public_url)
        self.leadership.start(self._leadership_changed)
        reports: list[SyncReport] = []
        if self.leadership.is_leader():
            self.systemd.status("first sync")
            reports = self.sync_all()
            failed = [r.calendar_id for r in reports if not r.ok]
            if failed:
                log.warning("first sync failed for %s; retrying on schedule", ", ".join(failed))
            self.sweep()
        else:
            log.info("standing by: %s leads the background work", self.leadership.leader())
        self._took_over = False
        self.parts.service.warm()
        self._submit("outbox", self.flush)
        self._submit("audit retention", self.prune_audit)  # a daemon restarted daily prunes too
        self._schedule_jobs()
        self._status()
        self.systemd.ready()
        log.info(
            "ready: technicians %d, calendars %d", len(self.config.technicians),
            len(self.config.calendars),
        )  # fmt: skip

    def loop(self) -> None:
        while not self._stopping:
            self._handle_signals()
            if self._stopping:
                break
            self.close_replaced()
            self.scheduler.run_pending()
            idle = self.scheduler.idle_seconds
            timeout = 1.0 if idle is None else min(max(idle, 0.0), 1.0)
            if self._wake.wait(timeout):
                self._wake.clear()
                if self._took_over:
                    self._took_over = False
                    self._take_over()
                self._submit("outbox", self.flush)

    def run(self) -> int:
        self.install_signal_handlers()
        self.start()
        self._freezing = True
        _leave_out_of_full_collections()
        try:
            self.loop()
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        self._stopping = True
        self.systemd.stopping()
        log.info("stopping: finishing in-flight requests and writes")
        if self.server is not None:
            self.server.stop()
        self.scheduler.clear()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.delivery_pool.shutdown(wait=True, cancel_futures=True)
        self.lane_pool.shutdown(wait=True)  # the flush above waited for its lanes
        self.refresher.close()  # before the store: its jobs read it
        self.close_replaced()
        self.parts.calendars.close()
        self.leadership.close()  # after the work in flight: another instance takes over now
        self.store.close()
        log.info("stopped")

    # ------------------------------------------------------------- signals

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._record_signal)

    def _record_signal(self, signum: int, frame: FrameType | None) -> None:
        # NO LOGGING here: just queue the signal and wake the loop.
        self._signals.append(signum)
        self._wake.set()

    def request_stop(self) -> None:
        self._signals.append(signal.SIGTERM)
        self._wake.set()

    def close_replaced(self) -> None:
        """Close the calendars of the configurations reloads replaced, once the jobs that
        were running at each reload are done (on every turn of the loop). Left open, each
        adapter's HTTP pool keeps a thread of its own, and the adapter with it, alive for
        good: every SIGHUP of a 50-technician desk left 50 threads behind."""
        keep: list[tuple[list[Future[Any]], Calendars]] = []
        for running, calendars in self._replaced:
            if all(job.done() for job in running):
                calendars.close()
            else:
                keep.append((running, calendars))
        self._replaced = keep

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP:
                self.reload()
            else:
                log.info("received %s", signal.Signals(signum).name)
                self._stopping = True

    def reload(self) -> bool:
        """Load the configuration file again; keep the running one if it is invalid."""
        self.systemd.reloading()
        path = self.config.path
        try:
            new = load_config(path)
            old = self.config.store
            if (new.store.kind, new.store.path, new.store.dsn) != (old.kind, old.path, old.dsn):
                raise ExpedienteError(
                    f"[store] changed (now {new.store.kind} {new.store.path}); restart the "
                    "service for that"
                )
            parts = self._build(new)
        except (ExpedienteError, OSError) as error:
            log.error("reload refused, the running configuration stays: %s", error)
            self.systemd.ready(status="reload refused; running configuration kept")
            return False
        if new.server.listen != self.config.server.listen:
            log.warning("[server] listen changed: it takes effect at the next restart")
        # The old set answers while the new one's busy cache is built.
        parts.service.warm()
        # Jobs of the old set may still be running: its adapters are closed once those
        # are done (close_replaced), not under them.
        replaced = self.parts.calendars
        self.parts = parts
        self.web.current = parts.app
        with self._jobs_lock:
            running = [job for job in self._jobs.values() if not job.done()]
        self._replaced.append((running, replaced))
        self._schedule_jobs()
        if self._freezing:
            _leave_out_of_full_collections()
        self.systemd.ready(status="configuration reloaded")
        log.info("configuration reloaded from %s", path)
        for calendar in new.calendars:
            self._submit(f"sync:{calendar.id}", self._sync_job(calendar.id))
        return True
