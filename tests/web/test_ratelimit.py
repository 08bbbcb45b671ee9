"""The booking rate limiter: a sliding window on a clock passed in; kept in memory (one
instance) or in the PostgreSQL store (every instance counting together), the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from daemon.store.postgres import PostgresStore
from daemon.web.ratelimit import RateLimiter, SharedRateLimiter, client_key
from tests.servers.postgres import PostgresServer

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

Make = Callable[..., RateLimiter]


@pytest.fixture(params=["memory", "postgresql"])
def make(request: pytest.FixtureRequest) -> Iterator[Make]:
    """Builds a limiter like ``RateLimiter(limit, window, refusal_limit)``, on each kind;
    the shared ones are two instances' limiters on one store, used in turn."""
    if request.param == "memory":
        yield RateLimiter
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    dsn = server.create_database()
    stores = [PostgresStore(dsn, pool_size=2), PostgresStore(dsn, pool_size=2)]

    def shared(limit: int | None, window: timedelta, refusal_limit: int | None = None) -> Any:
        instances = [SharedRateLimiter(s, limit, window, refusal_limit) for s in stores]
        return Alternating(instances)

    yield shared
    for store in stores:
        store.close()


class Alternating(RateLimiter):
    """Each call goes to the next instance's limiter, as a proxy spreads requests."""

    def __init__(self, instances: list[SharedRateLimiter]) -> None:
        super().__init__(instances[0].limit, instances[0].window, instances[0].refusal_limit)
        self.instances = instances
        self.calls = 0

    def _next(self) -> SharedRateLimiter:
        self.calls += 1
        return self.instances[self.calls % len(self.instances)]

    def acquire(self, address: str, now: datetime) -> float | None:
        return self._next().acquire(address, now)

    def release(self, address: str, now: datetime, *, refused: bool = False) -> None:
        self._next().release(address, now, refused=refused)


def test_a_sliding_window_per_key(make: Make) -> None:
    limiter = make(2, timedelta(hours=1))
    assert limiter.acquire("a", T0) is None
    assert limiter.acquire("a", T0 + timedelta(minutes=20)) is None
    assert limiter.acquire("a", T0 + timedelta(minutes=30)) == 30 * 60
    assert limiter.acquire("b", T0 + timedelta(minutes=30)) is None
    # The first grant leaves the window at 11:00 exactly; the second at 11:20.
    assert limiter.acquire("a", T0 + timedelta(hours=1)) is None
    assert limiter.acquire("a", T0 + timedelta(hours=1, minutes=1)) == 19 * 60


def test_a_released_grant_is_given_back(make: Make) -> None:
    limiter = make(1, timedelta(hours=1))
    assert limiter.acquire("a", T0) is None
    limiter.release("a", T0)
    assert limiter.acquire("a", T0 + timedelta(seconds=1)) is None
    assert limiter.acquire("a", T0 + timedelta(seconds=2)) is not None


def test_no_limit_grants_everything(make: Make) -> None:
    limiter = make(None, timedelta(hours=1))
    assert all(limiter.acquire("a", T0) is None for _ in range(1000))


def test_old_addresses_are_forgotten() -> None:
    limiter = RateLimiter(5, timedelta(minutes=10))
    for n in range(100):
        limiter.acquire(f"198.51.100.{n}", T0)
    limiter.acquire("a", T0 + timedelta(minutes=11))
    assert set(limiter._granted) == {"a"}


def test_refusals_have_a_budget_of_their_own(make: Make) -> None:
    limiter = make(2, timedelta(hours=1), refusal_limit=3)
    for minute in range(3):
        at = T0 + timedelta(minutes=minute)
        assert limiter.acquire("a", at) is None
        limiter.release("a", at, refused=True)  # a refusal costs no booking...
    # ...but the fourth attempt within the hour is refused before it is tried.
    assert limiter.acquire("a", T0 + timedelta(minutes=10)) == 50 * 60
    assert limiter.acquire("b", T0 + timedelta(minutes=10)) is None
    # The first refusal leaves the window at 11:00.
    assert limiter.acquire("a", T0 + timedelta(hours=1)) is None


def test_a_replay_given_back_is_not_a_refusal(make: Make) -> None:
    limiter = make(5, timedelta(hours=1), refusal_limit=1)
    assert limiter.acquire("a", T0) is None
    limiter.release("a", T0)
    assert limiter.acquire("a", T0 + timedelta(seconds=1)) is None


def test_refusals_are_limited_even_when_bookings_are_not(make: Make) -> None:
    limiter = make(None, timedelta(hours=1), refusal_limit=1)
    assert limiter.acquire("a", T0) is None
    limiter.release("a", T0, refused=True)
    assert limiter.acquire("a", T0 + timedelta(seconds=1)) is not None


def test_an_ipv6_client_is_counted_by_its_64(make: Make) -> None:
    limiter = make(1, timedelta(hours=1))
    assert limiter.acquire("2001:db8:1:2::1", T0) is None
    assert limiter.acquire("2001:db8:1:2:ffff::9", T0) is not None  # the same subscriber
    assert limiter.acquire("2001:db8:1:3::1", T0) is None  # the next /64 is someone else
    assert limiter.acquire("::ffff:198.51.100.7", T0) is None
    assert limiter.acquire("198.51.100.7", T0) is not None  # IPv4 seen through IPv6
    assert client_key("not an address") == "not an address"
