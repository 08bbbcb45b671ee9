"""Logging to stderr, journald-friendly.

Under systemd (JOURNAL_STREAM set and matching stderr) lines carry a ``<N>`` syslog
priority prefix and no timestamp: journald adds its own and keeps the level filterable.
Elsewhere lines carry a timestamp. Secrets never reach a log line: configuration values
that hold secrets are wrapped so their repr is ``***``.

Log volume stays bounded under overload: waitress warns "Task queue depth is N" for every
request that finds all its threads busy (24,000 lines in a minute of overload, each
written while waitress holds its task queue's lock). :class:`QueueDepthSummary` lets the
first of a burst through and folds the rest into one line per minute;
:class:`RepeatSummary` does the same for the daemon's own warnings that come once per
request (every answer while the database is away says so).

The daemon's lines are written by a thread of their own (:func:`setup` with
``background``): a thread that logs only queues its record. Written by the thread that
logged, a line held the handler's lock across the write to stderr and across taking the
interpreter back after it; with eight clients booking (a line per booking), a write
took up to 60 ms at times and booking threads waited up to 70 ms for that lock
(docs/benchmarks.md).
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def under_journald(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    stream = env.get("JOURNAL_STREAM", "")
    if not stream or ":" not in stream:
        return False
    try:
        device, inode = (int(part) for part in stream.split(":", 1))
        info = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return info.st_dev == device and info.st_ino == inode


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}"


class BurstSummary(logging.Filter):
    """A filter that turns warnings logged once per request into at most one line per
    ``interval`` seconds for each kind of warning (:meth:`kind`), so that an overload or
    an outage writes a few lines a minute, not one per request.

    The first warning of a kind after a quiet interval passes as it is, so the trouble
    shows at once; the ones after it are counted, and the first one past the interval (or
    :meth:`flush`, which the daemon's loop calls) turns into a summary of them
    (:meth:`summary`). Records of no kind pass untouched. ``monotonic`` is the clock, in
    seconds (a test's counter).
    """

    SUMMARY = "burst_summary"  # set on a summary record, which passes as it is

    def __init__(
        self, interval: float = 60.0, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._bursts: dict[str, _Burst] = {}

    def kind(self, record: logging.LogRecord) -> str | None:
        """Which kind of repeated warning ``record`` is, if it is one."""
        raise NotImplementedError

    def summary(self, burst: _Burst, seconds: float) -> str:
        """The line that stands for the ``burst.times`` warnings counted."""
        raise NotImplementedError

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, self.SUMMARY, False):
            return True
        kind = self.kind(record)
        if kind is None:
            return True
        now = self._monotonic()
        with self._lock:
            burst = self._bursts.get(kind)
            if burst is None or (now - burst.since >= self.interval and not burst.times):
                self._bursts[kind] = _Burst(now, record.name)  # a new burst shows as it is
                return True
            burst.count(record)
            if now - burst.since < self.interval:
                return False
            text = self.summary(burst, now - burst.since)
            self._bursts[kind] = _Burst(now, record.name)
        record.msg, record.args, record.exc_info, record.exc_text = text, (), None, None
        return True

    def flush(self, logger: logging.Logger | None = None) -> None:
        """Log the summary of each burst whose interval is over, through ``logger`` (by
        default the one its warnings came through): a burst that ended is reported without
        waiting for the next one."""
        now = self._monotonic()
        lines: list[tuple[str, str]] = []
        with self._lock:
            for kind, burst in list(self._bursts.items()):
                if now - burst.since < self.interval:
                    continue
                if burst.times:  # counting goes on after a summary
                    lines.append((burst.logger, self.summary(burst, now - burst.since)))
                    self._bursts[kind] = _Burst(now, burst.logger)
                else:  # a quiet interval ends the burst
                    del self._bursts[kind]
        for name, text in lines:
            target = logger or logging.getLogger(name)
            target.warning("%s", text, extra={self.SUMMARY: True})


@dataclass
class _Burst:
    """Warnings of one kind since ``since``: how many were held back, the deepest queue
    they named, the last one's text."""

    since: float
    logger: str
    times: int = 0
    deepest: int = 0
    last: str = ""

    def count(self, record: logging.LogRecord) -> None:
        self.times += 1
        try:
            self.last = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit: logging reports it on emit
            self.last = str(record.msg)
        args = record.args
        depth = args[0] if isinstance(args, tuple) and args else 0
        self.deepest = max(self.deepest, depth if isinstance(depth, int) else 0)


class QueueDepthSummary(BurstSummary):
    """On waitress's ``waitress.queue`` logger: its per-request "Task queue depth is N"
    warnings become at most one line a minute ("request queue was N deep at most, M
    times in the last S s")."""

    PREFIX = "Task queue depth is"

    def kind(self, record: logging.LogRecord) -> str | None:
        return "queue" if str(record.msg).startswith(self.PREFIX) else None

    def summary(self, burst: _Burst, seconds: float) -> str:
        return (
            f"request queue was {burst.deepest} deep at most, {burst.times} times in the "
            f"last {seconds:.0f} s (every worker thread busy)"
        )


class RepeatSummary(BurstSummary):
    """On the daemon's loggers that warn once per request or message (the answers while
    the database is away, a webhook that cannot check its requests, a bug hit by every
    request): each warning or error, by its message template, shows once, and its
    repeats become at most one line a minute, which gives the last of them and the
    count. Lines below WARNING (a check-in, a booking) are events, not repeats, and pass."""

    def kind(self, record: logging.LogRecord) -> str | None:
        return str(record.msg) if record.levelno >= logging.WARNING else None

    def summary(self, burst: _Burst, seconds: float) -> str:
        return f"{burst.last} (and {burst.times - 1} more like it in the last {seconds:.0f} s)"


# The one summary of this process's waitress, and the one of its own loggers that warn per
# request, wired by setup().
queue_summary = QueueDepthSummary()
repeat_summary = RepeatSummary()
REPEATING = ("expediente.web", "expediente.whatsapp")

# Records waiting for the writer thread, at most: at a line per booking, minutes of a
# stderr that does not take them (journald stalled), a few MB. Past it, lines are
# counted and dropped rather than held in memory or waited for.
QUEUE_MAX = 10_000


class Background(logging.handlers.QueueHandler):
    """The handler the daemon's threads log through: each record goes on a queue for
    the writer thread (:class:`_Writer`), which writes it.

    The queue is bounded by ``limit``. A record that finds it full is dropped and
    counted, and the writer says how many were lost after the next line it writes: a
    log that falls behind loses lines, never a request's time.
    """

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord | None], limit: int) -> None:
        super().__init__(records)
        self._records = records  # self.queue, typed as the queue it is
        self.limit = limit
        self._dropped_lock = threading.Lock()
        self._dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        if self._records.qsize() >= self.limit:
            with self._dropped_lock:
                self._dropped += 1
            return
        self._records.put_nowait(record)

    def take_dropped(self) -> int:
        """How many records were dropped since the last call."""
        with self._dropped_lock:
            dropped, self._dropped = self._dropped, 0
        return dropped


class _Writer(logging.handlers.QueueListener):
    """The thread that writes what :class:`Background` queued (named "log", for the
    daemon's CPU by thread in /metrics), and says when lines were dropped."""

    def __init__(self, background: Background, handler: logging.Handler) -> None:
        super().__init__(background.queue, handler)
        self._background = background

    def start(self) -> None:
        # QueueListener.start() with a name for the thread; _monitor is its loop.
        monitor = self._monitor  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=monitor, name="log", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> None:
        super().handle(record)
        dropped = self._background.take_dropped()
        if dropped:
            message = "%d log lines dropped: stderr did not take them as fast as they came"
            warning = logging.LogRecord(
                "expediente.log", logging.WARNING, __file__, 0, message, (dropped,), None
            )
            super().handle(warning)


# The writer thread of setup(background=True), while one runs.
_listener: _Writer | None = None


def stop() -> None:
    """Write what the writer thread still holds and end it (at exit, and before
    :func:`setup` sets logging up again); with no writer thread, nothing."""
    global _listener
    listener, _listener = _listener, None
    if listener is not None:
        listener.stop()
        # Handlers of the root logger still pointing at the queue write directly again.
        root = logging.getLogger()
        root.handlers[:] = [
            listener.handlers[0] if isinstance(h, Background) else h for h in root.handlers
        ]


atexit.register(stop)


def setup(
    level: str = "INFO",
    *,
    journald: bool | None = None,
    background: bool = False,
    limit: int = QUEUE_MAX,
) -> None:
    """Log to stderr at ``level``; with ``background`` (the daemon), through a writer
    thread of its own (:class:`Background`) that :func:`stop` ends, at exit at the latest.
    A command that runs and ends writes its lines itself."""
    global _listener
    stop()
    # The formats above name no caller, thread or process: do not look them up for every
    # record (the logging module's documented optimisations). A booking logs a line, and
    # finding the caller's frame was a tenth of the logging it paid for.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    if under_journald() if journald is None else journald:
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if background:
        queued = Background(queue.SimpleQueue(), limit)
        _listener = _Writer(queued, handler)
        _listener.start()
        root.handlers[:] = [queued]
    else:
        root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("waitress.queue").addFilter(queue_summary)  # added once however often
    for name in REPEATING:
        logging.getLogger(name).addFilter(repeat_summary)
