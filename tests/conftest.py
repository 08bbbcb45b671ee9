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
from pathlib import Path

import pytest
from hypothesis import settings

import daemon.clock
from tests.clock_guard import FORBIDDEN, RealClockForbidden
from tests.servers.postgres import PostgresServer

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session (Debian's package; see tests/servers/postgres.py);
    each test takes a database of its own from it."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_at(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str | Path:
    """Where a test store lives, once per backend: an SQLite file, or a fresh PostgreSQL
    database's connection string (``tests.daemon.store_helpers.store_at`` opens either)."""
    if request.param == "sqlite":
        return tmp_path_factory.mktemp("store") / "s.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()
