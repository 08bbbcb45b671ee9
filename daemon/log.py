"""Logging to stderr, journald-friendly.

Under systemd (JOURNAL_STREAM set and matching stderr) lines carry a ``<N>`` syslog
priority prefix and no timestamp: journald adds its own and keeps the level filterable.
Elsewhere lines carry a timestamp. Secrets never reach a log line: configuration values
that hold secrets are wrapped so their repr is ``***``.

Log volume stays bounded under overload: waitress warns "Task queue depth is N" for every
request that finds all its threads busy (24,000 lines in a minute of overload, each
written while waitress holds its task queue's lock). :class:`QueueDepthSummary` lets the
first of a burst through and folds the rest into one line per minute.

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


class QueueDepthSummary(logging.Filter):
    """On waitress's ``waitress.queue`` logger: its per-request "Task queue depth is N"
    warnings become at most one summary line per ``interval`` seconds.

    The first warning after a quiet interval passes as it is, so an overload shows at
    once; the ones after it are counted, and the first one past the interval (or
    :meth:`flush`, which the daemon's loop calls) turns into "request queue was N deep at
    most, M times in the last S s". Other records pass untouched. ``monotonic`` is the
    clock, in seconds (a test's counter).
    """

    PREFIX = "Task queue depth is"

    def __init__(
        self, interval: float = 60.0, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._since: float | None = None  # when the interval being counted began
        self._times = 0
        self._deepest = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "queue_summary", False) or not str(record.msg).startswith(self.PREFIX):
            return True
        depth = record.args[0] if isinstance(record.args, tuple) and record.args else 0
        now = self._monotonic()
        with self._lock:
            if self._since is None or (now - self._since >= self.interval and not self._times):
                self._since = now  # a new burst: this one shows as it is
                return True
            self._times += 1
            self._deepest = max(self._deepest, depth if isinstance(depth, int) else 0)
            if now - self._since < self.interval:
                return False
            summary = self._summary(now)
            self._since = now
        record.msg, record.args = summary, ()
        return True

    def flush(self, logger: logging.Logger | None = None) -> None:
        """Log the summary of an interval that is over, through ``logger`` (by default
        waitress's): a burst that ended is reported without waiting for the next one."""
        now = self._monotonic()
        with self._lock:
            if self._since is None or now - self._since < self.interval:
                return
            summary = self._summary(now) if self._times else None
            # Counting goes on after a summary; a quiet interval ends the burst.
            self._since = now if summary is not None else None
        if summary is not None:
            target = logger or logging.getLogger("waitress.queue")
            target.warning("%s", summary, extra={"queue_summary": True})

    def _summary(self, now: float) -> str:
        text = (
            f"request queue was {self._deepest} deep at most, {self._times} times in the "
            f"last {now - (now if self._since is None else self._since):.0f} s "
            "(every worker thread busy)"
        )
        self._times = self._deepest = 0
        return text


# The one summary of this process's waitress, wired by setup().
queue_summary = QueueDepthSummary()

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
