"""Real CalDAV servers for the connector tests: one of each per session, a calendar per test.

``caldav_server`` is parametrized over ``radicale`` and ``xandikos`` so a test using it (or
``calendar_handle``) runs against both. Starting a server costs about a second; creating a
calendar a few milliseconds, so every test gets an empty calendar of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import CalDAVServer, CalendarHandle, close_app_clients
from tests.servers.radicale import RadicaleServer
from tests.servers.xandikos import XandikosServer

SERVERS = ("radicale", "xandikos")


def make_server(kind: str, workdir: Path) -> CalDAVServer:
    if kind == "radicale":
        return RadicaleServer(workdir)
    if kind == "xandikos":
        return XandikosServer(workdir)
    raise ValueError(f"unknown server {kind!r}")


@pytest.fixture(autouse=True)
def _close_app_clients() -> Iterator[None]:
    """The technician's-app clients a test opened are closed when it ends."""
    yield
    close_app_clients()


@pytest.fixture(scope="session")
def radicale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalDAVServer]:
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    with server:
        yield server


@pytest.fixture(scope="session")
def xandikos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalDAVServer]:
    server = XandikosServer(tmp_path_factory.mktemp("xandikos"))
    with server:
        yield server


@pytest.fixture(params=SERVERS)
def caldav_server(request: pytest.FixtureRequest) -> CalDAVServer:
    """Each real server in turn (session-scoped underneath)."""
    server: CalDAVServer = request.getfixturevalue(f"{request.param}_server")
    return server


@pytest.fixture
def calendar_handle(caldav_server: CalDAVServer) -> CalendarHandle:
    """A fresh, empty calendar on the server under test."""
    return caldav_server.new_calendar()


@pytest.fixture(params=SERVERS)
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CalDAVServer]:
    """A server of each kind that this test alone uses, so it may stop it."""
    kind = str(request.param)
    server = make_server(kind, tmp_path / kind)
    with server:
        yield server
