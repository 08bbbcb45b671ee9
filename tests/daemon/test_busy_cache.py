"""The busy cache rebuilds only the technicians whose busy time changed, once per change.

Loader calls are counted: a change in Ana's calendar, or a booking for her, must cost
Ana's rebuild and nobody else's, whoever wrote it (the daemon, the CLI). Concurrent
requests share one rebuild: while it runs they get the previous timeline, or wait for it
when there is none. Threads are held with events, never timed.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ObjectChange
from daemon.busy import LOAD_WEEKS, BusyCache, LoadCache
from daemon.cli import main
from daemon.refresh import Refresher
from rules.intervals import BusyTimeline, Interval
from rules.model import Status
from tests.daemon.desk import Desk, call, make_desk, monday
from tests.factories import booking, booking_request

WAIT = 30  # seconds a test thread may take before the test fails (never reached when right)

pairs = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(1, 100)).map(lambda p: (p[0], p[0] + p[1])),
    max_size=30,
)


@given(base=pairs, extra=pairs)
def test_with_pairs_is_the_timeline_of_everything(
    base: list[tuple[int, int]], extra: list[tuple[int, int]]
) -> None:
    combined = BusyTimeline.from_timestamps(base).with_pairs(extra)
    expected = BusyTimeline.from_timestamps([*base, *extra])
    assert combined.intervals == expected.intervals


# ------------------------------------------------------------ which technicians


class Reads:
    """Counts the cache's loader calls per technician on a test desk."""

    def __init__(self, desk: Desk) -> None:
        self.calendar: list[str] = []
        self.sessions: list[str] = []
        cache = desk.service.cache
        calendar_loader, session_loader = cache._calendar_loader, cache._session_loader

        def calendar(tech: str, window: Interval) -> Sequence[tuple[float, float]]:
            self.calendar.append(tech)
            return calendar_loader(tech, window)

        def sessions(tech: str, window: Interval, without: str | None) -> Any:
            self.sessions.append(tech)
            return session_loader(tech, window, without)

        cache._calendar_loader, cache._session_loader = calendar, sessions

    def clear(self) -> None:
        self.calendar.clear()
        self.sessions.clear()


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return make_desk(tmp_path, monday(7))


def free_at(desk: Desk, hour: int) -> int:
    """How many technicians the daemon offers for a slot at ``hour`` on Monday."""
    slots = desk.service.slots("standard", monday(0).date(), monday(0).date())
    return {s.start: len(s.technicians) for s in slots}.get(monday(hour), 0)


def test_a_calendar_change_rebuilds_that_technician_only(desk: Desk) -> None:
    reads = Reads(desk)
    assert free_at(desk, 11) == 2
    assert sorted(reads.calendar) == sorted(reads.sessions) == ["ana", "bruno"]
    reads.clear()
    assert free_at(desk, 11) == 2
    assert reads.calendar == reads.sessions == [], "nothing changed: nothing re-read"

    ana = next(c for c in desk.config.calendars if c.technician == "ana")
    block = Interval(monday(11), monday(11) + timedelta(hours=1))
    desk.store.apply_sync(
        ana.id,
        [ObjectChange(href="x.ics", uid="x", etag='"1"', blocks=(block,))],
        full=False,
        state=None,
        now=monday(7),
    )
    assert free_at(desk, 11) == 1
    assert reads.calendar == reads.sessions == ["ana"]


def test_a_change_that_moves_no_busy_time_keeps_the_timeline_and_the_slots_answers(
    desk: Desk,
) -> None:
    """A booking's own event coming back from the calendar, or an event edited in its
    title, is re-read, but leaves the busy time as it was: the same timeline object is
    handed out again, so the slot answers cached on it (named by identity) still hold
    and are not computed again."""
    ana = next(c for c in desk.config.calendars if c.technician == "ana")
    block = Interval(monday(11), monday(11, 30))

    def store(etag: str, *blocks: Interval) -> None:
        change = ObjectChange(href="x.ics", uid="x", etag=etag, blocks=blocks)
        desk.store.apply_sync(ana.id, [change], full=False, state=None, now=monday(7))

    computed: list[str] = []

    def render(policy: Any, type_name: str, slots: Any) -> bytes:
        computed.append(type_name)
        return repr(slots).encode()

    def answer() -> bytes:
        return desk.service.rendered_slots("standard", monday(0).date(), monday(0).date(), render)

    store('"1"', block)
    before = desk.service.timelines(desk.clock.now())["ana"]
    first = answer()
    reads = Reads(desk)
    store('"2"', block)  # the same time, another ETag
    assert desk.service.timelines(desk.clock.now())["ana"] is before
    assert reads.calendar == ["ana"], "re-read all the same"
    assert answer() == first and computed == ["standard"], "not computed again"
    store('"3"', Interval(monday(14), monday(14, 30)))  # another time: a new timeline
    after = desk.service.timelines(desk.clock.now())["ana"]
    assert after is not before
    assert after.is_free(monday(11), monday(11, 30))
    assert not after.is_free(monday(14), monday(14, 30))


def test_a_booking_re_reads_its_technicians_sessions_only(desk: Desk) -> None:
    reads = Reads(desk)
    assert free_at(desk, 9) == 2
    reads.clear()
    status, _, body = call(desk, "POST", "/api/v1/bookings", booking(monday(9).isoformat()))
    assert status == 201
    booked = desk.service.get(body["id"]).technician_id
    reads.clear()  # the booking's own validation may have rebuilt; the next request must not
    assert free_at(desk, 9) == 1, "the booking counts"
    assert reads.calendar == [], "a booking adds a session, not calendar busy time"
    assert reads.sessions in ([], [booked])
    assert free_at(desk, 10) == 2
    assert reads.sessions in ([], [booked]), "and once"


def test_views_are_handed_out_again_without_a_claim_until_their_technician_moves(
    desk: Desk,
) -> None:
    """Every slot listing asks for every technician's view. While nothing moved it gets
    the same objects without claiming each one again; after a booking, only the booked
    technician's view is claimed, and it is the one with the booking in it."""
    service, cache = desk.service, desk.service.cache
    claimed: list[str] = []
    claim = cache._claim

    def counted(tech: str, *args: Any, **kwargs: Any) -> Any:
        claimed.append(tech)
        return claim(tech, *args, **kwargs)

    cache._claim = counted  # type: ignore[method-assign]
    service.timelines(desk.clock.now())  # builds both; a build counts as a move
    first = service.timelines(desk.clock.now())
    assert sorted(claimed) == ["ana", "ana", "bruno", "bruno"]
    claimed.clear()
    again = service.timelines(desk.clock.now())
    assert claimed == [], "nothing moved: nothing claimed"
    assert again == first and again is not first, "the same views, in a dict of its own"
    again.clear()  # a caller's dict is its own
    assert service.timelines(desk.clock.now()) == first

    session = service.book(booking_request(monday(9), only_required=True)).session
    assert session is not None
    booked, other = session.technician_id, ({"ana", "bruno"} - {session.technician_id}).pop()
    claimed.clear()
    after = service.timelines(desk.clock.now())
    assert claimed == [booked], "the booked technician's view alone is claimed again"
    assert after[other] is first[other]
    assert not after[booked].is_free(monday(9), monday(9, 30))
    assert first[booked].is_free(monday(9), monday(9, 30))


def test_a_view_built_while_the_versions_stand_still_is_handed_out(
    fake: FakeStore, background: BusyCache, refresher: Refresher
) -> None:
    """A rebuild that lands moves no version in the store (the change that caused it did,
    before): the request after it must still get the new view, not the one handed out
    while it was built."""
    background.timelines(["ana"], WINDOW)
    fake.change([(120.0, 180.0)])
    gate = fake.hold()
    assert starts(background.timelines(["ana"], WINDOW)["ana"]) == [0.0]
    assert fake.started.wait(WAIT)
    assert starts(background.timelines(["ana"], WINDOW)["ana"]) == [0.0], "still building"
    gate.set()
    assert refresher.wait_idle(WAIT)
    assert starts(background.timelines(["ana"], WINDOW)["ana"]) == [120.0]


@pytest.mark.parametrize(
    ("zone", "horizon"),
    [("America/Sao_Paulo", None), ("Europe/Lisbon", None), ("Asia/Kolkata", timedelta(hours=30))],
)
def test_the_cache_window_kept_is_the_one_computed_afresh(
    desk: Desk, zone: str, horizon: timedelta | None
) -> None:
    """The window is kept while its days are the same: at every instant, in any order,
    over a year of midnights, DST changes (Lisbon's) and a horizon that is not whole days,
    it is the one computed from nothing, and the same object while it is."""
    policy = desk.config.policy
    policy = dataclasses.replace(policy, timezone=ZoneInfo(zone), horizon=horizon or policy.horizon)
    desk.service.config = dataclasses.replace(desk.config, policy=policy)
    service = desk.service
    origin = datetime(2026, 1, 1, tzinfo=UTC)

    @given(
        steps=st.lists(
            st.integers(0, 400 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes)),
            min_size=1,
            max_size=40,
        )
    )
    def check(steps: list[timedelta]) -> None:
        for step in steps:
            now = origin + step
            kept = service.cache_window(now)
            service._window = None
            afresh = service.cache_window(now)
            assert kept == afresh
            assert service.cache_window(now) is afresh

    check()


def test_a_cancel_by_the_cli_is_seen_and_costs_its_technician_only(desk: Desk) -> None:
    """The CLI writes through its own store handle, as it does from another process."""
    session = desk.service.book(booking_request(monday(9), only_required=True)).session
    assert session is not None
    reads = Reads(desk)
    assert free_at(desk, 9) == 1
    reads.clear()
    assert main(["cancel", session.id, "--config", str(desk.config.path)], desk.clock) == 0
    assert free_at(desk, 9) == 2
    assert reads.calendar == []
    assert reads.sessions == [session.technician_id]


def fresh_timelines(desk: Desk) -> dict[str, Sequence[Interval]]:
    """Every technician's busy time as a new cache builds it from the store."""
    store = desk.store
    cache = BusyCache(
        store.busy_pairs,
        store.session_pairs,
        versions=store.technician_versions,
        data_version=store.data_version,
    )
    window = desk.service.cache_window(desk.clock.now())
    techs = [t.id for t in desk.config.technicians]
    return {tech: timeline.intervals for tech, timeline in cache.timelines(techs, window).items()}


def served_timelines(desk: Desk) -> dict[str, Sequence[Interval]]:
    timelines = desk.service.timelines(desk.clock.now())
    return {tech: timeline.intervals for tech, timeline in timelines.items()}


def test_bookings_hand_their_sessions_to_the_cache_instead_of_reading_them_back(
    desk: Desk,
) -> None:
    reads = Reads(desk)
    desk.service.timelines(desk.clock.now())
    reads.clear()
    booked = []
    for hour in (9, 10, 11, 14):
        outcome = desk.service.book(booking_request(monday(hour, weeks=1), only_required=True))
        assert outcome.session is not None
        booked.append(outcome.session.technician_id)
    assert sorted(set(booked)) == ["ana", "bruno"]  # both technicians' views took bookings
    assert served_timelines(desk) == fresh_timelines(desk)
    assert reads.sessions == reads.calendar == []


def test_bookings_from_many_threads_leave_the_cache_as_the_store_says(desk: Desk) -> None:
    """Bookings committed together (one group commit) hand their sessions over in any
    order; whatever the order, the views end as a fresh read of the store."""
    first, last = monday(0, weeks=1).date(), monday(0, weeks=2).date()
    starts = [slot.start for slot in desk.service.slots("standard", first, last)] * 2
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            while True:
                with lock:
                    if not starts:
                        return
                    start = starts.pop()
                desk.service.book(booking_request(start, only_required=True))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not errors and not any(thread.is_alive() for thread in threads)
    assert len(desk.store.list_sessions(status=Status.BOOKED)) > 20
    assert served_timelines(desk) == fresh_timelines(desk)


# ------------------------------------------------------------------ single flight

WINDOW = Interval(datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))


class FakeStore:
    """Versions and loaders the test moves by hand; ``hold()`` stops the next calendar
    read until ``release()``."""

    def __init__(self) -> None:
        self.versions = {"ana": (1, 1)}
        self.data_version = 1
        self.busy: list[tuple[float, float]] = [(0.0, 60.0)]
        self.booked: list[tuple[float, float]] = []
        self.calendar_reads = 0
        self.session_reads = 0
        self.started = threading.Event()
        self._gate: threading.Event | None = None

    def calendar(self, tech: str, window: Interval) -> list[tuple[float, float]]:
        self.calendar_reads += 1
        busy = list(self.busy)
        gate = self._gate
        if gate is not None:
            self.started.set()
            assert gate.wait(WAIT), "the test never released the rebuild"
        return busy

    def sessions(self, tech: str, window: Interval, without: str | None) -> list[Any]:
        self.session_reads += 1
        return list(self.booked)

    def book(self, pair: tuple[float, float]) -> None:
        """A booking: Ana's sessions version and the data version move."""
        self.booked.append(pair)
        calendar, sessions = self.versions["ana"]
        self.versions["ana"] = (calendar, sessions + 1)
        self.data_version += 1

    def cancel(self, pair: tuple[float, float]) -> None:
        """A session ended (cancelled, over): Ana's sessions version moves."""
        self.booked.remove(pair)
        calendar, sessions = self.versions["ana"]
        self.versions["ana"] = (calendar, sessions + 1)
        self.data_version += 1

    def change(self, busy: list[tuple[float, float]]) -> None:
        """A sync: new calendar busy time, Ana's calendar version and the data version move."""
        self.busy = busy
        calendar, sessions = self.versions["ana"]
        self.versions["ana"] = (calendar + 1, sessions)
        self.data_version += 1

    def hold(self) -> threading.Event:
        self._gate = threading.Event()
        self.started.clear()
        return self._gate


class WatchedCondition(threading.Condition):
    """The cache's condition, telling the test when a request starts waiting on it."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


@pytest.fixture
def fake() -> FakeStore:
    return FakeStore()


def watched_cache(fake: FakeStore, refresher: Refresher | None = None) -> BusyCache:
    made = BusyCache(
        fake.calendar,
        fake.sessions,
        versions=lambda: dict(fake.versions),
        data_version=lambda: fake.data_version,
        refresher=refresher,
    )
    made._built = WatchedCondition(made._lock)
    return made


@pytest.fixture
def cache(fake: FakeStore) -> BusyCache:
    return watched_cache(fake)


def starts(timeline: BusyTimeline) -> list[float]:
    return [i.start.timestamp() for i in timeline.intervals]


class Request:
    """``cache.timeline(...)`` in a thread of its own."""

    def __init__(self, call: Callable[[], BusyTimeline]) -> None:
        self.result: BusyTimeline | BaseException | None = None

        def run() -> None:
            try:
                self.result = call()
            except BaseException as error:
                self.result = error

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self) -> BusyTimeline:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the request is still waiting"
        assert isinstance(self.result, BusyTimeline), self.result
        return self.result


@pytest.fixture
def watched(cache: BusyCache) -> Iterator[WatchedCondition]:
    condition = cache._built
    assert isinstance(condition, WatchedCondition)
    yield condition


changes = st.lists(
    st.one_of(
        st.tuples(st.just("book"), st.integers(0, 1000), st.integers(1, 100)),
        st.tuples(st.just("cancel"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("sync"), st.integers(0, 1000), st.integers(1, 100)),
    ),
    max_size=25,
)


@given(changes=changes)
def test_the_timeline_after_any_bookings_cancels_and_syncs_is_the_one_built_afresh(
    changes: list[tuple[str, int, int]],
) -> None:
    fake = FakeStore()
    cache = watched_cache(fake)
    for kind, at, length in changes:
        if kind == "book":
            fake.book((float(at), float(at + length)))
        elif kind == "cancel" and fake.booked:
            fake.cancel(fake.booked[at % len(fake.booked)])
        elif kind == "sync":
            fake.change([*fake.busy, (float(at), float(at + length))])
        expected = BusyTimeline.from_timestamps([*fake.busy, *fake.booked])
        assert cache.timeline("ana", WINDOW).intervals == expected.intervals


# The handed-over tests' window: the fake's pairs (seconds after 1970) fall inside it, as
# a booking's time falls in the window the cache serves (one outside it only moves the
# version).
NEAR = Interval(datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC))

handovers = st.lists(
    st.one_of(
        st.tuples(st.just("book"), st.integers(0, 1000), st.integers(1, 100)),
        st.tuples(st.just("hand"), st.integers(0, 10), st.just(0)),
        st.tuples(st.just("cancel"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("sync"), st.integers(0, 1000), st.integers(1, 100)),
        st.tuples(st.just("read"), st.just(0), st.just(0)),
    ),
    max_size=30,
)


@given(changes=handovers)
def test_bookings_handed_over_in_any_order_give_the_timeline_built_afresh(
    changes: list[tuple[str, int, int]],
) -> None:
    """Bookings committed together reach ``booked`` in any order, some never (a booking
    whose thread the test never lets hand it over), among cancels, syncs and reads."""
    fake = FakeStore()
    cache = watched_cache(fake)
    cache.timeline("ana", NEAR)
    waiting: list[tuple[tuple[float, float], tuple[int, int]]] = []

    def check() -> None:
        expected = BusyTimeline.from_timestamps([*fake.busy, *fake.booked])
        assert cache.timeline("ana", NEAR).intervals == expected.intervals

    for kind, at, length in changes:
        if kind == "book":
            pair = (float(at), float(at + length))
            fake.book(pair)
            waiting.append((pair, fake.versions["ana"]))
        elif kind == "hand" and waiting:
            cache.booked("ana", *waiting.pop(at % len(waiting)))
        elif kind == "cancel" and fake.booked:
            fake.cancel(fake.booked[at % len(fake.booked)])
        elif kind == "sync":
            fake.change([*fake.busy, (float(at), float(at + length))])
        elif kind == "read":
            check()
    check()


def test_a_booking_handed_over_is_not_read_back(fake: FakeStore, cache: BusyCache) -> None:
    cache.timeline("ana", NEAR)
    reads = (fake.calendar_reads, fake.session_reads)
    fake.book((120.0, 180.0))
    assert cache.booked("ana", (120.0, 180.0), fake.versions["ana"])
    assert starts(cache.timeline("ana", NEAR)) == [0.0, 120.0]
    assert (fake.calendar_reads, fake.session_reads) == reads


def test_bookings_handed_over_out_of_order_wait_for_the_one_between(
    fake: FakeStore, cache: BusyCache
) -> None:
    cache.timeline("ana", NEAR)
    reads = (fake.calendar_reads, fake.session_reads)
    fake.book((120.0, 180.0))
    first = fake.versions["ana"]
    fake.book((300.0, 360.0))
    assert not cache.booked("ana", (300.0, 360.0), fake.versions["ana"])  # one is missing
    assert cache.booked("ana", (120.0, 180.0), first)
    assert starts(cache.timeline("ana", NEAR)) == [0.0, 120.0, 300.0]
    assert (fake.calendar_reads, fake.session_reads) == reads


def test_a_booking_that_is_not_the_only_change_is_left_to_the_rebuild(
    fake: FakeStore, cache: BusyCache
) -> None:
    cache.timeline("ana", NEAR)
    fake.change([(0.0, 60.0), (600.0, 660.0)])  # a sync landed between
    fake.book((120.0, 180.0))
    assert not cache.booked("ana", (120.0, 180.0), fake.versions["ana"])
    fake.book((300.0, 360.0))
    fake.cancel((300.0, 360.0))  # two more changes: not one behind either
    fake.book((400.0, 460.0))
    assert not cache.booked("ana", (400.0, 460.0), fake.versions["ana"])
    reads = fake.calendar_reads
    assert starts(cache.timeline("ana", NEAR)) == [0.0, 120.0, 400.0, 600.0]
    assert fake.calendar_reads == reads + 1


def test_a_booking_outside_the_window_moves_the_version_only(
    fake: FakeStore, cache: BusyCache
) -> None:
    before = cache.timeline("ana", NEAR)
    later = NEAR.end.timestamp() + 3600
    fake.book((later, later + 60))
    assert cache.booked("ana", (later, later + 60), fake.versions["ana"])
    reads = fake.session_reads
    assert cache.timeline("ana", NEAR) is before
    assert fake.session_reads == reads


def test_a_booking_lays_only_its_own_session_over_the_previous_timeline(
    fake: FakeStore, cache: BusyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    for hour in range(40):
        fake.book((3600.0 * hour, 3600.0 * hour + 1800))
        cache.timeline("ana", WINDOW)
    laid: list[int] = []
    with_pairs = BusyTimeline.with_pairs

    def counted(self: BusyTimeline, pairs: Sequence[tuple[float, float]]) -> BusyTimeline:
        laid.append(len(pairs))
        return with_pairs(self, pairs)

    monkeypatch.setattr(BusyTimeline, "with_pairs", counted)
    fake.book((3600.0 * 50, 3600.0 * 50 + 1800))
    booked = cache.timeline("ana", WINDOW)
    fake.cancel((0.0, 1800.0))
    cancelled = cache.timeline("ana", WINDOW)
    assert laid == [1, 40]  # the new session alone; after a cancel, all 40 left afresh
    assert not booked.is_free_at(100.0, 200.0)
    assert cancelled.is_free_at(100.0, 200.0)  # the cancelled session's time, freed
    assert not cancelled.is_free_at(3600.0 * 50, 3600.0 * 50 + 60)


def test_while_a_rebuild_runs_requests_get_the_previous_view(
    fake: FakeStore, cache: BusyCache, watched: WatchedCondition
) -> None:
    assert starts(cache.timeline("ana", WINDOW)) == [0.0]
    fake.change([(120.0, 180.0)])
    gate = fake.hold()
    rebuilding = Request(lambda: cache.timeline("ana", WINDOW))
    assert fake.started.wait(WAIT)
    # The rebuild is held: another request neither waits for it nor rebuilds.
    others = [Request(lambda: cache.timeline("ana", WINDOW)) for _ in range(3)]
    assert [starts(other.join()) for other in others] == [[0.0]] * 3
    assert not watched.waiting.is_set()
    gate.set()
    assert starts(rebuilding.join()) == [120.0]
    assert starts(cache.timeline("ana", WINDOW)) == [120.0]
    assert fake.calendar_reads == 2, "one read to warm up, one rebuild for the change"


def test_without_a_previous_view_requests_wait_for_the_one_rebuild(
    fake: FakeStore, cache: BusyCache, watched: WatchedCondition
) -> None:
    gate = fake.hold()
    first = Request(lambda: cache.timeline("ana", WINDOW))
    assert fake.started.wait(WAIT)
    second = Request(lambda: cache.timeline("ana", WINDOW))
    assert watched.waiting.wait(WAIT), "the second request waits for the first one's rebuild"
    gate.set()
    assert starts(first.join()) == starts(second.join()) == [0.0]
    assert fake.calendar_reads == 1


def test_a_fresh_request_waits_for_the_rebuild_in_progress(
    fake: FakeStore, cache: BusyCache, watched: WatchedCondition
) -> None:
    cache.timeline("ana", WINDOW)
    fake.change([(120.0, 180.0)])
    gate = fake.hold()
    rebuilding = Request(lambda: cache.timeline("ana", WINDOW))
    assert fake.started.wait(WAIT)
    fresh = Request(lambda: cache.timelines(["ana"], WINDOW, fresh=True)["ana"])
    assert watched.waiting.wait(WAIT)
    gate.set()
    assert starts(fresh.join()) == starts(rebuilding.join()) == [120.0]
    assert fake.calendar_reads == 2


def test_a_failed_rebuild_lets_the_next_request_try(fake: FakeStore, cache: BusyCache) -> None:
    def failing(tech: str, window: Interval) -> list[tuple[float, float]]:
        raise OSError("disk")

    cache._calendar_loader = failing
    with pytest.raises(OSError, match="disk"):
        cache.timeline("ana", WINDOW)
    cache._calendar_loader = fake.calendar
    assert starts(cache.timeline("ana", WINDOW)) == [0.0]


def test_versions_are_read_only_when_the_data_version_moved(
    fake: FakeStore, cache: BusyCache
) -> None:
    reads: list[int] = []

    def versions() -> dict[str, tuple[int, int]]:
        reads.append(1)
        return dict(fake.versions)

    cache._versions = versions
    cache.timeline("ana", WINDOW)
    cache.timeline("ana", WINDOW)
    assert len(reads) == 1
    fake.data_version += 1  # a commit that changed nobody's busy time
    assert starts(cache.timeline("ana", WINDOW)) == [0.0]
    assert len(reads) == 2
    assert fake.calendar_reads == 1 and fake.session_reads == 1


def test_lower_versions_mean_another_file_and_drop_everything(
    fake: FakeStore, cache: BusyCache
) -> None:
    cache.timeline("ana", WINDOW)
    fake.busy = [(300.0, 360.0)]
    fake.versions["ana"] = (0, 0)  # a restored backup
    fake.data_version += 1
    assert starts(cache.timeline("ana", WINDOW)) == [300.0]


# ------------------------------------------------------------ in the background


@pytest.fixture
def refresher() -> Iterator[Refresher]:
    made = Refresher(name="test-refresh")
    yield made
    made.close()


@pytest.fixture
def background(fake: FakeStore, refresher: Refresher) -> BusyCache:
    return watched_cache(fake, refresher)


def test_with_a_refresher_even_the_request_that_finds_a_change_gets_the_previous_view(
    fake: FakeStore, background: BusyCache, refresher: Refresher
) -> None:
    assert starts(background.timeline("ana", WINDOW)) == [0.0]
    fake.change([(120.0, 180.0)])
    gate = fake.hold()
    # The request that finds the change answers at once, from the previous view; the
    # rebuild runs on the refresher's thread (held here until the test releases it).
    assert starts(background.timeline("ana", WINDOW)) == [0.0]
    assert fake.started.wait(WAIT)
    assert threading.current_thread().name != "test-refresh"
    assert starts(background.timeline("ana", WINDOW)) == [0.0]
    gate.set()
    assert refresher.wait_idle(WAIT)
    assert starts(background.timeline("ana", WINDOW)) == [120.0]
    assert fake.calendar_reads == 2, "one read to warm up, one rebuild for the change"


def test_a_background_rebuild_builds_the_versions_current_when_it_runs(
    fake: FakeStore, background: BusyCache, refresher: Refresher
) -> None:
    background.timeline("ana", WINDOW)
    fake.change([(120.0, 180.0)])
    gate = fake.hold()
    background.timeline("ana", WINDOW)
    assert fake.started.wait(WAIT)
    fake.change([(240.0, 300.0)])  # lands while the first rebuild reads
    background.timeline("ana", WINDOW)  # a rebuild is running: nothing more is queued
    gate.set()
    assert refresher.wait_idle(WAIT)
    # The rebuild read before the second change: its view does not serve the new
    # versions, so the next request queues another rebuild and answers from this one.
    assert starts(background.timeline("ana", WINDOW)) == [120.0]
    assert refresher.wait_idle(WAIT)
    assert starts(background.timeline("ana", WINDOW)) == [240.0]
    assert fake.calendar_reads == 3


def test_with_a_refresher_a_fresh_request_waits_for_the_background_rebuild(
    fake: FakeStore, background: BusyCache
) -> None:
    watched = background._built
    assert isinstance(watched, WatchedCondition)
    background.timeline("ana", WINDOW)
    fake.change([(120.0, 180.0)])
    gate = fake.hold()
    background.timeline("ana", WINDOW)
    assert fake.started.wait(WAIT)
    fresh = Request(lambda: background.timelines(["ana"], WINDOW, fresh=True)["ana"])
    assert watched.waiting.wait(WAIT)
    gate.set()
    assert starts(fresh.join()) == [120.0]


def test_a_failed_background_rebuild_leaves_the_view_and_the_next_request_retries(
    fake: FakeStore, background: BusyCache, refresher: Refresher
) -> None:
    background.timeline("ana", WINDOW)
    fake.change([(120.0, 180.0)])

    def failing(tech: str, window: Interval) -> list[tuple[float, float]]:
        raise OSError("disk")

    background._calendar_loader = failing
    assert starts(background.timeline("ana", WINDOW)) == [0.0]
    assert refresher.wait_idle(WAIT)
    background._calendar_loader = fake.calendar
    assert starts(background.timeline("ana", WINDOW)) == [0.0]
    assert refresher.wait_idle(WAIT)
    assert starts(background.timeline("ana", WINDOW)) == [120.0]


def test_without_a_previous_view_a_request_waits_for_the_build_even_with_a_refresher(
    fake: FakeStore, background: BusyCache, refresher: Refresher
) -> None:
    assert starts(background.timeline("ana", WINDOW)) == [0.0]
    assert fake.calendar_reads == 1


def test_the_rebuilds_a_caller_waits_for_read_on_the_refresher_thread(
    fake: FakeStore, background: BusyCache, refresher: Refresher
) -> None:
    """A cold build and a sync's fresh rebuild run on the refresher while the caller
    waits: only its connection reads busy time in bulk (and keeps the large cache)."""
    readers: list[str] = []

    def loader(tech: str, window: Interval) -> list[tuple[float, float]]:
        readers.append(threading.current_thread().name)
        return fake.calendar(tech, window)

    background._calendar_loader = loader
    assert starts(background.timeline("ana", WINDOW)) == [0.0]
    fake.change([(120.0, 180.0)])
    assert starts(background.timelines(["ana"], WINDOW, fresh=True)["ana"]) == [120.0]
    assert readers == ["test-refresh", "test-refresh"]


def test_a_rebuild_that_fails_on_the_refresher_fails_the_caller_waiting_for_it(
    fake: FakeStore, background: BusyCache, refresher: Refresher
) -> None:
    def failing(tech: str, window: Interval) -> list[tuple[float, float]]:
        raise OSError("disk")

    background._calendar_loader = failing
    with pytest.raises(OSError, match="disk"):
        background.timeline("ana", WINDOW)
    background._calendar_loader = fake.calendar  # nothing was left claimed
    assert starts(background.timeline("ana", WINDOW)) == [0.0]


def test_with_a_refresher_a_booking_is_laid_over_at_once(
    fake: FakeStore, background: BusyCache, refresher: Refresher
) -> None:
    """Only sessions moved: the request lays them over the current calendar timeline
    itself (a small read), so the client who booked sees it."""
    background.timeline("ana", WINDOW)
    fake.book((120.0, 180.0))
    assert starts(background.timeline("ana", WINDOW)) == [0.0, 120.0]
    assert refresher.wait_idle(WAIT)
    assert fake.calendar_reads == 1 and fake.session_reads == 2


# ------------------------------------------------------------------ the week's load


def week_of(desk: Desk, weeks: int) -> Interval:
    return Interval(monday(0, weeks=weeks), monday(0, weeks=weeks + 1))


def test_the_week_load_is_counted_again_only_for_technicians_whose_sessions_moved(
    desk: Desk,
) -> None:
    cache = desk.service.load_cache
    counted: list[list[str]] = []
    count = cache._counter

    def counter(week: Interval, technicians: Any) -> Any:
        counted.append(sorted(technicians))
        return count(week, technicians)

    cache._counter = counter
    week = week_of(desk, 1)
    everyone = ["ana", "bruno"]
    assert cache.load(week, everyone) == {}
    assert counted == [everyone]
    for hour in (9, 10, 11):
        counted.clear()
        session = desk.service.book(booking_request(monday(hour, weeks=1), only_required=True))
        assert session.session is not None
        assert cache.load(week, everyone) == desk.store.load_by_technician(week)
        assert counted in ([], [[session.session.technician_id]])
    counted.clear()
    assert cache.load(week, everyone) == desk.store.load_by_technician(week)
    assert counted == [], "nothing moved: nothing counted"
    # A cancel through the CLI's own handle (as from another process) is seen too.
    gone = desk.store.list_sessions(status=Status.BOOKED)[0]
    assert main(["cancel", gone.id, "--config", str(desk.config.path)], desk.clock) == 0
    assert cache.load(week, everyone) == desk.store.load_by_technician(week)
    assert counted == [[gone.technician_id]]


def test_the_week_load_keeps_the_latest_weeks_only() -> None:
    counted: list[Interval] = []

    def counter(week: Interval, technicians: Any) -> dict[str, int]:
        counted.append(week)
        return {"ana": 1}

    cache = LoadCache(counter, lambda: {"ana": (1, 1)})
    weeks = [Interval(WINDOW.start + timedelta(weeks=n), WINDOW.start + timedelta(weeks=n + 1))
             for n in range(LOAD_WEEKS + 1)]  # fmt: skip
    for week in weeks:
        assert cache.load(week, ["ana"]) == {"ana": 1}
    assert cache.load(weeks[-1], ["ana"]) == {"ana": 1}
    assert counted == weeks, "the latest weeks are kept"
    cache.load(weeks[0], ["ana"])
    assert counted == [*weeks, weeks[0]], "the oldest went"


def test_lower_versions_count_the_week_again() -> None:
    """Versions only grow: lower ones mean another file (a restored backup)."""
    versions = {"ana": (1, 5)}
    truth = {"ana": 3}
    cache = LoadCache(lambda week, techs: dict(truth), lambda: dict(versions))
    assert cache.load(WINDOW, ["ana"]) == {"ana": 3}
    truth["ana"] = 1
    assert cache.load(WINDOW, ["ana"]) == {"ana": 3}  # the same version: kept
    versions["ana"] = (1, 2)
    assert cache.load(WINDOW, ["ana"]) == {"ana": 1}


def test_a_slot_listing_is_answered_at_once_only_from_views_built_and_current(
    desk: Desk,
) -> None:
    """The HTTP loop's own thread answers a slot listing only when nothing has to be read
    again or waited for (``daemon/web/server.py``): every other thread's requests wait
    while it works."""
    service = desk.service
    assert not service.answers_at_once(), "nothing built yet: the first listing builds"
    assert free_at(desk, 9) == 2
    assert service.answers_at_once()
    session = service.book(booking_request(monday(9), only_required=True)).session
    assert session is not None
    assert service.answers_at_once(), "this process's booking is laid over the view"
    assert main(["cancel", session.id, "--config", str(desk.config.path)], desk.clock) == 0
    assert not service.answers_at_once(), "another handle's change is read again first"
    assert free_at(desk, 9) == 2
    assert service.answers_at_once()
    desk.clock.advance(timedelta(days=1))
    assert not service.answers_at_once(), "a new day's window is built first"
    free_at(desk, 9)  # Monday is past now; any listing builds the window
    assert service.answers_at_once()


def test_a_store_on_a_database_server_is_never_read_on_the_loop_thread(desk: Desk) -> None:
    from daemon.store.postgres import PostgresStore

    assert free_at(desk, 9) == 2
    assert desk.service.answers_at_once()
    assert desk.store.local and not PostgresStore.local
    desk.store.local = False  # as PostgresStore: a read may wait on the network
    assert not desk.service.answers_at_once()
