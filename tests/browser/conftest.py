"""A real browser (Debian's headless Chromium through Playwright) against a served desk.

One browser for the whole session; each test gets a fresh desk (store, fixed clock on
Monday 2026-11-30 07:00 in São Paulo, both technicians synced) served by waitress on a
free port of 127.0.0.1, and a fresh browser context (cookies, viewport, time zone).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from daemon.web.server import HttpServer
from tests.browser.harness import ARGS, CHROMIUM, DESKTOP, Served, require_chromium
from tests.daemon.desk import monday
from tests.e2e.harness import Desk as LiveDesk
from tests.e2e.harness import running_desk
from tests.servers import CalDAVServer, close_app_clients
from tests.servers.radicale import RadicaleServer
from tests.web.client import pages_desk


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    require_chromium(CHROMIUM, os.environ)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    desk = pages_desk(tmp_path, monday(7, 0))
    server = HttpServer(desk.app, "127.0.0.1", 0, threads=2)
    server.start()
    try:
        yield Served(desk, server.url)
    finally:
        server.stop(timeout=2)
        desk.store.close()


@pytest.fixture
def page(browser: Browser, served: Served) -> Iterator[Page]:
    """A fresh context in the desk's own zone and language (no cookies yet)."""
    context = browser.new_context(
        viewport=DESKTOP, base_url=served.url, locale="pt-BR", timezone_id="America/Sao_Paulo"
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalDAVServer]:
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    with server:
        yield server


@pytest.fixture
def live(radicale: CalDAVServer, tmp_path: Path) -> Iterator[LiveDesk]:
    """The whole daemon (fixed clock at Monday 07:00) on a real Radicale, its two
    technicians' calendars synced once; the test flushes the outbox when it wants the
    calendar writes done."""
    try:
        with running_desk(radicale, tmp_path) as running:
            yield running
    finally:
        close_app_clients()
