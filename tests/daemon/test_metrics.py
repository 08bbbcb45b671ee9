"""The daemon's CPU by thread group, as ``/metrics`` exposes it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from daemon.metrics import Metrics, _ThreadCpu, thread_group

THREADS = "expediente_thread_cpu_seconds_total"


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("waitress-3", "waitress"),
        ("outbox-lane_12", "outbox-lane"),
        ("sync_0", "sync"),
        ("Thread-7 (idle_conn_watch_task)", "Thread (idle_conn_watch_task)"),
        ("MainThread", "MainThread"),
        ("refresh", "refresh"),
        ("7", "7"),  # nothing left without the numbers: the name as it is
    ],
)
def test_a_threads_group_is_its_name_without_its_numbers(name: str, group: str) -> None:
    assert thread_group(name) == group


def _burn(seconds: float, burnt: threading.Event, done: threading.Event) -> None:
    # The thread's own CPU clock, not the wall clock: the work is what is measured.
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        sum(range(1000))
    burnt.set()
    done.wait()


def test_a_groups_cpu_adds_up_its_threads_and_keeps_what_ended_threads_used() -> None:
    metrics = Metrics()
    done = threading.Event()
    burnt = [threading.Event(), threading.Event()]
    burners = [
        threading.Thread(target=_burn, args=(0.3, event, done), name=f"burner-{n}")
        for n, event in enumerate(burnt)
    ]
    for thread in burners:
        thread.start()
    try:
        for event in burnt:
            assert event.wait(60)
        metrics.render()
        alive = metrics.value(THREADS, threads="burner")
        assert alive >= 0.5  # two threads of 0.3 s each, counted in clock ticks
        assert metrics.value(THREADS, threads="MainThread") > 0
    finally:
        done.set()
        for thread in burners:
            thread.join()
    metrics.render()
    assert metrics.value(THREADS, threads="burner") >= alive  # ended: kept, never down


def test_without_proc_the_family_is_empty(tmp_path: Path) -> None:
    (family,) = _ThreadCpu(tmp_path / "no-proc").collect()
    assert family.samples == []
