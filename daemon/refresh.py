"""Cache refreshes run off the request threads.

When a calendar change or a booking lands, the busy cache must rebuild one technician's
timeline (at 50 technicians x 5,000 intervals, ~20 ms of reading and merging) and the slot
cache must compute the answers that timeline feeds (~8 ms). Done by the request that
noticed the change, each change made one request in every few dozen wait for that work,
and under steady changes those requests were the slots p99. The caches instead hand the
work to a :class:`Refresher` and answer from the view they already have, which can only
offer a slot taken a moment ago or hide one freed a moment ago (the booking transaction
re-checks).

One thread drains the queue, one job at a time: refreshes are short, and running them one
after the other keeps them from competing with each other and with requests for the same
core. A key already waiting is not queued twice; a key that is running can be queued
again, since what it was computed from may have moved while it ran. The thread is started
with the first job and then kept: starting a thread makes the starter wait until the new
one runs, which under load is a wait for the GIL the request did not need to have.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)

Job = Callable[[], None]


class Refresher:
    """Runs submitted jobs on one background thread, each key at most once while queued."""

    def __init__(self, name: str = "refresh") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queued: dict[Hashable, Job] = {}  # in submission order
        self._busy = False  # a job is running
        self._thread: threading.Thread | None = None
        self._closed = False
        self.submitted = 0  # jobs taken so far: a caller can tell whether a call queued any

    def submit(self, key: Hashable, job: Job) -> bool:
        """Queue ``job`` under ``key`` unless a job with that key is already queued (then
        False: the queued one will do the same work, from what is current when it runs)
        or the refresher is closed (False: the caller does the work itself)."""
        with self._lock:
            if self._closed or key in self._queued:
                return False
            self._queued[key] = job
            self.submitted += 1
            self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._drain, name=self._name, daemon=True)
                self._thread.start()
        return True

    def is_own_thread(self) -> bool:
        """Whether the caller is the refresher's thread (which must not wait for itself)."""
        return self._thread is not None and self._thread is threading.current_thread()

    def _drain(self) -> None:
        while True:
            with self._lock:
                self._busy = False
                self._changed.notify_all()
                while not self._queued and not self._closed:
                    self._changed.wait()
                if not self._queued:
                    return  # closed, and nothing left
                key = next(iter(self._queued))
                job = self._queued.pop(key)
                self._busy = True
            try:
                job()
            except Exception:
                # A refresh that fails leaves the previous view in place; the next request
                # that finds it out of date submits it again. Never let it end the thread
                # with work still queued.
                log.exception("refreshing %r failed", key)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until nothing is queued or running (False if ``timeout`` passed first): for a
        caller that needs every refresh submitted so far to have landed."""
        with self._lock:
            return self._changed.wait_for(lambda: not self._queued and not self._busy, timeout)

    def close(self) -> None:
        """Stop the thread once what is queued has run (a queued job may be what a
        request is waiting for); later submissions are refused, so callers do the work."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
