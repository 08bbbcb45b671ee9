"""The slots answer comes from the cache while its inputs and its time hold, and is then
byte for byte what a fresh computation gives; otherwise it is computed again."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import daemon.service
import rules.slots
from connectors.base import ObjectChange
from daemon.availability import _slot_time, slots_body, slots_document
from daemon.refresh import Refresher
from daemon.slotcache import SlotCache
from daemon.web.http import json_body
from rules.intervals import Interval
from rules.model import SessionType
from rules.slots import Slot
from tests import wsgi
from tests.daemon.desk import Desk, call, make_desk, monday
from tests.factories import booking
from tests.rules.factories import seed_policy


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return make_desk(tmp_path, monday(7, 0))


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The type of each free_counts() call the service makes (the slot answers')."""
    calls: list[str] = []
    real: Callable[..., Any] = rules.slots.free_counts

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(daemon.service, "free_counts", counting)
    return calls


def served(desk: Desk, type_name: str, first: date, last: date) -> bytes:
    """The body the API sends for these slots."""
    path = f"/api/v1/slots?type={type_name}&from={first}&to={last}"
    status, _, body = wsgi.call(desk.app, wsgi.environ("GET", path, b""))
    assert status == 200
    return body


def fresh(desk: Desk, type_name: str, first: date, last: date) -> bytes:
    """What the route sent before the cache: the slot engine run now, then encoded."""
    slots = desk.service.slots(type_name, first, last)
    return json_body(slots_document(desk.service.policy, type_name, slots))


MONDAY = date(2026, 11, 30)
WEDNESDAY = date(2026, 12, 2)
THURSDAY = date(2026, 12, 3)


def starts(body: bytes) -> dict[str, int]:
    return {s["start"]: s["technicians"] for s in json.loads(body)["slots"]}


def test_a_steady_query_is_computed_once(desk: Desk, computed: list[str]) -> None:
    first = served(desk, "standard", WEDNESDAY, THURSDAY)
    again = served(desk, "standard", WEDNESDAY, THURSDAY)
    assert computed == ["standard"]
    assert first == again == fresh(desk, "standard", WEDNESDAY, THURSDAY)


def test_a_calendar_change_is_served_at_once(desk: Desk, computed: list[str]) -> None:
    before = served(desk, "standard", WEDNESDAY, THURSDAY)
    ana = next(c for c in desk.config.calendars if c.technician == "ana")
    block = Interval(monday(11) + timedelta(days=2), monday(12) + timedelta(days=2))
    desk.store.apply_sync(
        ana.id,
        [ObjectChange(href="x.ics", uid="x", etag='"1"', blocks=(block,))],
        full=False,
        state=None,
        now=desk.clock.now(),
    )
    after = served(desk, "standard", WEDNESDAY, THURSDAY)
    assert after == fresh(desk, "standard", WEDNESDAY, THURSDAY) != before
    assert starts(after)["2026-12-02T11:00:00-03:00"] == 1
    assert len(computed) == 2  # before and after (fresh() runs the slot engine itself)


def test_a_booking_is_served_at_once(desk: Desk) -> None:
    before = served(desk, "standard", WEDNESDAY, THURSDAY)
    status, _, _ = call(desk, "POST", "/api/v1/bookings", booking("2026-12-02T09:00:00-03:00"))
    assert status == 201
    after = served(desk, "standard", WEDNESDAY, THURSDAY)
    assert after == fresh(desk, "standard", WEDNESDAY, THURSDAY) != before
    assert starts(after)["2026-12-02T09:00:00-03:00"] == 1


def test_bookings_do_not_read_the_calendars_sync_times_again(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which technicians are stale is read again when a sync lands, not after each
    booking's commit; what is served stays what a fresh computation gives."""
    reads: list[int] = []
    real = desk.store.last_syncs

    def counting() -> list[tuple[str, datetime | None]]:
        reads.append(1)
        return real()

    monkeypatch.setattr(desk.store, "last_syncs", counting)
    served(desk, "standard", WEDNESDAY, THURSDAY)
    assert len(reads) == 1
    for start in ("2026-12-02T09:00:00-03:00", "2026-12-02T10:00:00-03:00"):
        status, _, _ = call(desk, "POST", "/api/v1/bookings", booking(start))
        assert status == 201
    after = served(desk, "standard", WEDNESDAY, THURSDAY)
    assert after == fresh(desk, "standard", WEDNESDAY, THURSDAY)
    assert len(reads) == 1
    ana = next(c for c in desk.config.calendars if c.technician == "ana")
    desk.store.apply_sync(ana.id, [], full=False, state="t2", now=desk.clock.now())
    served(desk, "standard", WEDNESDAY, THURSDAY)
    assert len(reads) == 2


def test_a_technician_going_stale_is_served_at_once(desk: Desk) -> None:
    """Bruno's calendar stops syncing: past ``stale_after`` only Ana is offered, though
    nothing in the store and nothing in the answer's time bounds moved."""
    before = served(desk, "standard", WEDNESDAY, THURSDAY)
    stale_after = desk.config.sync.stale_after
    later = desk.clock.advance(stale_after + timedelta(minutes=1))
    ana = next(c for c in desk.config.calendars if c.technician == "ana")
    desk.store.apply_sync(ana.id, [], full=True, state=None, now=later)
    after = served(desk, "standard", WEDNESDAY, THURSDAY)
    assert after == fresh(desk, "standard", WEDNESDAY, THURSDAY) != before
    assert set(starts(after).values()) == {1}


def test_the_answer_is_computed_again_when_its_time_passes(desk: Desk, computed: list[str]) -> None:
    """At 07:00 with 15 minutes' notice, 07:30 is offered until 07:15 and not after (the
    cached answer is kept until just before then)."""
    desk.mark_synced(at=monday(7, 14))  # no calendar goes stale meanwhile
    first = served(desk, "standard", MONDAY, MONDAY)
    assert "2026-11-30T07:30:00-03:00" in starts(first)
    desk.clock.set(monday(7, 15) - timedelta(seconds=1))
    assert served(desk, "standard", MONDAY, MONDAY) == first
    assert computed == ["standard"]
    desk.clock.set(monday(7, 15) + timedelta(seconds=1))
    passed = served(desk, "standard", MONDAY, MONDAY)
    assert passed == fresh(desk, "standard", MONDAY, MONDAY) != first
    assert "2026-11-30T07:30:00-03:00" not in starts(passed)
    # A clock set back (an operator fixing it) is outside what the answer was computed for.
    desk.clock.set(monday(7, 0))
    assert served(desk, "standard", MONDAY, MONDAY) == first
    assert len(computed) == 3  # first, passed and the clock set back


def test_each_type_and_range_has_its_own_answer(desk: Desk, computed: list[str]) -> None:
    queries = [
        ("standard", WEDNESDAY, THURSDAY),
        ("extended", WEDNESDAY, THURSDAY),
        ("standard", WEDNESDAY, WEDNESDAY),
        ("standard", THURSDAY, THURSDAY),
    ]
    bodies = [served(desk, *query) for query in queries]
    assert len(set(bodies)) == len(queries)
    assert [served(desk, *query) for query in queries] == bodies
    assert len(computed) == len(queries)
    assert bodies == [fresh(desk, *query) for query in queries]


def answer_of(body: bytes, until: datetime) -> Callable[[], tuple[bytes, datetime]]:
    return lambda: (body, until)


NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
HOUR = NOW + timedelta(hours=1)
LATER = NOW + timedelta(hours=2)


def test_the_cache_keeps_the_most_recently_used_answers() -> None:
    cache = SlotCache(size=2)
    for key in ("a", "b"):
        assert cache.answer(key, 1, NOW, answer_of(key.encode(), HOUR), ()) == key.encode()
    unused = answer_of(b"computed again", HOUR)
    assert cache.answer("a", 1, NOW, unused, ()) == b"a"  # "b" is now the least recently used
    cache.answer("c", 1, NOW, answer_of(b"c", HOUR), ())
    assert len(cache) == 2
    assert cache.answer("b", 1, NOW, unused, ()) == b"computed again"
    assert cache.answer("c", 1, NOW, unused, ()) == b"c"
    # Its time over, or its inputs changed: computed again.
    assert cache.answer("c", 1, HOUR, answer_of(b"later", LATER), ()) == b"later"
    assert cache.answer("c", 2, HOUR, answer_of(b"new inputs", LATER), ()) == b"new inputs"


def test_while_one_request_computes_the_others_get_the_previous_answer() -> None:
    """One computation per change: a request for the same key arriving meanwhile gets the
    previous answer if its time holds, and waits for the new one if there is none."""
    cache = SlotCache()
    cache.answer("k", "old", NOW, answer_of(b"previous", HOUR), ())
    release = threading.Event()
    started = threading.Event()
    computations: list[str] = []

    def slow(body: bytes) -> Callable[[], tuple[bytes, datetime]]:
        def compute() -> tuple[bytes, datetime]:
            computations.append(body.decode())
            started.set()
            assert release.wait(timeout=30)
            return body, LATER

        return compute

    results: dict[str, bytes] = {}
    first = threading.Thread(
        target=lambda: results.update(first=cache.answer("k", "new", NOW, slow(b"new"), ()))
    )
    first.start()
    assert started.wait(timeout=30)
    # Same key, new inputs, while "new" is computed: the previous answer, nothing computed.
    assert cache.answer("k", "new", NOW, slow(b"twice"), ()) == b"previous"
    assert cache.answer("k", "newer", NOW, slow(b"twice"), ()) == b"previous"
    # A key with no answer yet waits for nobody else: it is computed by its own request.
    assert cache.answer("other", 1, NOW, answer_of(b"other", HOUR), ()) == b"other"
    # A request whose previous answer's time is over waits for the computation, and takes
    # its result when it serves (same inputs, its time holds) rather than compute again.
    late = threading.Thread(
        target=lambda: results.update(late=cache.answer("k", "new", HOUR, slow(b"late"), ()))
    )
    late.start()
    release.set()
    first.join(timeout=30)
    late.join(timeout=30)
    assert results == {"first": b"new", "late": b"new"}
    assert computations == ["new"]


def test_a_failed_computation_lets_the_next_request_compute() -> None:
    cache = SlotCache()

    def failing() -> tuple[bytes, datetime]:
        raise RuntimeError("the engine failed")

    with pytest.raises(RuntimeError):
        cache.answer("k", 1, NOW, failing, ())
    assert cache.answer("k", 1, NOW, answer_of(b"ok", HOUR), ()) == b"ok"


def test_with_a_refresher_new_inputs_are_computed_in_the_background() -> None:
    """The request that finds new inputs answers at once with the previous answer; the new
    one is computed on the refresher's thread, once, and served from then on. An answer
    whose time is over is still computed by its request: there is nothing to serve."""
    refresher = Refresher(name="test-refresh")
    try:
        cache = SlotCache(refresher=refresher)
        cache.answer("k", "old", NOW, answer_of(b"previous", HOUR), ())
        release = threading.Event()
        threads: list[str] = []

        def held() -> tuple[bytes, datetime]:
            threads.append(threading.current_thread().name)
            assert release.wait(timeout=30)
            return b"new", HOUR

        assert cache.answer("k", "new", NOW, held, ()) == b"previous"
        assert cache.answer("k", "new", NOW, held, ()) == b"previous"  # computing: not again
        release.set()
        assert refresher.wait_idle(30)
        assert threads == ["test-refresh"]
        assert cache.answer("k", "new", NOW, answer_of(b"unused", HOUR), ()) == b"new"
        assert cache.answer("k", "new", HOUR, answer_of(b"later", LATER), ()) == b"later"
    finally:
        refresher.close()


def test_a_closed_refresher_leaves_the_computation_to_the_request() -> None:
    refresher = Refresher()
    refresher.close()
    cache = SlotCache(refresher=refresher)
    cache.answer("k", "old", NOW, answer_of(b"previous", HOUR), ())
    assert cache.answer("k", "new", NOW, answer_of(b"new", HOUR), ()) == b"new"


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(["America/Sao_Paulo", "America/Manaus", "Europe/Lisbon", "UTC"]),
)
def test_a_remembered_slot_time_is_the_one_computed_afresh(instant: datetime, zone: str) -> None:
    # The same instant given in another zone is the same key, and gets the same text.
    tz = ZoneInfo(zone)
    assert _slot_time(instant, tz) == instant.astimezone(tz).isoformat(timespec="seconds")
    shifted = instant.astimezone(ZoneInfo("Asia/Tokyo"))
    assert _slot_time(shifted, tz) == instant.astimezone(tz).isoformat(timespec="seconds")


@given(
    st.lists(
        st.tuples(
            st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2040, 1, 1),
                timezones=st.just(UTC),
            ),
            st.integers(1, 300),
        ),
        max_size=20,
    ),
    st.sampled_from(["America/Sao_Paulo", "Europe/Lisbon", "Asia/Kolkata", "UTC"]),
    st.text(min_size=1, max_size=12),
    st.integers(1, 240),
)
def test_the_answer_made_from_counts_is_the_document_encoded(
    counted: list[tuple[datetime, int]], zone: str, type_name: str, minutes: int
) -> None:
    """The body the route sends, built from free_counts() without a document, is byte
    for byte the slots document encoded as every JSON answer is: DST nights, a type name
    that needs escaping, counts past 255 and the empty answer included."""
    duration = timedelta(minutes=minutes)
    policy = dataclasses.replace(
        seed_policy(),
        timezone=ZoneInfo(zone),
        session_types={type_name: SessionType(type_name, "x", duration, timedelta(0))},
    )
    counted.sort()
    tz = policy.timezone
    slots = [
        Slot(start.astimezone(tz), (start + duration).astimezone(tz), ("t",) * count)
        for start, count in counted
    ]
    assert slots_body(policy, type_name, counted) == json_body(
        slots_document(policy, type_name, slots)
    )


@pytest.fixture
def ahead(tmp_path: Path) -> Iterator[tuple[Desk, Refresher]]:
    """A desk whose caches rebuild on a refresher, as the daemon's do."""
    refresher = Refresher(name="test-refresh")
    try:
        yield make_desk(tmp_path, monday(7, 0), refresher=refresher), refresher
    finally:
        refresher.close()


def test_after_a_booking_the_next_request_finds_its_answer_computed_ahead(
    ahead: tuple[Desk, Refresher], computed: list[str]
) -> None:
    desk, refresher = ahead
    before = served(desk, "standard", WEDNESDAY, THURSDAY)
    status, _, _ = call(desk, "POST", "/api/v1/bookings", booking("2026-12-02T09:00:00-03:00"))
    assert status == 201
    assert refresher.wait_idle(30)
    computed.clear()
    # Without the answer ahead, this request would get the previous answer (the booked
    # slot still offered) while it handed the computation to the refresher.
    after = served(desk, "standard", WEDNESDAY, THURSDAY)
    assert computed == [], "served from the answer computed ahead"
    assert after != before
    assert after == fresh(desk, "standard", WEDNESDAY, THURSDAY)
    assert starts(after)["2026-12-02T09:00:00-03:00"] == 1


def test_a_burst_of_bookings_with_nobody_listing_computes_one_answer_ahead(
    ahead: tuple[Desk, Refresher], computed: list[str]
) -> None:
    """Answers are computed ahead only when someone asked for them since the last time:
    after every booking of a burst, they took the interpreter from the bookings."""
    desk, refresher = ahead
    before = served(desk, "standard", WEDNESDAY, THURSDAY)
    computed.clear()
    for start in ("09:00", "10:00", "11:00"):
        status, _, _ = call(
            desk, "POST", "/api/v1/bookings", booking(f"2026-12-02T{start}:00-03:00")
        )
        assert status == 201
        assert refresher.wait_idle(30)
    assert computed == ["standard"], "computed after the first booking, not after each"
    # The first listing after the burst: the answer from after the first booking while
    # the refresher computes the current one, which the next listing gets.
    assert served(desk, "standard", WEDNESDAY, THURSDAY) not in (
        before,
        fresh(desk, "standard", WEDNESDAY, THURSDAY),
    )
    assert refresher.wait_idle(30)
    after = served(desk, "standard", WEDNESDAY, THURSDAY)
    assert after == fresh(desk, "standard", WEDNESDAY, THURSDAY)
    assert [starts(after)[f"2026-12-02T{h}:00:00-03:00"] for h in ("09", "10", "11")] == [1, 1, 1]


def test_after_a_sync_lands_the_next_request_finds_its_answer_computed_ahead(
    ahead: tuple[Desk, Refresher], computed: list[str]
) -> None:
    desk, refresher = ahead
    before = served(desk, "standard", WEDNESDAY, THURSDAY)
    ana = next(c for c in desk.config.calendars if c.technician == "ana")
    block = Interval(monday(11) + timedelta(days=2), monday(12) + timedelta(days=2))
    change = ObjectChange(href="x.ics", uid="x", etag='"1"', blocks=(block,))
    desk.store.apply_sync(ana.id, [change], full=False, state=None, now=desk.clock.now())
    desk.service.refresh_busy(["ana"])  # as the sync that landed it does
    assert refresher.wait_idle(30)
    computed.clear()
    after = served(desk, "standard", WEDNESDAY, THURSDAY)
    assert computed == [], "served from the answer computed ahead"
    assert after != before
    assert starts(after)["2026-12-02T11:00:00-03:00"] == 1


def test_the_two_half_past_ones_of_a_night_the_clocks_go_back_keep_their_own_offsets() -> None:
    lisbon = ZoneInfo("Europe/Lisbon")  # back from 02:00 to 01:00 on 2026-10-25
    first = datetime(2026, 10, 25, 1, 30, tzinfo=lisbon)
    second = first.replace(fold=1)
    assert first == second, "one zone: compared by wall time alone"
    assert _slot_time(first, lisbon) == "2026-10-25T01:30:00+01:00"
    assert _slot_time(second, lisbon) == "2026-10-25T01:30:00+00:00"
    assert _slot_time(first, lisbon) == "2026-10-25T01:30:00+01:00"
