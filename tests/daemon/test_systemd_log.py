"""sd_notify over a real datagram socket; journald-aware log format."""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import waitress.utilities

import daemon.log
from daemon.log import BurstSummary, JournalFormatter, QueueDepthSummary, RepeatSummary
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


def queue_logger(name: str, summary: BurstSummary) -> tuple[logging.Logger, list[str]]:
    """A logger like waitress's with the summary on it; returns it and the lines it wrote
    (a line that carries a traceback ends with " +traceback")."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage() + (" +traceback" if record.exc_info else ""))

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


def test_a_warning_each_request_repeats_becomes_one_line_a_minute() -> None:
    """The database away for 150 s, a request every 10 ms: each answer's warning names
    its error; the log shows the first, then a line a minute with the last and the count."""
    ticks = Ticks()
    summary = RepeatSummary(60, monotonic=ticks)
    logger, lines = queue_logger("test.expediente.web.outage", summary)
    logger.setLevel(logging.INFO)
    for n in range(15_000):
        ticks.now = n * 0.01
        logger.warning("answering 503: %s", f"connection refused ({n})")
        if n == 100:
            logger.info("booked %s", "s1")  # an event, not a repeat
            logger.warning("WhatsApp webhook refused: %s", "no secret")  # another kind
    ticks.now = 200.0
    summary.flush(logger)
    assert lines == [
        "answering 503: connection refused (0)",
        "booked s1",
        "WhatsApp webhook refused: no secret",
        "answering 503: connection refused (6000) (and 5999 more like it in the last 60 s)",
        "answering 503: connection refused (12000) (and 5999 more like it in the last 60 s)",
        "answering 503: connection refused (14999) (and 2998 more like it in the last 80 s)",
    ]


def test_a_bug_hit_by_every_request_shows_its_traceback_once() -> None:
    ticks = Ticks()
    summary = RepeatSummary(60, monotonic=ticks)
    logger, lines = queue_logger("test.expediente.web.bug", summary)
    for n in range(3):
        ticks.now = n * 30.0
        try:
            raise KeyError("field")
        except KeyError:
            logger.exception("bug while answering %s %s", "GET", f"/x/{n}")
    assert lines == [
        "bug while answering GET /x/0 +traceback",
        "bug while answering GET /x/2 (and 1 more like it in the last 60 s)",
    ]


def test_a_repeat_whose_arguments_do_not_fit_is_counted_not_raised() -> None:
    ticks = Ticks()
    summary = RepeatSummary(60, monotonic=ticks)
    logger, lines = queue_logger("test.expediente.web.args", summary)
    logger.warning("answering 503: %s", "down")
    logger.warning("answering 503: %s", "down", "one too many")  # held back, not raised
    ticks.now = 61.0
    summary.flush(logger)
    assert lines == [
        "answering 503: down",
        "answering 503: %s (and 0 more like it in the last 61 s)",
    ]


def test_setup_puts_the_repeat_summary_on_the_loggers_that_warn_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    for name in ("waitress.queue", *daemon.log.REPEATING):
        monkeypatch.setattr(logging.getLogger(name), "filters", [])
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))
    daemon.log.setup("INFO", journald=False)
    daemon.log.setup("INFO", journald=False)
    assert daemon.log.REPEATING == ("expediente.web", "expediente.whatsapp")
    for name in daemon.log.REPEATING:
        assert logging.getLogger(name).filters == [daemon.log.repeat_summary]


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


# ------------------------------------------------------------ the daemon's writer thread


class Gate(io.StringIO):
    """A stderr that takes nothing until it is opened: a journald that stalls. Each write
    waits for the gate (at most ``WAIT`` s, so a broken test fails instead of hanging)."""

    WAIT = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.opened = threading.Event()
        self.entered = threading.Event()  # a write is waiting at the gate

    def write(self, text: str) -> int:
        self.entered.set()
        self.opened.wait(self.WAIT)
        return super().write(text)


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """A closed gate for sys.stderr (see :func:`set_up`), and the root logger as it was
    once the test ends."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))
    gate = Gate()
    try:
        yield gate
    finally:
        gate.opened.set()
        daemon.log.stop()


def set_up(gate: Gate, monkeypatch: pytest.MonkeyPatch, limit: int = daemon.log.QUEUE_MAX) -> None:
    """The daemon's logging with ``gate`` as stderr. Done in the test itself: pytest puts
    its own sys.stderr back between a fixture's setup and the test."""
    monkeypatch.setattr(sys, "stderr", gate)
    daemon.log.setup("INFO", journald=False, background=True, limit=limit)


def messages(gate: Gate) -> list[str]:
    """The lines written, without their timestamps."""
    return [line.split(" ", 2)[2] for line in gate.getvalue().splitlines() if line[:1].isdigit()]


def test_the_daemon_logs_without_waiting_for_stderr(
    stderr: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_up(stderr, monkeypatch)
    log = logging.getLogger("test.background")
    # Written by the thread that logs, the first line would wait at the gate for 10 s
    # and the assertion below would find it written.
    log.info("booked %s", "s-1")
    try:
        raise ValueError("the calendar answered nonsense")
    except ValueError:
        log.exception("sync failed")
    log.warning("still here")
    assert stderr.getvalue() == "", "nothing written by the threads that logged"
    stderr.opened.set()
    daemon.log.stop()  # writes what is left, as the daemon's exit does
    assert messages(stderr) == [
        "INFO test.background: booked s-1",
        "ERROR test.background: sync failed",
        "WARNING test.background: still here",
    ]
    assert "ValueError: the calendar answered nonsense" in stderr.getvalue()
    log.info("after the writer stopped")  # written directly again, not lost
    assert messages(stderr)[-1] == "INFO test.background: after the writer stopped"


def test_lines_past_the_queue_limit_are_dropped_and_counted(
    stderr: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_up(stderr, monkeypatch, limit=2)
    log = logging.getLogger("test.background.limit")
    log.info("line 0")
    assert stderr.entered.wait(Gate.WAIT), "the writer took line 0 and waits at the gate"
    for n in range(1, 11):
        log.info("line %d", n)  # two fit in the queue; eight are dropped
    stderr.opened.set()
    daemon.log.stop()
    assert messages(stderr) == [
        "INFO test.background.limit: line 0",
        "WARNING expediente.log: 8 log lines dropped: stderr did not take them as fast "
        "as they came",
        "INFO test.background.limit: line 1",
        "INFO test.background.limit: line 2",
    ]


def test_setting_up_again_ends_the_previous_writer(
    stderr: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr.opened.set()
    set_up(stderr, monkeypatch)
    first = [t for t in threading.enumerate() if t.name == "log"]
    logging.getLogger("test.background.again").info("before")
    set_up(stderr, monkeypatch)  # set up again, as a second setup() call does
    logging.getLogger("test.background.again").info("after")
    daemon.log.stop()
    assert len(first) == 1 and not first[0].is_alive()
    assert messages(stderr) == [
        "INFO test.background.again: before",
        "INFO test.background.again: after",
    ]
