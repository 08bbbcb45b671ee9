"""Suite-wide settings: reproducible property tests, and no test reads the real clock.

Deadlines measure the machine, not the code (CI shares two cores with other work);
performance is measured in bench/ instead.

The daemon reads the time only through ``daemon.clock.wall_clock``. Here it raises for every
test that does not opt in with ``@pytest.mark.real_clock``: a test that forgets to hand its
fixed clock to some part of the daemon fails today, not on the day real time passes the
test's fixed date (main once turned red on its own that way).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from datetime import datetime

import pytest
from hypothesis import settings

import daemon.clock
from tests.clock_guard import FORBIDDEN, RealClockForbidden

settings.register_profile("default", deadline=None, max_examples=150, derandomize=True)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def no_real_clock(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """The stacks of the forbidden reads so far; a test that provokes one on purpose clears it."""
    reads: list[str] = []
    if request.node.get_closest_marker("real_clock") is not None:
        yield reads
        return

    def forbidden() -> datetime:
        # Recorded as well as raised: a read in a guarded background job would otherwise
        # be logged and swallowed, and the test could pass on the wall clock's behalf.
        reads.append("".join(traceback.format_stack(limit=8)))
        raise RealClockForbidden(FORBIDDEN)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(daemon.clock, "wall_clock", forbidden)
        yield reads
    if reads:
        pytest.fail(f"{FORBIDDEN}\nfirst read:\n{reads[0]}", pytrace=False)
