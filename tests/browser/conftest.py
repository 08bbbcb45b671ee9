"""A real browser (Debian's headless Chromium through Playwright) against a served desk.

One browser for the whole session; each test gets a fresh desk (store, fixed clock on
Monday 2026-11-30 07:00 in São Paulo, both technicians synced) served by waitress on a
free port of 127.0.0.1, and a fresh browser context (cookies, viewport, time zone).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from daemon.web.server import HttpServer
from tests.daemon.desk import Desk, monday
from tests.web.client import pages_desk

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)


@dataclass
class Served:
    desk: Desk
    url: str


def require_chromium(path: Path, environ: Mapping[str, str]) -> None:
    """Skip without Chromium on a developer's machine; fail in CI, where a skip would pass."""
    if path.exists():
        return
    message = f"{path} is missing: apt-get install chromium"
    if environ.get("CI"):
        pytest.fail(f"{message} (CI is set: the browser tests must run here)", pytrace=False)
    pytest.skip(message)


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
