"""sd_notify over a real datagram socket; journald-aware log format."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import waitress.utilities

import daemon.log
from daemon.log import JournalFormatter, QueueDepthSummary
from daemon.systemd import Notifier
from tests.ticks import Ticks


def test_notify_sends_datagrams_to_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"})
        assert notifier.enabled and notifier.watchdog_interval == 10.0
        assert notifier.ready("serving")
        assert server.recv(256) == b"READY=1\nSTATUS=serving"
        assert notifier.watchdog()
        assert server.recv(256) == b"WATCHDOG=1"


def test_without_systemd_notify_is_a_quiet_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready() and notifier.watchdog_interval is None


def test_watchdog_for_another_pid_is_ignored() -> None:
    assert Notifier({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_journal_lines_carry_priority_and_no_timestamp() -> None:
    formatter = JournalFormatter("%(name)s: %(message)s")
    record = logging.LogRecord(
        "expediente", logging.WARNING, __file__, 1, "calendar down", (), None
    )
    assert formatter.format(record) == "<4>expediente: calendar down"


# ------------------------------------------------------------ waitress queue warnings


def queue_logger(name: str, summary: QueueDepthSummary) -> tuple[logging.Logger, list[str]]:
    """A logger like waitress's with the summary on it; returns it and the lines it wrote."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers[:] = [Collect()]
    logger.filters[:] = [summary]
    return logger, lines


def test_queue_warnings_under_overload_become_one_line_a_minute() -> None:
    ticks = Ticks()
    summary = QueueDepthSummary(60, monotonic=ticks)
    logger, lines = queue_logger("test.waitress.queue.overload", summary)
    # 150 s of overload, a warning every 10 ms, the queue 1..40 deep: 15,000 warnings.
    for n in range(15_000):
        ticks.now = n * 0.01
        logger.warning("Task queue depth is %d", 1 + n % 40)
    ticks.now = 200.0
    summary.flush(logger)
    assert lines[0] == "Task queue depth is 1", "the first one shows the overload at once"
    assert len(lines) == 4
    assert lines[1:] == [
        "request queue was 40 deep at most, 6000 times in the last 60 s (every worker thread busy)",
        "request queue was 40 deep at most, 6000 times in the last 60 s (every worker thread busy)",
        "request queue was 40 deep at most, 2999 times in the last 80 s (every worker thread busy)",
    ]


def test_a_quiet_minute_ends_a_burst_and_other_records_pass() -> None:
    ticks = Ticks()
    summary = QueueDepthSummary(60, monotonic=ticks)
    logger, lines = queue_logger("test.waitress.queue.quiet", summary)
    logger.warning("Task queue depth is %d", 3)
    logger.warning("Task queue depth is %d", 7)
    logger.warning("something else entirely")
    summary.flush(logger)  # the minute is not over: nothing yet
    ticks.now = 61.0
    summary.flush(logger)
    ticks.now = 200.0
    summary.flush(logger)  # nothing counted since: the burst is over, quietly
    logger.warning("Task queue depth is %d", 2)
    assert lines == [
        "Task queue depth is 3",
        "something else entirely",
        "request queue was 7 deep at most, 1 times in the last 61 s (every worker thread busy)",
        "Task queue depth is 2",
    ]


def test_setup_puts_the_summary_on_waitress_queue_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    queue = logging.getLogger("waitress.queue")
    monkeypatch.setattr(queue, "filters", [])
    monkeypatch.setattr(daemon.log.queue_summary, "_monotonic", lambda: 0.0)
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))  # setup() turns them off
    daemon.log.setup("INFO", journald=False)
    daemon.log.setup("INFO", journald=False)  # a reload sets logging up again
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    assert record.thread is None and record.process is None, "not looked up per record"
    assert queue.filters == [daemon.log.queue_summary]
    seen: list[logging.LogRecord] = []
    monkeypatch.setattr(root.handlers[0], "emit", seen.append)
    for depth in range(1, 501):
        waitress.utilities.queue_logger.warning("Task queue depth is %d", depth)
    assert [r.getMessage() for r in seen] == ["Task queue depth is 1"]
