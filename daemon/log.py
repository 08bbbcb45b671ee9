"""Logging to stderr, journald-friendly.

Under systemd (JOURNAL_STREAM set and matching stderr) lines carry a ``<N>`` syslog
priority prefix and no timestamp: journald adds its own and keeps the level filterable.
Elsewhere lines carry a timestamp. Secrets never reach a log line: configuration values
that hold secrets are wrapped so their repr is ``***``.
"""

from __future__ import annotations

import logging
import os
import sys

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


def setup(level: str = "INFO", *, journald: bool | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if under_journald() if journald is None else journald:
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
