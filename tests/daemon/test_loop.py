"""The daemon's moving parts — sync, outbox, sweep, two-way sync, reload — on in-memory
calendars and a fixed clock. The same flows run against a real Radicale over real HTTP in
``tests/e2e``; here each is driven step by step, so a failure points at one step."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

import daemon.loop
from connectors.base import ObjectChange, Unavailable
from connectors.memory import MemoryCalendar
from daemon.clock import FixedClock
from daemon.config import CalendarConfig, load_config
from daemon.events import calendar_uid
from daemon.loop import OUTBOX_EVERY, Daemon, SwitchableApp
from daemon.outbox import FlushReport
from daemon.store import AUDIT_TEXT_MAX
from daemon.sync import NOTE_EVERY
from daemon.systemd import Notifier
from rules.lifecycle import CancelReason
from rules.model import Status
from tests import wsgi
from tests.daemon.desk import (
    ADMIN_TOKEN,
    SAO_PAULO,
    call,
    monday,
    record_syncs,
    write_config,
)
from tests.daemon.store_helpers import cancel_notices
from tests.factories import booking, private_event
from tests.ticks import Ticks


class Desk:
    def __init__(self, folder: Path) -> None:
        self.path = write_config(folder)
        self.clock = FixedClock(monday(7, 0))
        self.calendars: dict[str, MemoryCalendar] = {}
        self.daemon = Daemon(
            load_config(self.path),
            clock=self.clock,
            opener=self.open,
            systemd=Notifier({}),
        )
        self.app = self.daemon.web

    def open(self, config: CalendarConfig) -> MemoryCalendar:
        return self.calendars.setdefault(config.id, MemoryCalendar(SAO_PAULO, config.id))

    def calendar(self, technician: str) -> MemoryCalendar:
        for config in self.daemon.config.calendars:
            if config.technician == technician:
                return self.open(config)
        raise KeyError(technician)

    def book(self, start: str, **changes: Any) -> dict[str, Any]:
        status, _, body = call(self, "POST", "/api/v1/bookings", booking(start, **changes))
        assert status == 201, body
        return body  # type: ignore[no-any-return]

    def session_event(self, technician: str, session_id: str) -> icalendar.Event | None:
        raw = self.calendar(technician).get_raw(f"expediente-{session_id}.ics")
        if raw is None:
            return None
        return icalendar.Calendar.from_ical(raw).events[0]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    desk = Desk(tmp_path)
    desk.daemon.sync_all()
    yield desk
    desk.daemon.shutdown()


def technician_of(desk: Desk, session_id: str) -> str:
    session = desk.daemon.store.get_session(session_id)
    assert session is not None
    return session.technician_id


def test_a_flush_asked_for_while_one_runs_waits_and_delivers(desk: Desk) -> None:
    """The flush the daemon submits at start (or the loop's) may still be running when
    ``sync --once`` or a test asks for one: that flush waits for it and then delivers,
    instead of returning an empty report with the session not yet written."""
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    outbox = desk.daemon.parts.outbox
    running, done = threading.Event(), threading.Event()

    def another_flush() -> None:  # holds what a running flush holds, delivers nothing
        with outbox._lock:
            running.set()
            done.wait(30)

    other = threading.Thread(target=another_flush)
    other.start()
    assert running.wait(30)
    reports: list[FlushReport] = []
    asking = threading.Thread(target=lambda: reports.append(desk.daemon.flush()))
    asking.start()
    done.set()
    asking.join(30)
    other.join(30)
    assert reports and reports[0].delivered >= 1
    assert desk.session_event(tech, session["id"]) is not None


def test_a_booking_is_written_to_the_technicians_calendar_by_the_outbox(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    assert desk.session_event(tech, session["id"]) is None  # committed first, written after
    report = desk.daemon.flush()
    assert report.delivered >= 1
    event = desk.session_event(tech, session["id"])
    assert event is not None
    assert "Relojoaria Central" in str(event["SUMMARY"])
    assert "Maria Lima" in str(event["DESCRIPTION"])
    assert "/checkin/" in str(event["DESCRIPTION"])
    assert event.decoded("DTSTART") == monday(9)
    assert event.decoded("DTSTAMP") == desk.daemon.clock.now()  # the daemon's clock, no other
    stored = desk.daemon.store.get_session(session["id"])
    assert stored is not None and stored.calendar_etag is not None
    assert desk.daemon.store.outbox_depth() == 0


def test_a_calendar_outage_delays_the_write_and_never_loses_it(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.calendar(tech).down = Unavailable("connection refused")
    report = desk.daemon.flush()
    assert report.failed == 1  # the calendar write; the notice went its own way
    assert desk.session_event(tech, session["id"]) is None
    assert desk.daemon.store.outbox_depth() == 1
    desk.calendar(tech).down = None
    desk.daemon.flush()
    assert desk.session_event(tech, session["id"]) is None, "backing off: not due yet"
    desk.clock.advance(timedelta(minutes=5))
    desk.daemon.flush()
    assert desk.session_event(tech, session["id"]) is not None
    assert desk.daemon.store.outbox_depth() == 0
    names = [n for n in desk.calendar(tech)._objects if session["id"] in n]
    assert names == [f"expediente-{session['id']}.ics"]


def test_one_dead_calendar_does_not_hold_up_another_technicians_writes(desk: Desk) -> None:
    first = desk.book(monday(9).isoformat())
    second = desk.book(monday(9).isoformat())  # the other technician
    a, b = technician_of(desk, first["id"]), technician_of(desk, second["id"])
    assert a != b
    desk.calendar(a).down = Unavailable("timeout")
    desk.daemon.flush()
    assert desk.session_event(b, second["id"]) is not None
    assert desk.session_event(a, first["id"]) is None


class Watched:
    """Records the calendar writes in flight (per calendar and in all) around the real
    in-memory write; ``barrier`` makes each write wait for another one to be in flight."""

    def __init__(self, desk: Desk, barrier: threading.Barrier | None = None) -> None:
        self.lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.most_at_once = 0
        self.order: dict[str, list[str]] = {}
        for tech in ("ana", "bruno"):
            calendar = desk.calendar(tech)
            calendar.put_session = self.wrap(tech, calendar.put_session, barrier)  # type: ignore[method-assign]

    def wrap(self, tech: str, put: Any, barrier: threading.Barrier | None) -> Any:
        def watched(event: Any, etag: str | None = None) -> str:
            with self.lock:
                self.in_flight[tech] = self.in_flight.get(tech, 0) + 1
                self.most[tech] = max(self.most.get(tech, 0), self.in_flight[tech])
                self.most_at_once = max(self.most_at_once, sum(self.in_flight.values()))
                self.order.setdefault(tech, []).append(event.uid)
            try:
                if barrier is not None:
                    barrier.wait()
                return str(put(event, etag))
            finally:
                with self.lock:
                    self.in_flight[tech] -= 1

        return watched


def test_two_technicians_sessions_are_written_side_by_side(desk: Desk) -> None:
    first = desk.book(monday(9).isoformat())
    second = desk.book(monday(9).isoformat())  # the other technician
    assert technician_of(desk, first["id"]) != technician_of(desk, second["id"])
    # Each write waits until the other one is in flight: one after the other, the first
    # would give up after the timeout and fail.
    watched = Watched(desk, threading.Barrier(2, timeout=10))
    report = desk.daemon.flush()
    assert report.failed == 0, report.errors
    assert watched.most_at_once == 2
    assert desk.session_event(technician_of(desk, first["id"]), first["id"]) is not None
    assert desk.session_event(technician_of(desk, second["id"]), second["id"]) is not None
    assert desk.daemon.store.outbox_depth() == 0


def test_each_technicians_writes_stay_one_at_a_time_and_in_order(desk: Desk) -> None:
    booked = [desk.book(monday(hour).isoformat()) for hour in (8, 8, 9, 9, 10, 10, 11, 11)]
    watched = Watched(desk)
    report = desk.daemon.flush()
    assert report.failed == 0, report.errors
    assert watched.most == {"ana": 1, "bruno": 1}
    for tech in ("ana", "bruno"):
        mine = [calendar_uid(b["id"]) for b in booked if technician_of(desk, b["id"]) == tech]
        assert watched.order[tech] == mine
    assert desk.daemon.store.outbox_depth() == 0


class Held:
    """A request the test holds inside the daemon's app until ``release()``."""

    def __init__(self, desk: Desk) -> None:
        self.entered = threading.Event()
        self._release = threading.Event()
        inner = desk.daemon.web.current

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            if environ["PATH_INFO"] == "/healthz":
                self.entered.set()
                assert self._release.wait(30), "the test never released the request"
            return inner(environ, start_response)

        desk.daemon.web.current = app  # type: ignore[assignment]
        self.thread = threading.Thread(target=call, args=(desk, "GET", "/healthz"))
        self.thread.start()
        assert self.entered.wait(30)

    def release(self) -> None:
        self._release.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def test_calendar_writes_give_way_to_the_requests_being_answered(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    monkeypatch.setattr(daemon.loop, "GIVE_WAY_S", 30.0)
    waiting = threading.Event()
    wait_quiet = desk.daemon.web.wait_quiet

    def watched(longest: float, gap: float = 0.0) -> bool:
        waiting.set()
        return wait_quiet(longest, gap)

    monkeypatch.setattr(desk.daemon.web, "wait_quiet", watched)
    held = Held(desk)
    flush = threading.Thread(target=desk.daemon.flush)
    try:  # released even when an assertion fails, so neither thread is left waiting
        flush.start()
        assert waiting.wait(30)
        assert desk.session_event(tech, session["id"]) is None, "written while a request waited"
    finally:
        held.release()
    flush.join(30)
    assert not flush.is_alive()
    assert desk.session_event(tech, session["id"]) is not None
    assert desk.daemon.store.outbox_depth() == 0


def test_calendar_writes_go_ahead_when_requests_leave_no_gap(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = desk.book(monday(9).isoformat())
    monkeypatch.setattr(daemon.loop, "GIVE_WAY_S", 0.0)  # no gap comes within the time
    held = Held(desk)
    try:
        desk.daemon.flush()
        assert desk.session_event(technician_of(desk, session["id"]), session["id"]) is not None
    finally:
        held.release()


def answer(app: SwitchableApp) -> None:
    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        pass

    app({"PATH_INFO": "/healthz"}, start_response)


class QuietWait:
    """``app.wait_quiet(longest, gap)`` on a thread of its own, watched by the test."""

    def __init__(self, app: SwitchableApp, longest: float, gap: float) -> None:
        self.returned: list[bool] = []
        self.thread = threading.Thread(
            target=lambda: self.returned.append(app.wait_quiet(longest, gap))
        )
        self.thread.start()

    def assert_waiting(self) -> None:
        self.thread.join(0.3)  # the test's clock stands still meanwhile
        assert self.thread.is_alive() and self.returned == []

    def result(self) -> list[bool]:
        self.thread.join(30)
        return self.returned


def quiet_app(clock: Ticks, sleep: Callable[[float], None] = time.sleep) -> SwitchableApp:
    return SwitchableApp(lambda environ, start_response: [b"ok"], monotonic=clock, sleep=sleep)  # type: ignore[arg-type]


def test_a_write_waits_for_a_gap_after_the_last_answer_not_only_for_none_in_flight() -> None:
    """Clients booking in a loop leave nothing in flight for a fraction of a millisecond
    between requests; a write that took that moment delayed the next answer."""
    clock = Ticks(100.0)
    app = quiet_app(clock)
    answer(app)  # answered at 100.0: nothing in flight from now on
    clock.now = 100.01
    wait = QuietWait(app, 30.0, 0.02)
    wait.assert_waiting()  # a gap of 10 ms, never 20
    clock.now = 100.05
    assert wait.result() == [True]


def test_a_request_answered_during_the_wait_starts_the_gap_again() -> None:
    clock = Ticks(100.0)
    app = quiet_app(clock)
    answer(app)
    wait = QuietWait(app, 30.0, 0.02)
    clock.now = 100.015
    answer(app)  # 15 ms into the gap
    clock.now = 100.025  # 25 ms after the first answer, 10 ms after the second
    wait.assert_waiting()
    clock.now = 100.05
    assert wait.result() == [True]


def test_a_write_goes_ahead_when_the_requests_leave_no_gap_for_the_longest_wait() -> None:
    clock = Ticks(100.0)
    app = quiet_app(clock)
    answer(app)
    wait = QuietWait(app, 0.06, 0.02)
    for now in (100.01, 100.02, 100.03, 100.04, 100.05):  # a request answered every 10 ms
        clock.now = now
        answer(app)
    wait.assert_waiting()
    clock.now = 100.065  # the longest wait is up, 15 ms after the last answer
    assert wait.result() == [False]


def test_a_wait_for_a_gap_looks_again_when_the_gap_can_have_come() -> None:
    """Not when a request ends: woken there, the waiting write took the interpreter at the
    moment the server writes each answer."""
    clock = Ticks(100.0)
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(round(seconds, 6))
        clock.now = round(clock.now + seconds, 6)
        if len(naps) == 1:
            answer(app)  # answered at the end of the first pause: the gap starts again

    app = quiet_app(clock, nap)
    answer(app)  # at 100.0
    clock.now = 100.005
    assert app.wait_quiet(30.0, 0.02) is True
    # What was left of the gap (15 ms), then a whole gap after the answer at 100.02.
    assert naps == [0.015, 0.02]
    assert clock.now == 100.04


def test_no_show_marks_rescheduled_and_frees_the_time_in_the_calendar(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.daemon.flush()
    desk.clock.set(monday(9, 10))
    assert desk.daemon.sweep() == []  # +10:00 is still within the tolerance
    desk.clock.set(monday(9, 10) + timedelta(seconds=1))
    changed = desk.daemon.sweep()
    assert [s.id for s in changed] == [session["id"]]
    assert changed[0].status == Status.RESCHEDULED
    desk.daemon.flush()
    event = desk.session_event(tech, session["id"])
    assert event is not None
    assert str(event.get("TRANSP")) == "TRANSPARENT"
    assert desk.daemon.metrics.value("expediente_noshows_total") == 1
    audit = [e.action for e in desk.daemon.store.audit_log(session["id"])]
    assert "status_changed" in audit


def test_a_check_in_in_time_keeps_the_session(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    desk.clock.set(monday(9, 5))
    status, _, body = call(
        desk,
        "POST",
        f"/api/v1/sessions/{session['id']}/check-in",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert status == 200 and body["status"] == "in_progress"
    desk.clock.set(monday(9, 20))
    assert desk.daemon.sweep() == []
    desk.clock.set(monday(9, 30))
    assert [s.status for s in desk.daemon.sweep()] == [Status.COMPLETED]


def test_a_technician_deleting_the_event_cancels_the_session(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.daemon.flush()
    desk.daemon.sync_all()
    desk.calendar(tech).delete_raw(f"expediente-{session['id']}.ics")
    desk.daemon.sync_all()
    stored = desk.daemon.store.get_session(session["id"])
    assert stored is not None and stored.status == Status.CANCELLED
    # The cancellation does not write the event back.
    desk.daemon.flush()
    assert desk.session_event(tech, session["id"]) is None


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_an_event_deleted_before_any_sync_listed_it_cancels_its_session(
    desk: Desk, full: bool
) -> None:
    """Incremental: the deletion arrives as a bare href no sync has listed. Full (a first
    sync, an expired token): the listing just leaves it out."""
    gone = desk.book(monday(9).isoformat())
    tech = technician_of(desk, gone["id"])
    # Another session of the same technician, written too, stays as it is.
    kept = desk.book(monday(10).isoformat())
    if technician_of(desk, kept["id"]) != tech:
        kept = desk.book(monday(10).isoformat())
    assert technician_of(desk, kept["id"]) == tech
    desk.daemon.flush()
    calendar = desk.calendar(tech)
    calendar.put_raw("private.ics", private_event("p1", "20261130T170000Z", "20261130T180000Z"))
    calendar.delete_raw(f"expediente-{gone['id']}.ics")
    calendar.delete_raw("private.ics")  # an unrelated deletion, never listed either
    reports = desk.daemon.sync_all(full=full)
    assert [gone["id"]] in [r.cancelled for r in reports]
    stored = desk.daemon.store.get_session(gone["id"])
    assert stored is not None and stored.status == Status.CANCELLED
    assert stored.cancel_reason == CancelReason.TECHNICIAN_DELETED
    other = desk.daemon.store.get_session(kept["id"])
    assert other is not None and other.status == Status.BOOKED
    assert cancel_notices(desk.daemon.store, desk.clock.now()) == [gone["id"]], (
        "the client is told, as for any deletion"
    )
    # The cancellation does not write the event back.
    desk.daemon.flush()
    assert desk.session_event(tech, gone["id"]) is None
    assert desk.session_event(tech, kept["id"]) is not None


def test_unrelated_deletions_before_a_sync_change_no_session(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    calendar = desk.calendar(tech)
    calendar.put_raw("listed.ics", private_event("p1", "20261130T170000Z", "20261130T180000Z"))
    desk.daemon.flush()
    desk.daemon.sync_all()
    calendar.put_raw("never.ics", private_event("p2", "20261130T180000Z", "20261130T190000Z"))
    calendar.delete_raw("never.ics")
    calendar.delete_raw("listed.ics")
    # The other technician's calendar loses an object named like this session's event.
    other = next(t for t in ("ana", "bruno") if t != tech)
    desk.calendar(other).put_raw(f"expediente-{session['id']}.ics", private_event(
        "p3", "20261130T170000Z", "20261130T180000Z"))  # fmt: skip
    desk.calendar(other).delete_raw(f"expediente-{session['id']}.ics")
    for full in (False, True):
        reports = desk.daemon.sync_all(full=full)
        assert all(r.ok and not r.cancelled for r in reports)
    stored = desk.daemon.store.get_session(session["id"])
    assert stored is not None and stored.status == Status.BOOKED
    assert cancel_notices(desk.daemon.store, desk.clock.now()) == []


class LookupsDown(MemoryCalendar):
    """Lists fine, but reading one session event fails (a flaky server)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lookups_down = True

    def get_session(self, uid: str) -> tuple[ObjectChange, str] | None:
        if self.lookups_down:
            raise Unavailable("503 on GET")
        return super().get_session(uid)


def test_a_failed_check_of_an_unlisted_event_is_not_taken_for_a_deletion(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    try:
        for config in desk.daemon.config.calendars:
            desk.calendars[config.id] = LookupsDown(SAO_PAULO, config.id)
        desk.daemon.sync_all()
        session = desk.book(monday(9).isoformat())
        tech = technician_of(desk, session["id"])
        desk.daemon.flush()
        desk.calendar(tech).delete_raw(f"expediente-{session['id']}.ics")
        # A full listing leaves the event out; the read that would confirm it fails.
        assert all(r.ok for r in desk.daemon.sync_all(full=True))
        stored = desk.daemon.store.get_session(session["id"])
        assert stored is not None and stored.status == Status.BOOKED
        calendar = desk.calendar(tech)
        assert isinstance(calendar, LookupsDown)
        calendar.lookups_down = False
        desk.daemon.sync_all()  # incremental, nothing new listed: asked again
        stored = desk.daemon.store.get_session(session["id"])
        assert stored is not None and stored.status == Status.CANCELLED
    finally:
        desk.daemon.shutdown()


def test_a_sync_that_finds_nothing_new_leaves_the_caches_alone(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most syncs find nothing new. They note the time, which staleness is decided by, but
    give the busy-time and slot caches nothing to re-read: with 50 calendars syncing every
    2 s, every other request re-read the store, the syncs' CPU and its own, for nothing."""
    service, store = desk.daemon.service, desk.daemon.store
    service.eligible(desk.clock.now())
    service.timelines(desk.clock.now())
    reads: list[str] = []
    monkeypatch.setattr(store, "last_syncs", _counted(reads, "last_syncs", store.last_syncs))
    # The busy cache holds the store's readers it was given.
    for name in ("_versions", "_calendar_loader", "_session_loader"):
        monkeypatch.setattr(
            service.cache, name, _counted(reads, name, getattr(service.cache, name))
        )
    desk.clock.advance(timedelta(minutes=1))
    reports = desk.daemon.sync_all()
    assert reports and all(r.ok and not r.changes and not r.full for r in reports)
    assert all(c.last_sync_ok_at == desk.clock.now() for c in store.calendars())
    service.eligible(desk.clock.now())
    service.timelines(desk.clock.now())
    assert reads == []
    # A sync that brings a change is seen by the next request, as before.
    desk.calendar("ana").put_raw(
        "private.ics", private_event("p1", "20261130T140000Z", "20261130T150000Z")
    )
    desk.daemon.sync_all()
    busy = service.timelines(desk.clock.now())["ana"]
    assert not busy.is_free(monday(11), monday(11, 30))


def test_a_stale_calendar_is_fresh_again_after_a_sync_that_found_nothing_new(
    desk: Desk,
) -> None:
    everyone = {t.id for t in desk.daemon.config.technicians}
    assert desk.daemon.service.eligible(desk.clock.now()) == everyone
    desk.clock.set(monday(7, 6))  # stale_after: 5 minutes
    assert desk.daemon.service.eligible(desk.clock.now()) == set()
    reports = desk.daemon.sync_all()
    assert reports and all(r.ok and not r.changes and not r.full for r in reports)
    assert desk.daemon.service.eligible(desk.clock.now()) == everyone


def test_an_idle_sync_is_noted_now_and_then_and_no_calendar_goes_stale(desk: Desk) -> None:
    """A sync that finds nothing new writes nothing while the last one noted is recent
    (idle syncs were most of the daemon's commits), yet no calendar that keeps syncing is
    ever taken for stale."""
    store, sync = desk.daemon.store, desk.daemon.config.sync
    everyone = {t.id for t in desk.daemon.config.technicians}
    noted = {c.id: c.last_sync_ok_at for c in store.calendars()}
    versions = (store.data_version(), store.quiet_version())
    desk.clock.advance(NOTE_EVERY / 2)
    reports = desk.daemon.sync_all()
    assert reports and all(r.ok and not r.changes for r in reports)
    assert {c.id: c.last_sync_ok_at for c in store.calendars()} == noted
    assert (store.data_version(), store.quiet_version()) == versions
    desk.clock.advance(NOTE_EVERY / 2)
    desk.daemon.sync_all()
    assert all(c.last_sync_ok_at == desk.clock.now() for c in store.calendars())
    for _ in range(3 * int(sync.stale_after / sync.interval)):
        desk.clock.advance(sync.interval)
        desk.daemon.sync_all()
        assert desk.daemon.service.eligible(desk.clock.now()) == everyone


def test_a_bookings_own_event_coming_back_reads_no_busy_time_again(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync after the outbox wrote a session brings its event back. It repeats the
    session, so the technician's calendar busy time is not read again for it (5,000 rows
    at the benchmark's scale, after every booking); the session still blocks its time."""
    service = desk.daemon.service
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.daemon.flush()
    assert desk.session_event(tech, session["id"]) is not None
    service.timelines(desk.clock.now())
    reads: list[str] = []
    cache = service.cache
    monkeypatch.setattr(
        cache, "_calendar_loader", _counted(reads, "busy_pairs", cache._calendar_loader)
    )
    reports = desk.daemon.sync_all()
    assert any(r.changes for r in reports)  # the event came back
    busy = service.timelines(desk.clock.now())[tech]
    assert reads == []
    assert not busy.is_free(monday(9), monday(9, 30))
    # The technician drags it elsewhere: that is busy time to read.
    event = desk.calendar(tech).get_raw(f"expediente-{session['id']}.ics")
    assert event is not None
    moved = event.replace(b"T120000Z", b"T170000Z").replace(b"T123000Z", b"T173000Z")
    assert moved != event
    desk.calendar(tech).put_raw(f"expediente-{session['id']}.ics", moved)
    desk.daemon.sync_all()
    service.timelines(desk.clock.now())
    assert "busy_pairs" in reads


def test_a_bookings_own_event_coming_back_is_stored_as_written_without_reading_it(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync after the outbox wrote a session lists its event with the ETag the write
    got: the adapter does not read it, and the store records what the outbox wrote (the
    session's UID and time), as it would have after reading it. A technician's edit since
    (another ETag) is read and reconciled as ever."""
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.daemon.flush()
    store = desk.daemon.store
    stored = store.get_session(session["id"])
    assert stored is not None and stored.calendar_etag
    calendar_id, adapter = desk.daemon.parts.calendars.session_calendar(tech)
    href = adapter.session_href(stored.calendar_uid)
    calendar = desk.calendar(tech)
    assert adapter is calendar
    results = record_syncs(monkeypatch, calendar)
    versions = store.technician_versions()[tech]
    desk.daemon.sync_all()
    assert [(c.href, c.written) for c in results[-1].changes] == [(href, True)]
    assert store.calendar_objects(calendar_id) == {
        href: (stored.calendar_uid, stored.calendar_etag)
    }
    assert store.unlisted_session_writes(calendar_id) == {}
    assert store.technician_versions()[tech] == versions
    busy = desk.daemon.service.timelines(desk.clock.now())[tech]
    assert not busy.is_free(monday(9), monday(9, 30))
    # Moved by the technician: another ETag, read, and the session follows.
    event = calendar.get_raw(f"expediente-{session['id']}.ics")
    assert event is not None
    calendar.put_raw(
        f"expediente-{session['id']}.ics",
        event.replace(b"T120000Z", b"T170000Z").replace(b"T123000Z", b"T173000Z"),
    )
    desk.daemon.sync_all()
    assert not results[-1].changes[0].written
    moved = store.get_session(session["id"])
    assert moved is not None and moved.start == monday(14)


def _counted(reads: list[str], name: str, read: Any) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(name)
        return read(*args, **kwargs)

    return counted


def test_a_failed_fetch_is_never_taken_for_a_deletion(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.calendar(tech).put_raw(
        "private.ics", private_event("p1", "20261130T140000Z", "20261130T150000Z")
    )
    desk.daemon.flush()
    desk.daemon.sync_all()
    desk.calendar(tech).down = Unavailable("503")
    reports = desk.daemon.sync_all()
    assert not all(r.ok for r in reports)
    stored = desk.daemon.store.get_session(session["id"])
    assert stored is not None and stored.status == Status.BOOKED
    busy = desk.daemon.store.busy_pairs(tech, desk.daemon.service.cache_window(desk.clock.now()))
    assert busy, "the last good busy data is kept"
    state = next(c for c in desk.daemon.store.calendars() if c.technician_id == tech)
    assert state.consecutive_failures == 1 and "503" in (state.last_error or "")


def _move(desk: Desk, tech: str, session_id: str, start: str, end: str) -> None:
    calendar = desk.calendar(tech)
    name = f"expediente-{session_id}.ics"
    raw = calendar.get_raw(name)
    assert raw is not None
    cal = icalendar.Calendar.from_ical(raw)
    event = cal.events[0]
    event.DTSTART = datetime.strptime(start, "%Y%m%dT%H%M%S%z")
    event.DTEND = datetime.strptime(end, "%Y%m%dT%H%M%S%z")
    calendar.put_raw(name, cal.to_ical())


def test_a_technician_moving_the_event_to_a_valid_time_moves_the_session(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.daemon.flush()
    desk.daemon.sync_all()
    _move(desk, tech, session["id"], "20261130T140000Z", "20261130T143000Z")  # 11:00 local
    reports = desk.daemon.sync_all()
    assert [session["id"]] in [r.moved for r in reports]
    stored = desk.daemon.store.get_session(session["id"])
    assert stored is not None and stored.start == monday(11) and stored.needs_attention is None
    # The old time is free again, the new one taken.
    slots = desk.daemon.service.slots("standard", monday(0).date(), monday(0).date())
    counts = {s.start: len(s.technicians) for s in slots}
    assert counts[monday(9)] == 2 and counts[monday(11)] == 1


def test_a_move_outside_the_hours_flags_the_session_and_keeps_blocking(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.daemon.flush()
    desk.daemon.sync_all()
    # 12:00-12:30 local: lunch, outside the desk's hours.
    _move(desk, tech, session["id"], "20261130T150000Z", "20261130T153000Z")
    reports = desk.daemon.sync_all()
    assert [session["id"]] in [r.flagged for r in reports]
    stored = desk.daemon.store.get_session(session["id"])
    assert stored is not None and stored.status == Status.BOOKED
    assert stored.start == monday(9), "the session keeps its time until the admin decides"
    assert "outside_hours" in (stored.needs_attention or "")
    _, _, health = call(desk, "GET", "/healthz")
    assert health["sessions_needing_attention"] == 1
    # Synced again: flagged once, not once per sync.
    desk.daemon.sync_all()
    flags = [e for e in desk.daemon.store.audit_log(session["id"]) if e.action == "flagged"]
    assert len(flags) == 1
    metrics = desk.daemon.metrics.render().decode()
    assert "expediente_sessions_flagged 1.0" in metrics


def test_a_move_onto_busy_time_is_flagged_not_double_booked(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.calendar(tech).put_raw(
        "busy.ics", private_event("b1", "20261130T140000Z", "20261130T150000Z")
    )
    desk.daemon.flush()
    desk.daemon.sync_all()
    _move(desk, tech, session["id"], "20261130T140000Z", "20261130T143000Z")
    desk.daemon.sync_all()
    stored = desk.daemon.store.get_session(session["id"])
    assert stored is not None and stored.start == monday(9)
    assert "busy" in (stored.needs_attention or "")


def test_metrics_and_openapi_are_served(desk: Desk) -> None:
    desk.book(monday(9).isoformat())
    call(desk, "POST", "/api/v1/bookings", booking(monday(3).isoformat()))
    environ_call = call(desk, "GET", "/api/v1/openapi.json")
    status, _, spec = environ_call
    assert status == 200 and spec["openapi"].startswith("3.")
    assert {"/api/v1/slots", "/api/v1/bookings", "/healthz", "/metrics"} <= set(spec["paths"])
    assert desk.daemon.metrics.value("expediente_bookings_total", outcome="booked") == 1
    assert desk.daemon.metrics.value("expediente_bookings_total", outcome="rejected") == 1
    text = render(desk)
    assert 'expediente_syncs_total{calendar="ana:sessions' in text
    assert "expediente_outbox_depth 2.0" in text  # the calendar write and the notice
    assert "expediente_calendar_sync_age_seconds" in text


def render(desk: Desk) -> str:
    status, headers, body = wsgi.call(desk.app, wsgi.environ("GET", "/metrics"))
    assert status == 200
    assert dict(headers)["Content-Type"].startswith("text/plain; version=0.0.4")
    return body.decode()


def test_reload_with_a_broken_config_keeps_the_running_one(desk: Desk) -> None:
    before = desk.daemon.parts
    desk.path.write_text(desk.path.read_text().replace('horizon = "30d"', 'horizon = "soon"'))
    assert desk.daemon.reload() is False
    assert desk.daemon.parts is before
    status, _, _ = call(desk, "GET", "/api/v1/slots")
    assert status == 200


def test_reload_applies_a_valid_change(desk: Desk) -> None:
    desk.path.write_text(desk.path.read_text().replace('horizon = "30d"', 'horizon = "7d"'))
    assert desk.daemon.reload() is True
    assert desk.daemon.config.policy.horizon == timedelta(days=7)
    status, _, body = call(
        desk, "POST", "/api/v1/bookings", booking(monday(9, weeks=2).isoformat())
    )
    assert status == 422
    assert "beyond_horizon" in [v["code"] for v in body["error"]["violations"]]


class ClosingCalendar(MemoryCalendar):
    """An adapter that says when it was closed."""

    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_reload_closes_the_replaced_calendars_once_their_running_jobs_are_done(
    tmp_path: Path,
) -> None:
    opened: list[ClosingCalendar] = []

    def open_calendar(config: CalendarConfig) -> ClosingCalendar:
        opened.append(ClosingCalendar(SAO_PAULO, config.id))
        return opened[-1]

    path = write_config(tmp_path)
    daemon = Daemon(
        load_config(path), clock=FixedClock(monday(7, 0)), opener=open_calendar,
        systemd=Notifier({}),
    )  # fmt: skip
    release = threading.Event()
    try:
        daemon.sync_all()
        replaced = list(opened)
        assert replaced
        daemon._submit("a job of the old set", release.wait)  # still running at the reload
        path.write_text(path.read_text().replace('horizon = "30d"', 'horizon = "20d"'))
        assert daemon.reload() is True
        daemon.sync_all()  # the new set opens its own adapters
        daemon.close_replaced()
        assert not any(c.closed for c in replaced), "closed under a job still running"
        release.set()
        for job in list(daemon._jobs.values()):
            job.result(timeout=10)
        daemon.close_replaced()
        assert all(c.closed for c in replaced)
        assert len(opened) > len(replaced) and not any(c.closed for c in opened[len(replaced) :])
    finally:
        release.set()
        daemon.shutdown()


def test_a_reload_builds_the_busy_cache_before_the_new_service_answers(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    store_type = type(desk.daemon.store)
    real = store_type.busy_pairs

    def counting(store: Any, technician: str, window: Any) -> Any:
        reads.append(technician)
        return real(store, technician, window)

    monkeypatch.setattr(store_type, "busy_pairs", counting)
    desk.path.write_text(desk.path.read_text().replace('horizon = "30d"', 'horizon = "20d"'))
    assert desk.daemon.reload() is True
    assert sorted(reads) == sorted(t.id for t in desk.daemon.config.technicians)
    reads.clear()
    status, _, _ = call(desk, "GET", "/api/v1/slots")
    assert status == 200
    assert reads == [], "the first request after the reload read busy time itself"


def test_a_failing_job_is_logged_and_the_loop_goes_on(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("bug in a job")

    guarded = desk.daemon._guarded("test", boom)
    guarded()  # does not raise
    assert "job test failed" in caplog.text


def test_the_running_loop_marks_a_no_show_within_seconds_of_the_deadline(desk: Desk) -> None:
    import threading
    import time

    session = desk.book(monday(9).isoformat())
    desk.daemon._schedule_jobs()
    loop = threading.Thread(target=desk.daemon.loop)
    loop.start()
    try:
        desk.clock.set(monday(9, 10) + timedelta(seconds=1))
        moved_at = time.monotonic()
        while time.monotonic() - moved_at < 10:
            stored = desk.daemon.store.get_session(session["id"])
            if stored is not None and stored.status == Status.RESCHEDULED:
                break
            time.sleep(0.05)
        took = time.monotonic() - moved_at
        assert stored is not None and stored.status == Status.RESCHEDULED
        assert took < 5, f"marked {took:.1f} s after the deadline"
    finally:
        desk.daemon.request_stop()
        loop.join(10)
    assert not loop.is_alive()


def test_refused_bookings_count_too_and_what_they_leave_in_the_audit_is_bounded(
    desk: Desk,
) -> None:
    refusals = desk.daemon.config.booking.refusal_limit
    assert refusals == 30
    huge = "x" * 60_000  # under the 64 KiB body limit
    for _ in range(refusals):
        status, _, body = call(
            desk, "POST", "/api/v1/bookings", booking(monday(9).isoformat(), type=huge)
        )
        assert status == 422, body
    status, headers, body = call(
        desk, "POST", "/api/v1/bookings", booking(monday(9).isoformat(), type=huge)
    )
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert int(headers["Retry-After"]) == 3600  # the fixed clock has not moved
    # Even a booking that would be accepted waits: the address spent its attempts.
    status, _, _ = call(desk, "POST", "/api/v1/bookings", booking(monday(9).isoformat()))
    assert status == 429
    entries = desk.daemon.store.audit_log()
    assert [e.action for e in entries] == ["booking_rejected"] * refusals
    assert all(len(e.details["type"]) <= AUDIT_TEXT_MAX for e in entries)


def test_the_audit_retention_prunes_on_the_daemons_clock(desk: Desk) -> None:
    store = desk.daemon.store
    retention = desk.daemon.config.store.audit_retention
    assert retention == timedelta(days=365)
    now = desk.clock.now()
    store.audit("client", "booking_rejected", now=now - retention - timedelta(seconds=1))
    store.audit("client", "booking_rejected", now=now - retention + timedelta(days=1))
    assert desk.daemon.prune_audit() == 1
    assert len(store.audit_log()) == 1
    desk.clock.advance(timedelta(days=1, seconds=1))
    assert desk.daemon.prune_audit() == 1
    assert store.audit_log() == []
    # A daily job, run in the pool (guarded, like the syncs), and once at start.
    desk.daemon._schedule_jobs()
    jobs = [
        job
        for job in desk.daemon.scheduler.jobs
        if job.job_func is not None and "audit retention" in job.job_func.args
    ]
    assert len(jobs) == 1 and jobs[0].unit == "days"


def test_no_audit_retention_keeps_the_audit(desk: Desk) -> None:
    parts = desk.daemon.parts
    config = parts.config
    desk.daemon.parts = dataclasses.replace(
        parts,
        config=dataclasses.replace(
            config, store=dataclasses.replace(config.store, audit_retention=None)
        ),
    )
    desk.daemon.store.audit("client", "booking_rejected", now=monday(7, 0, weeks=-500))
    assert desk.daemon.prune_audit() == 0
    assert len(desk.daemon.store.audit_log()) == 1


def test_every_api_route_is_in_the_openapi_document(desk: Desk) -> None:
    _, _, spec = call(desk, "GET", "/api/v1/openapi.json")
    router = desk.daemon.parts.app.router
    for method, pattern, _ in router._routes:
        path = pattern.pattern.strip("^$").replace("(?P<id>[^/]+)", "{id}")
        if not path.startswith(("/api/", "/healthz", "/metrics")):
            continue  # pages and feeds are not part of the JSON API
        assert path in spec["paths"], path
        assert method.lower() in spec["paths"][path], (method, path)


def test_an_unreadable_session_event_is_not_taken_for_a_deletion(desk: Desk) -> None:
    session = desk.book(monday(9).isoformat())
    tech = technician_of(desk, session["id"])
    desk.daemon.flush()
    desk.daemon.sync_all()
    # The technician's app mangles the event: no longer iCalendar at all.
    desk.calendar(tech).put_raw(f"expediente-{session['id']}.ics", "BEGIN:VCALENDAR\r\ngarbage")
    # The next sync is a full one (a daily resync, an expired token): the object is
    # listed, unreadable; the session's UID is nowhere in the result.
    desk.daemon.sync_calendar(next(c.id for c in desk.daemon.config.calendars
                                   if c.technician == tech), full=True)  # fmt: skip
    stored = desk.daemon.store.get_session(session["id"])
    assert stored is not None and stored.status == Status.BOOKED


def test_api_bookings_share_the_pages_rate_limit_unless_admin(desk: Desk) -> None:
    limit = desk.daemon.config.booking.rate_limit
    assert limit == 10
    starts = [monday(h, m) for h in range(9, 17) for m in (0, 30) if h != 12]
    for start in starts[:limit]:
        desk.book(start.isoformat())
    status, headers, body = call(
        desk, "POST", "/api/v1/bookings", booking(starts[limit].isoformat())
    )
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert int(headers["Retry-After"]) > 0
    status, _, _ = call(
        desk,
        "POST",
        "/api/v1/bookings",
        booking(starts[limit].isoformat()),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert status == 201, "an integration holding the admin token is not limited"
    desk.clock.advance(timedelta(hours=1))
    desk.daemon.sync_all()  # an hour on, calendars must be fresh to book
    desk.book(starts[limit + 1].isoformat())


def test_a_moved_events_length_is_measured_in_real_time(desk: Desk) -> None:
    """01:30 EDT to 01:00 EST on the night New York's clocks go back is 30 minutes, though
    Python subtracts the two wall clocks to -30."""
    session = desk.daemon.store.get_session(desk.book(monday(9).isoformat())["id"])
    assert session is not None
    new_york = ZoneInfo("America/New_York")
    start = datetime(2026, 11, 1, 5, 30, tzinfo=UTC).astimezone(new_york)
    end = datetime(2026, 11, 1, 6, 0, tzinfo=UTC).astimezone(new_york)
    assert end - start == timedelta(minutes=-30)  # the wall-clock trap
    moved = ObjectChange(href="x.ics", uid=session.calendar_uid, etag='"2"', start=start, end=end)
    problem = desk.daemon.parts.syncer._move_problem(session, moved)
    assert problem != "the event's length was changed"
    stretched = ObjectChange(
        href="x.ics",
        uid=session.calendar_uid,
        etag='"3"',
        start=start,
        end=end + timedelta(hours=1),
    )
    assert desk.daemon.parts.syncer._move_problem(session, stretched) == (
        "the event's length was changed"
    )


def test_calendar_syncs_are_spread_over_the_interval(desk: Desk) -> None:
    """Each calendar syncs in a slot of the interval of its own, not all at one instant.

    ``schedule`` keeps its times on its own (wall) clock; the outbox job, made just after
    the syncs' with a period of ``OUTBOX_EVERY``, tells when they were made.
    """
    calendars = desk.daemon.config.calendars
    interval = desk.daemon.config.sync.interval
    desk.daemon._schedule_jobs()
    runs = {}
    made = None
    for job in desk.daemon.scheduler.jobs:
        name = job.job_func.args[0] if job.job_func is not None and job.job_func.args else ""
        if str(name).startswith("sync:"):
            runs[name] = job.next_run
        elif name == "outbox" and job.next_run is not None:
            made = job.next_run - timedelta(seconds=OUTBOX_EVERY)
    assert made is not None
    assert len(runs) == len(calendars) >= 2
    slot = interval / len(calendars)
    for n, calendar in enumerate(calendars):
        run = runs[f"sync:{calendar.id}"]
        assert run is not None
        # Its slot begins n slots after the jobs were made (a second's room for making them).
        assert made - timedelta(seconds=1) + n * slot <= run < made + (n + 1) * slot


def test_the_running_daemon_keeps_what_it_has_out_of_full_collections(desk: Desk) -> None:
    """``run()`` freezes the objects alive after start (a full collection walked them
    all, ~50 ms with the GIL held, a stall of every request); a reload collects what it
    replaced and freezes again. Set here as ``run()`` sets it: run() itself needs the
    main thread for its signal handlers."""
    import gc

    try:
        gc.unfreeze()
        desk.daemon._freezing = True
        assert desk.daemon.reload()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000
        gc.unfreeze()
        desk.daemon._freezing = False
        assert desk.daemon.reload()
        assert gc.get_freeze_count() == 0, "only the running daemon freezes"
    finally:
        gc.unfreeze()
