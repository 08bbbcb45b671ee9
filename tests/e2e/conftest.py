"""End-to-end: the whole daemon over real HTTP against a real Radicale (or Xandikos).

The servers, a desk on them, and a desk as a subprocess, as fixtures; what they hand the
tests (:class:`~tests.e2e.harness.Desk`, :class:`~tests.e2e.harness.Process`) is in
``harness.py``, which a test imports (never this file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.desk import monday, write_config
from tests.e2e.harness import LIVE, Desk, Process, running_desk
from tests.servers import CalDAVServer, CalendarHandle, close_app_clients, free_port
from tests.servers.radicale import RadicaleServer
from tests.servers.xandikos import XandikosServer


@pytest.fixture(autouse=True)
def _close_app_clients() -> Iterator[None]:
    yield
    close_app_clients()


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalDAVServer]:
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    with server:
        yield server


@pytest.fixture(scope="module")
def xandikos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalDAVServer]:
    server = XandikosServer(tmp_path_factory.mktemp("xandikos"))
    with server:
        yield server


@pytest.fixture
def desk(radicale: CalDAVServer, tmp_path: Path) -> Iterator[Desk]:
    with running_desk(radicale, tmp_path) as running:
        yield running


@pytest.fixture(params=["radicale", "xandikos"])
def caldav_desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Desk]:
    """A desk on each real CalDAV server in turn."""
    with running_desk(request.getfixturevalue(request.param), tmp_path) as running:
        yield running


@pytest.fixture
def process_desk(
    radicale: CalDAVServer, tmp_path: Path
) -> Iterator[tuple[Process, dict[str, CalendarHandle]]]:
    calendars = {"ana": radicale.new_calendar(), "bruno": radicale.new_calendar()}
    port = free_port()
    path = write_config(tmp_path, calendars, port=port, settings=LIVE)
    process = Process(path, port, monday(7, 0), tmp_path / "daemon.log")
    try:
        yield process, calendars
    finally:
        process.stop()
