"""What the browser tests share besides their fixtures: Chromium, viewports, the served desk.

Debian's headless Chromium, driven through Playwright; the fixtures that start it and
serve a desk to it are in this folder's ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import ViewportSize

from tests.daemon.desk import Desk

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
    """A test desk served by waitress at ``url``."""

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
