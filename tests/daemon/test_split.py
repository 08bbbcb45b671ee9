"""The pipes between the web process and its background worker (daemon/split.py), with a
real fork: wake-ups, readiness, the worker's metrics and the lifeline."""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from daemon.split import Worker, WorkerEnd, fork_worker

WOKEN, NOT_WOKEN, PARENT_GONE = 7, 3, 5


def _forked(run: Callable[[WorkerEnd], int]) -> Worker:
    # Other tests' servers run threads in this process; the child only runs ``run``, which
    # takes no lock those threads could hold. (Python 3.12 warns of that in general.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return fork_worker(run)


def _waits_for_a_wake(end: WorkerEnd) -> int:
    woken, gone = threading.Event(), threading.Event()
    end.listen(woken.set, gone.set, lambda: [("expediente_syncs_total", {"calendar": "ana"}, 4.0)])
    end.ready()
    for _ in range(600):
        if woken.is_set():
            return WOKEN
        if gone.is_set():
            return PARENT_GONE
        time.sleep(0.05)
    return NOT_WOKEN


def _exit_code(worker: Worker) -> int | None:
    for _ in range(600):
        if not worker.running():
            return worker.returncode
        time.sleep(0.05)
    worker.stop(timeout=1)
    raise AssertionError("the worker did not end")


@contextmanager
def _worker(run: Callable[[WorkerEnd], int]) -> Iterator[Worker]:
    worker = _forked(run)
    try:
        yield worker
    finally:
        worker.stop(timeout=5)  # closes the pipes, whether or not it still runs


def test_the_worker_says_ready_answers_for_its_metrics_and_is_woken() -> None:
    with _worker(_waits_for_a_wake) as worker:
        assert worker.wait_ready()
        assert worker.samples() == [("expediente_syncs_total", {"calendar": "ana"}, 4.0)]
        assert worker.samples() == worker.samples(), "each scrape gets its own answer"
        worker.wake()
        assert _exit_code(worker) == WOKEN


def test_the_worker_learns_that_the_web_process_is_gone() -> None:
    with _worker(_waits_for_a_wake) as worker:
        assert worker.wait_ready()
        # The pipe's end closed, as the kernel closes it when the web process dies (its fd
        # number now /dev/null, for stop() to close).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, worker._wake)
        os.close(devnull)
        assert _exit_code(worker) == PARENT_GONE


def test_a_worker_that_dies_before_it_is_ready_is_seen_gone() -> None:
    with _worker(lambda end: 9) as worker:
        assert not worker.wait_ready()
        assert not worker.running()
        assert worker.returncode == 9


def test_a_worker_that_does_not_answer_for_its_metrics_leaves_them_out() -> None:
    def silent(end: WorkerEnd) -> int:
        end.ready()
        time.sleep(60)
        return 0

    with _worker(silent) as worker:
        assert worker.wait_ready()
        assert worker.samples() == []


@pytest.mark.parametrize("timeout", [0.5])
def test_stop_kills_a_worker_that_does_not_stop(timeout: float) -> None:
    def stubborn(end: WorkerEnd) -> int:
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        end.ready()
        time.sleep(60)
        return 0

    worker = _forked(stubborn)
    assert worker.wait_ready()
    assert worker.stop(timeout=timeout) == -9


def test_a_scrape_after_one_that_timed_out_gets_its_own_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow_once(end: WorkerEnd) -> int:
        answers = iter([1.5, 0.0])  # the first answer comes after the scrape gave up

        def samples() -> list[tuple[str, dict[str, str], float]]:
            time.sleep(next(answers, 0.0))
            return [("expediente_noshows_total", {}, 1.0)]

        gone = threading.Event()
        end.listen(lambda: None, gone.set, samples)
        end.ready()
        gone.wait(60)
        return 0

    monkeypatch.setattr("daemon.split.METRICS_TIMEOUT_S", 1.0)
    with _worker(slow_once) as worker:
        assert worker.wait_ready()
        assert worker.samples() == [], "timed out"
        assert worker.samples() == [("expediente_noshows_total", {}, 1.0)]
