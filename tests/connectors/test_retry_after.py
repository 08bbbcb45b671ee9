"""The one reading of ``Retry-After`` (connectors.retry), used by both calendar adapters and
the daemon's webhooks: numbers and HTTP dates, measured without reading a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from caldav.lib.error import RateLimitError

from connectors.base import Unavailable
from connectors.caldav.transport import _translate
from connectors.retry import http_date, retry_after_seconds

SENT = "Mon, 30 Nov 2026 10:00:00 GMT"
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), (" 7 ", 7.0), ("2.5", 2.5), ("-3", 0.0), (120, 120.0)],
)
def test_delta_seconds(value: object, seconds: float) -> None:
    assert retry_after_seconds(value, None) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "Mon, 99 Foo 2026"])
def test_absent_or_unreadable_is_none(value: object) -> None:
    assert retry_after_seconds(value, NOW) is None


def test_a_date_is_measured_from_the_answers_own_date() -> None:
    assert retry_after_seconds("Mon, 30 Nov 2026 10:02:00 GMT", http_date(SENT)) == 120.0
    assert retry_after_seconds("Mon, 30 Nov 2026 09:00:00 GMT", http_date(SENT)) == 0.0


def test_a_date_without_a_reference_is_none_rather_than_a_clock_read() -> None:
    assert retry_after_seconds("Mon, 30 Nov 2026 10:02:00 GMT", None) is None
    assert retry_after_seconds("Mon, 30 Nov 2026 10:02:00 GMT", http_date(None)) is None


def test_a_date_is_measured_from_any_aware_now() -> None:
    brasilia = timezone(timedelta(hours=-3))
    now = datetime(2026, 11, 30, 7, 0, tzinfo=brasilia)  # 10:00 UTC
    assert retry_after_seconds("Mon, 30 Nov 2026 10:00:30 GMT", now) == 30.0


def test_http_date_without_a_zone_is_gmt() -> None:
    assert http_date("Mon, 30 Nov 2026 10:00:00 -0000") == NOW
    assert http_date(SENT) == NOW
    assert http_date("yesterday") is None


def test_a_caldav_429_date_is_measured_by_the_adapters_clock() -> None:
    """The caldav library raises RateLimitError with the header's text but without the
    answer's Date, so the adapter's clock (the daemon's) measures it; without one, no wait."""
    error = RateLimitError(retry_after="Mon, 30 Nov 2026 10:05:00 GMT", status=429)
    found = _translate(error, "REPORT", "cal", lambda: NOW)
    assert isinstance(found, Unavailable) and found.retry_after == 300.0
    assert _translate(error, "REPORT", "cal", None).retry_after is None  # type: ignore[attr-defined]
    seconds = RateLimitError(retry_after="30", status=429)
    assert _translate(seconds, "REPORT", "cal").retry_after == 30.0  # type: ignore[attr-defined]
