"""The background work in a process of its own, beside the one that serves HTTP (SQLite).

Why: one CPython process runs one thread at a time. Syncing 50 calendars every 2 s is 25
HTTP exchanges a second, each parsed and recorded in Python; every calendar write after
a booking is more. In the process that answers the slots requests, each of those holds
the interpreter for a few milliseconds, and a request that arrives meanwhile waits: the
slots p99 doubled while calendars changed, however fast the slot engine. In a process of
its own, that work runs on another core and the requests wait for none of it.

``expediente run`` on SQLite forks the worker before it builds anything (no thread, no
open store yet; the imported modules are shared with the child until either writes to
them). The two then share the store, where every change is already visible to every
process: the busy-time cache follows the store's versions (``daemon/busy.py``), and the
outbox and the syncs were always written to be resumed by whichever process runs them.
What still needs saying between the two goes through a pipe and a socket pair:

* ``wake``: a booking, a console action or a WhatsApp answer was recorded; deliver it now
  rather than at the next outbox tick. The pipe is also the worker's lifeline: when the
  web process is gone, the worker sees the pipe close and stops (on Linux it is killed
  with the parent, as the single process was by ``kill -9``);
* ``ready``: the worker has done its first sync, so the service may tell systemd it is up;
* ``metrics``: the web process's ``/metrics`` adds the worker's counters (syncs, calendar
  writes, its threads' CPU) to its own, so a scrape still sees the whole daemon.

On PostgreSQL the daemon stays one process: instances are added there for more capacity,
and the leader among them runs the background work (``daemon/leader.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("expediente")

# A worker that has not answered for its metrics in this long is left out of that scrape.
METRICS_TIMEOUT_S = 2.0
# How long a worker asked to stop has to finish its writes in flight before it is killed.
STOP_TIMEOUT_S = 60.0

Sample = tuple[str, dict[str, str], float]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux): a ``kill -9`` of the
    daemon then ends all of it, as it did when it was one process."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Worker:
    """The web process's side: wake the worker, ask for its metrics, see that it lives."""

    def __init__(self, pid: int, wake: int, ready: int, channel: socket.socket) -> None:
        self.pid = pid
        self._wake = wake
        self._ready = ready
        self._channel = channel
        channel.settimeout(METRICS_TIMEOUT_S)
        self._answers = channel.makefile("rb")
        self._lock = threading.Lock()
        self._asked = 0
        self._closed = False
        self.returncode: int | None = None

    def wait_ready(self, alive: Callable[[], bool] = lambda: True) -> bool:
        """Block until the worker says it is ready (True), or it exits or ``alive`` turns
        False (False). Checked every second: a first sync may take a while."""
        while alive():
            readable, _, _ = select.select([self._ready], [], [], 1.0)
            if readable:
                if os.read(self._ready, 1) == b"r":
                    return True
                # Its end closed without a word: it is exiting. Give it time to be gone.
                deadline = time.monotonic() + 5
                while self.running() and time.monotonic() < deadline:
                    time.sleep(0.01)
                return False
            if not self.running():
                return False
        return False

    def wake(self) -> None:
        """Ask for the outbox now. Never blocks: a full pipe already holds a wake-up."""
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(self._wake, b"w")

    def samples(self) -> list[Sample]:
        """The worker's counters, or none if it does not answer in time."""
        with self._lock:
            self._asked += 1
            asked = self._asked
            try:
                self._channel.sendall(f"{asked}\n".encode())
                # A late answer to an earlier scrape may come first: skip it.
                while True:
                    line = self._answers.readline()
                    if not line:
                        return []
                    answer = json.loads(line)
                    if answer.get("asked") == asked:
                        return [(n, dict(labels), float(v)) for n, labels, v in answer["samples"]]
            except (OSError, ValueError) as error:
                log.debug("the background worker's metrics are missing from this scrape: %s", error)
                # A reader that timed out reads no more (socket.SocketIO): take a new one.
                self._answers = self._channel.makefile("rb")
                return []

    def running(self) -> bool:
        """Whether the worker still runs; once it has ended, ``returncode`` says how."""
        if self.returncode is not None:
            return False
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.returncode = -1
            return False
        if pid == 0:
            return True
        self.returncode = os.waitstatus_to_exitcode(status)
        return False

    def signal(self, signum: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Ask the worker to stop, wait for it to finish its writes in flight, kill it if it
        has not within ``timeout``; its exit code."""
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                log.warning("the background worker did not stop in %.0f s: killing it", timeout)
                self.signal(signal.SIGKILL)
                deadline = time.monotonic() + 5
            time.sleep(0.05)
        if not self._closed:  # once: a number closed twice may be someone else's by then
            self._closed = True
            os.close(self._wake)
            os.close(self._ready)
            self._answers.close()
            self._channel.close()
        return self.returncode


class WorkerEnd:
    """The worker's side of the same pipes."""

    def __init__(self, wake: int, ready: int, channel: socket.socket) -> None:
        self._wake = wake
        self._ready = ready
        self._channel = channel

    def ready(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._ready, b"r")

    def listen(
        self, on_wake: Callable[[], None], on_parent_gone: Callable[[], None],
        samples: Callable[[], list[Sample]],
    ) -> None:  # fmt: skip
        """Serve the web process's wake-ups and metrics requests, each on a thread."""

        def wakes() -> None:
            while True:
                try:
                    data = os.read(self._wake, 512)
                except OSError:
                    data = b""
                if not data:  # the web process is gone (or closed the pipe to stop us)
                    on_parent_gone()
                    return
                on_wake()

        def metrics() -> None:
            stream = self._channel.makefile("rb")
            for line in stream:
                try:
                    asked = int(line)
                    answer = {"asked": asked, "samples": samples()}
                    self._channel.sendall(json.dumps(answer).encode() + b"\n")
                except (OSError, ValueError):
                    return
                except Exception:  # a scrape must never end the worker's answers
                    log.exception("could not collect the worker's metrics")

        for target, name in ((wakes, "worker-wakes"), (metrics, "worker-metrics")):
            threading.Thread(target=target, name=name, daemon=True).start()


def fork_worker(run: Callable[[WorkerEnd], int]) -> Worker:
    """Fork the worker, which runs ``run`` and exits with what it returns.

    Call before any thread starts or any store or socket opens: the child gets a copy of
    this process as it is, and only the calling thread.
    """
    wake_r, wake_w = os.pipe()
    ready_r, ready_w = os.pipe()
    ours, theirs = socket.socketpair()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            _die_with_parent()
            if os.getppid() != parent:  # the parent died before the line above
                os._exit(1)
            os.close(wake_w)
            os.close(ready_r)
            ours.close()
            # systemd takes notifications from the main process only (NotifyAccess=main).
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(name, None)
            code = run(WorkerEnd(wake_r, ready_w, theirs))
        except BaseException:
            log.exception("the background worker failed")
        finally:
            logging.shutdown()
            os._exit(code)
    os.close(wake_r)
    os.close(ready_w)
    theirs.close()
    os.set_blocking(wake_w, False)
    return Worker(pid, wake_w, ready_r, ours)


def counter_samples(collect: Callable[[], Any]) -> list[Sample]:
    """The ``_total`` samples of the counter families ``collect`` yields (a registry's
    ``collect``): what the worker sends, and what the web process adds to its own."""
    found: list[Sample] = []
    for family in collect():
        if family.type != "counter":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                found.append((sample.name, dict(sample.labels), float(sample.value)))
    return found
