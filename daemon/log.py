"""Logging to stderr, journald-friendly.

Under systemd (JOURNAL_STREAM set and matching stderr) lines carry a ``<N>`` syslog
priority prefix and no timestamp: journald adds its own and keeps the level filterable.
Elsewhere lines carry a timestamp. Secrets never reach a log line: configuration values
that hold secrets are wrapped so their repr is ``***``.

Log volume stays bounded under overload: waitress warns "Task queue depth is N" for every
request that finds all its threads busy (24,000 lines in a minute of overload, each
written while waitress holds its task queue's lock). :class:`QueueDepthSummary` lets the
first of a burst through and folds the rest into one line per minute.
"""

from __future__ import annotations

import logging
import os
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


def setup(level: str = "INFO", *, journald: bool | None = None) -> None:
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
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("waitress.queue").addFilter(queue_summary)  # added once however often
