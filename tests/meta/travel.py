"""A pytest plugin that moves Python's clock to ``EXPEDIENTE_TEST_DATE`` for a whole run.

Loaded only by tests/meta/test_dates.py (``-p tests.meta.travel``) in a child pytest, so the
date-sensitive part of the suite is shown to pass at dates far from today. Time keeps
flowing from there (``tick=True``): servers, timeouts and token expiry behave as usual.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
import time_machine

_traveller: time_machine.travel | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _traveller
    destination = datetime.fromisoformat(os.environ["EXPEDIENTE_TEST_DATE"])
    _traveller = time_machine.travel(destination, tick=True)
    _traveller.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _traveller is not None:
        _traveller.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Read on purpose: the parent test checks the move took effect.
    terminalreporter.write_line(f"travelled: {datetime.now(UTC).date().isoformat()}")
