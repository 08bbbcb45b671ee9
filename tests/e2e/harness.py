"""The running daemon the end-to-end tests drive: its configuration, HTTP client and handles.

In-process desks run the real :class:`~daemon.loop.Daemon` (waitress on a free port,
CalDAV adapters, SQLite) with a fixed clock the test moves; subprocess desks run
``expediente run`` itself, for what only a process can show (kill -9, SIGHUP). The
fixtures that start them are in this folder's ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.loop import Daemon
from daemon.sync import SyncReport
from daemon.systemd import Notifier
from tests.daemon.desk import ADMIN_TOKEN, monday, write_config
from tests.daemon.store_helpers import cancel_notices
from tests.factories import booking
from tests.servers import CalDAVServer, CalendarHandle

# What a served desk sets beyond the daemon tests' desk (tests.daemon.desk.write_config).
LIVE: dict[str, dict[str, object]] = {
    # The concurrency test sends 50 bookings from one address, and 49 of them are refused.
    "booking": {"rate_limit": 0, "refusal_limit": 0},
    "sync": {"interval": "60s", "stale_after": "30m"},
}

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - 127.0.0.1
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            status = response.status
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        raw = error.read()
        status = error.code
        content_type = error.headers.get("Content-Type", "")
        error.close()
    if content_type.startswith("application/json"):
        return status, json.loads(raw)
    return status, raw.decode()


@dataclass
class Desk:
    """A running daemon, its technicians' calendars and a clock the test moves."""

    daemon: Daemon
    clock: FixedClock
    server: CalDAVServer
    calendars: dict[str, CalendarHandle]
    path: Path
    url: str = field(init=False)

    def __post_init__(self) -> None:
        assert self.daemon.server is not None
        self.url = self.daemon.server.url

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return http("GET", self.url + path, headers=headers)

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        return http("POST", self.url + path, body, headers)

    def book(self, start: datetime, **changes: Any) -> dict[str, Any]:
        status, body = self.post("/api/v1/bookings", booking(start, **changes))
        assert status == 201, body
        return body  # type: ignore[no-any-return]

    def technician(self, session_id: str) -> str:
        status, body = self.get(f"/api/v1/sessions/{session_id}", ADMIN)
        assert status == 200, body
        return str(body["technician_id"])

    def event_name(self, session_id: str) -> str:
        return f"expediente-{session_id}.ics"

    def event(self, session_id: str) -> bytes | None:
        """The session's event as the technician's calendar app reads it."""
        return self.calendars[self.technician(session_id)].get_raw(self.event_name(session_id))

    def slots(self, day: datetime) -> dict[str, int]:
        """The slots the API offers once it has caught up with what landed.

        The daemon answers from the view it has while its refresher rebuilds what a
        change made out of date (``daemon/refresh.py``): an answer is current when the
        refresher was idle before the request and the request queued nothing.
        """
        refresher = self.daemon.refresher
        for _ in range(5):
            assert refresher.wait_idle(30), "the refresher never caught up"
            queued = refresher.submitted
            status, body = self.get(f"/api/v1/slots?from={day.date()}&to={day.date()}")
            assert status == 200, body
            if refresher.submitted == queued:
                return {s["start"]: s["technicians"] for s in body["slots"]}
        raise AssertionError("every answer was computed from an out-of-date view")


@contextmanager
def running_desk(server: CalDAVServer, folder: Path) -> Iterator[Desk]:
    """A daemon whose two technicians have fresh calendars on ``server``, synced once."""
    calendars = {"ana": server.new_calendar(), "bruno": server.new_calendar()}
    path = write_config(folder, calendars, settings=LIVE)
    clock = FixedClock(monday(7, 0))
    daemon = Daemon(load_config(path), clock=clock, systemd=Notifier({}))
    daemon.start(port=0)
    try:
        yield Desk(daemon, clock, server, calendars, path)
    finally:
        daemon.shutdown()


@dataclass
class Process:
    """``expediente run`` in a subprocess, its log in a file."""

    config: Path
    port: int
    clock_start: datetime
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            command = [sys.executable, "-m", "daemon.cli", "run", "--config", str(self.config)]
            command += ["--clock-start", self.clock_start.isoformat()]
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.wait_until(lambda: self._ready(), "the daemon did not become ready")

    def _ready(self) -> bool:
        try:
            status, _ = http("GET", self.url + "/api/v1/openapi.json")
        except OSError:
            return False
        return status == 200 and "ready:" in self.log.read_text()

    def wait_until(self, check: Any, message: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the daemon exited: {self.log.read_text()[-3000:]}")
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(f"{message}; log:\n{self.log.read_text()[-3000:]}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)


def assert_only_cancelled(desk: Desk, reports: Sequence[SyncReport], gone: str, kept: str) -> None:
    """After a sync that saw ``gone``'s event deleted: that session alone is cancelled, its
    client notified once, and ``kept`` (another technician's) untouched."""
    assert all(r.ok for r in reports)
    assert [r.cancelled for r in reports if r.cancelled] == [[gone]]
    _, body = desk.get(f"/api/v1/sessions/{gone}", ADMIN)
    assert body["status"] == "cancelled"
    _, body = desk.get(f"/api/v1/sessions/{kept}", ADMIN)
    assert body["status"] == "booked"
    assert cancel_notices(desk.daemon.store, desk.clock.now()) == [gone]


def session_objects(calendar: CalendarHandle) -> list[str]:
    """Names of the session events in the calendar (to count duplicates)."""
    objects = calendar.client.calendar(url=calendar.url).objects()  # type: ignore[no-untyped-call]
    return [str(o.url).rsplit("/", 1)[-1] for o in objects if "expediente-" in str(o.url)]
