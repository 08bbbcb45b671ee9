"""Bounded exponential backoff with full jitter, for idempotent calendar requests.

Only requests that are safe to repeat go through here (GET, PROPFIND, REPORT): a PUT or
DELETE whose answer was lost may have happened, and repeating it blindly can turn success
into a false conflict. Those are retried by the daemon's outbox instead, which re-reads
first. The wait before attempt ``n`` (counting from 0) is drawn uniformly from
``[0, min(max_delay, base_delay * 2**n)]`` ("full jitter", so many daemons restarting at
once do not hammer a recovering server in step); a server's ``Retry-After`` is a floor. A
``Retry-After`` longer than ``max_delay`` ends the retries at once: the caller keeps its
last good data and comes back on its own schedule rather than blocking here.

:func:`retry_after_seconds` is the one reading of a ``Retry-After`` header, for the
calendar adapters and for the daemon's webhooks alike.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from connectors.base import Unavailable

__all__ = ["RetryPolicy", "backoff_delay", "http_date", "retry", "retry_after_seconds"]

T = TypeVar("T")


class RandomSource(Protocol):
    """Anything with ``random() -> float`` in ``[0, 1)``, e.g. :class:`random.Random`."""

    def random(self) -> float: ...


def backoff_delay(attempt: int, *, base_delay: float, max_delay: float, rng: RandomSource) -> float:
    """The full-jitter wait after failed attempt number ``attempt`` (0 for the first)."""
    ceiling = min(max_delay, base_delay * 2.0 ** min(attempt, 62))
    return rng.random() * ceiling


def retry(
    call: Callable[[], T],
    *,
    attempts: int,
    base_delay: float,
    max_delay: float,
    retry_on: tuple[type[BaseException], ...] = (Unavailable,),
    sleep: Callable[[float], None] = time.sleep,
    rng: RandomSource | None = None,
) -> T:
    """Run ``call`` up to ``attempts`` times while it raises one of ``retry_on``.

    Returns the first result; re-raises the last error once the attempts are spent, or at
    once when the error asks for a longer wait than ``max_delay`` (``retry_after``). Any
    other exception passes through untouched. ``sleep`` and ``rng`` are injectable so tests
    neither wait nor depend on chance.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    source: RandomSource = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not secrets
    for attempt in range(attempts):
        try:
            return call()
        except retry_on as exc:
            if attempt + 1 >= attempts:
                raise
            delay = backoff_delay(attempt, base_delay=base_delay, max_delay=max_delay, rng=source)
            retry_after = getattr(exc, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > 0:
                if retry_after > max_delay:
                    raise
                delay = max(delay, float(retry_after))
            sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


@dataclass(frozen=True)
class RetryPolicy:
    """How an adapter retries its idempotent requests; ``attempts=1`` disables retries."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: RandomSource | None = field(default=None, compare=False)

    def run(self, call: Callable[[], T]) -> T:
        """``retry(call)`` with this policy, retrying :class:`Unavailable` only."""
        return retry(
            call,
            attempts=self.attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            retry_on=(Unavailable,),
            sleep=self.sleep,
            rng=self.rng,
        )


def retry_after_seconds(value: object, now: datetime | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value; ``None`` when there is none.

    Delta-seconds are read as a number (a negative one is 0). An HTTP date is measured
    from ``now``: the answer's own ``Date`` header (:func:`http_date`) or the daemon's
    clock, so no clock is read here; without ``now`` a date gives ``None``, as does text
    that is neither. A date without a zone is GMT, as every HTTP date is.
    """
    if not value:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    when = http_date(text)
    if when is None or now is None:
        return None
    return max(0.0, (when - now).total_seconds())


def http_date(value: object) -> datetime | None:
    """An HTTP date header (``Date``, ``Retry-After``) as an aware datetime, or ``None``."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(str(value).strip())
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
