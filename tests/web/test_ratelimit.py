"""The booking rate limiter: a sliding window on a clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.web.ratelimit import RateLimiter

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_a_sliding_window_per_key() -> None:
    limiter = RateLimiter(2, timedelta(hours=1))
    assert limiter.acquire("a", T0) is None
    assert limiter.acquire("a", T0 + timedelta(minutes=20)) is None
    assert limiter.acquire("a", T0 + timedelta(minutes=30)) == 30 * 60
    assert limiter.acquire("b", T0 + timedelta(minutes=30)) is None
    # The first grant leaves the window at 11:00 exactly; the second at 11:20.
    assert limiter.acquire("a", T0 + timedelta(hours=1)) is None
    assert limiter.acquire("a", T0 + timedelta(hours=1, minutes=1)) == 19 * 60


def test_a_released_grant_is_given_back() -> None:
    limiter = RateLimiter(1, timedelta(hours=1))
    assert limiter.acquire("a", T0) is None
    limiter.release("a", T0)
    assert limiter.acquire("a", T0 + timedelta(seconds=1)) is None
    assert limiter.acquire("a", T0 + timedelta(seconds=2)) is not None


def test_no_limit_grants_everything() -> None:
    limiter = RateLimiter(None, timedelta(hours=1))
    assert all(limiter.acquire("a", T0) is None for _ in range(1000))


def test_old_addresses_are_forgotten() -> None:
    limiter = RateLimiter(5, timedelta(minutes=10))
    for n in range(100):
        limiter.acquire(f"198.51.100.{n}", T0)
    limiter.acquire("a", T0 + timedelta(minutes=11))
    assert set(limiter._granted) == {"a"}
