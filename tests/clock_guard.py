"""What the suite's clock guard (``no_real_clock`` in ``tests/conftest.py``) raises and says.

Kept out of the conftest so that a test can name the error (``tests/meta/test_dates.py``)
without importing a conftest.
"""

from __future__ import annotations


class RealClockForbidden(AssertionError):
    """A test reached the system clock without opting in."""


FORBIDDEN = (
    "this test read the real clock: pass the test's FixedClock to the code under test "
    "(Daemon(clock=...), cli.main(argv, clock), ...), or mark the test "
    "@pytest.mark.real_clock if it really needs the time of day"
)
