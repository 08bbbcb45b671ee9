"""The refresher runs cache rebuilds on one thread of its own, each key once while queued.

Jobs are held with events, never timed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from daemon.refresh import Refresher

WAIT = 30  # seconds a test waits before failing (never reached when right)


@pytest.fixture
def refresher() -> Iterator[Refresher]:
    made = Refresher(name="test-refresh")
    yield made
    made.close()


def holding(refresher: Refresher) -> tuple[threading.Event, threading.Event]:
    """Occupy the refresher's thread until the returned ``release`` is set."""
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        assert release.wait(WAIT)

    assert refresher.submit("hold", hold)
    assert started.wait(WAIT)
    return started, release


def test_jobs_run_in_order_on_one_thread_of_its_own(refresher: Refresher) -> None:
    ran: list[tuple[str, str]] = []
    _, release = holding(refresher)

    def job(key: str) -> Callable[[], None]:
        return lambda: ran.append((key, threading.current_thread().name))

    for key in ("a", "b", "c"):
        assert refresher.submit(key, job(key))
    release.set()
    assert refresher.wait_idle(WAIT)
    assert ran == [("a", "test-refresh"), ("b", "test-refresh"), ("c", "test-refresh")]


def test_a_key_already_queued_is_not_queued_again(refresher: Refresher) -> None:
    ran: list[str] = []
    _, release = holding(refresher)
    assert refresher.submit("a", lambda: ran.append("first"))
    assert not refresher.submit("a", lambda: ran.append("second"))
    release.set()
    assert refresher.wait_idle(WAIT)
    assert ran == ["first"]
    # Once it ran, the key is taken again: what it was computed from may have moved.
    assert refresher.submit("a", lambda: ran.append("third"))
    assert refresher.wait_idle(WAIT)
    assert ran == ["first", "third"]


def test_a_failing_job_is_logged_and_the_next_one_runs(
    refresher: Refresher, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def failing() -> None:
        raise OSError("disk")

    with caplog.at_level(logging.ERROR, logger="daemon.refresh"):
        assert refresher.submit("bad", failing)
        assert refresher.submit("good", lambda: ran.append("good"))
        assert refresher.wait_idle(WAIT)
    assert ran == ["good"]
    assert "refreshing 'bad' failed" in caplog.text
    assert "OSError: disk" in caplog.text


def test_close_runs_what_is_queued_and_then_refuses(refresher: Refresher) -> None:
    ran: list[str] = []
    _, release = holding(refresher)
    assert refresher.submit("queued", lambda: ran.append("queued"))
    closing = threading.Thread(target=refresher.close)
    closing.start()
    release.set()
    closing.join(WAIT)
    assert not closing.is_alive()
    assert ran == ["queued"], "a queued job may be what a request waits for"
    assert not refresher.submit("late", lambda: ran.append("late"))
    assert ran == ["queued"]
