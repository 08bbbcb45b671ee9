"""A monotonic clock a test moves by hand, for code that takes one (``monotonic=``)."""

from __future__ import annotations


class Ticks:
    """Seconds that pass only when the test sets ``now``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
