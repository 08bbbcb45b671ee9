"""Several daemon instances on one PostgreSQL store: all serve HTTP, one does the
background work, and another takes it over when that one goes.

Two :class:`~daemon.loop.Daemon` objects in this process share one database and one set
of in-memory calendars, as two machines share the real ones; each has its own leadership
connection and instance name. ``kill -9`` and server restarts of real processes are in
``tests/e2e/test_instances.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from connectors.memory import MemoryCalendar
from daemon.clock import FixedClock
from daemon.config import CalendarConfig, load_config
from daemon.leader import AdvisoryLockLeader
from daemon.log import RepeatSummary
from daemon.loop import Daemon
from daemon.store import StoreUnavailable
from daemon.systemd import Notifier
from tests import wsgi
from tests.daemon.desk import SAO_PAULO, call, monday, write_config
from tests.factories import booking
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.slow


class Instance:
    """One daemon instance of the desk: its own process state, the shared database."""

    def __init__(self, path: Path, name: str, calendars: dict[str, MemoryCalendar]) -> None:
        self.calendars = calendars
        self.clock = FixedClock(monday(7, 0))
        self.daemon = Daemon(
            load_config(path),
            clock=self.clock,
            opener=self.open,
            systemd=Notifier({}),
            instance=name,
        )
        self.app = self.daemon.web

    def open(self, config: CalendarConfig) -> MemoryCalendar:
        return self.calendars.setdefault(config.id, MemoryCalendar(SAO_PAULO, config.id))

    def health(self) -> dict[str, object]:
        _, _, body = call(self, "GET", "/healthz")
        assert isinstance(body, dict)
        return body

    def run_background_once(self) -> None:
        """What the loop's timetable submits each second, waited for."""
        self.daemon._submit("outbox", self.daemon.flush)
        job = self.daemon._jobs.get("outbox")
        if job is not None:
            job.result(timeout=60)


@pytest.fixture
def desk_path(tmp_path: Path, postgres_server: PostgresServer) -> Path:
    write_config(tmp_path)
    (tmp_path / "secrets" / "postgres-dsn").write_text(postgres_server.create_database())
    return write_config(
        tmp_path, settings={"store": {"kind": "postgresql", "dsn_file": "secrets/postgres-dsn"}}
    )


@pytest.fixture
def pair(desk_path: Path) -> Iterator[tuple[Instance, Instance]]:
    calendars: dict[str, MemoryCalendar] = {}
    first = Instance(desk_path, "app1", calendars)
    first.daemon.start(serve=False)
    second = Instance(desk_path, "app2", calendars)
    second.daemon.start(serve=False)
    yield first, second
    for instance in (second, first):
        if not instance.daemon._stopping:
            instance.daemon.shutdown()


def wait_until(condition: object, what: str, timeout: float = 30.0) -> None:
    """Poll for an event (leadership changing hands), failing with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_every_instance_serves_and_only_the_leader_delivers(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    assert first.daemon.leadership.is_leader() and not second.daemon.leadership.is_leader()
    health = second.health()
    assert (health["instance"], health["leading"], health["leader"]) == ("app2", False, "app1")
    assert first.health()["leading"] is True
    status, _, session = call(second, "POST", "/api/v1/bookings", booking(monday(9).isoformat()))
    assert status == 201, session
    second.run_background_once()
    assert second.daemon.store.outbox_depth() >= 1, "a standby instance delivers nothing"
    first.run_background_once()
    assert first.daemon.store.outbox_depth() == 0
    stored = first.daemon.store.get_session(session["id"])
    assert stored is not None
    (calendar,) = (
        first.open(c) for c in first.daemon.config.calendars
        if c.technician == stored.technician_id and c.role == "sessions"
    )  # fmt: skip
    assert calendar.get_raw(f"expediente-{session['id']}.ics") is not None
    metrics = second.daemon.metrics.render().decode()
    assert 'expediente_leader{instance="app2",leader="app1"} 0.0' in metrics


def test_the_standby_takes_over_when_the_leader_stops(pair: tuple[Instance, Instance]) -> None:
    first, second = pair
    status, _, session = call(first, "POST", "/api/v1/bookings", booking(monday(9).isoformat()))
    assert status == 201, session
    started = time.monotonic()
    first.daemon.shutdown()
    wait_until(second.daemon.leadership.is_leader, "the standby to lead")
    failover = time.monotonic() - started
    assert second.daemon._took_over, "the loop is told to catch up"
    assert second.health()["leader"] == "app2"
    second.run_background_once()
    assert second.daemon.store.outbox_depth() == 0
    print(f"failover after a clean stop: {failover:.2f} s")


def test_a_leader_cut_off_from_the_database_stops_before_another_starts(
    pair: tuple[Instance, Instance], desk_path: Path
) -> None:
    first, second = pair
    lost: list[bool] = []
    leadership = first.daemon.leadership
    assert isinstance(leadership, AdvisoryLockLeader)
    leadership._on_change = lost.append
    dsn = (desk_path.parent / "secrets" / "postgres-dsn").read_text()
    # The server ends the leader's connection (what a cut looks like from the server).
    with psycopg.connect(dsn, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'expediente app1'"
        ).fetchall()
    assert ended == [(True,)]
    wait_until(lambda: lost == [False] or second.daemon.leadership.is_leader(), "a change")
    wait_until(second.daemon.leadership.is_leader, "the standby to lead")
    # Whoever leads, never both: the old leader stopped (and the lock is the standby's now).
    assert not leadership.is_leader()
    assert lost[:1] == [False]
    leadership.refresh()
    assert not leadership.is_leader(), "the lock is held by the new leader"


def test_while_the_database_is_down_requests_get_503_and_then_work_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = PostgresServer()
    try:
        server.start()
        write_config(tmp_path)
        (tmp_path / "secrets" / "postgres-dsn").write_text(server.create_database())
        path = write_config(
            tmp_path,
            settings={"store": {"kind": "postgresql", "dsn_file": "secrets/postgres-dsn"}},
        )
        instance = Instance(path, "app1", {})
        instance.daemon.sync_all()
        assert call(instance, "GET", "/api/v1/slots?type=standard")[0] == 200
        # The daemon's log as setup() wires it, on a clock that stays in the first minute.
        web = logging.getLogger("expediente.web")
        monkeypatch.setattr(web, "filters", [RepeatSummary(60, monotonic=lambda: 0.0)])
        caplog.set_level(logging.WARNING, "expediente.web")
        server.stop()
        status, headers, body = call(instance, "GET", "/api/v1/slots?type=standard")
        assert (status, headers.get("Retry-After")) == (503, "5"), body
        assert body["error"]["code"] == "unavailable"
        status, headers, _ = call(
            instance, "POST", "/api/v1/bookings", booking(monday(9).isoformat())
        )
        assert (status, headers.get("Retry-After")) == (503, "5")
        html = {"Accept": "text/html"}
        page = wsgi.call(instance.app, wsgi.environ("GET", "/book/standard", b"", headers=html))
        assert page[0] == 503 and "indisponível" in page[2].decode()
        said = [r.getMessage() for r in caplog.records if r.name == "expediente.web"]
        assert len(said) == 1 and said[0].startswith("answering 503: "), said
        # Down long enough for the pool's reconnection attempts to back off and give up.
        with pytest.raises(StoreUnavailable):
            instance.daemon.store.list_sessions()
        server.start()
        # Nobody reopens anything: the store's pool reconnects by itself.
        status, _, session = call(
            instance, "POST", "/api/v1/bookings", booking(monday(9).isoformat())
        )
        assert status == 201, session
        assert instance.daemon.store.get_session(session["id"]) is not None
        instance.daemon.shutdown()
    finally:
        server.close()


def test_a_no_show_the_old_leader_left_is_marked_once_by_the_new_one(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    status, _, session = call(second, "POST", "/api/v1/bookings", booking(monday(9).isoformat()))
    assert status == 201, session
    for instance in (first, second):
        instance.clock.set(monday(9, 11))  # past the 10-minute check-in deadline
    # The leader goes before its next sweep; the standby's sweep is gated until it leads.
    assert second.daemon._leading(second.daemon.sweep)() is None
    waiting = second.daemon.store.get_session(session["id"])
    assert waiting is not None and waiting.status == "booked"
    first.daemon.shutdown()
    wait_until(second.daemon.leadership.is_leader, "the standby to lead")
    second.daemon._take_over()  # what its loop does when woken by the takeover
    stored = second.daemon.store.get_session(session["id"])
    assert stored is not None and stored.status == "rescheduled"
    # A sweep racing it (the old leader's last one, say) changes nothing more.
    assert second.daemon.sweep() == []
    changes = [
        e for e in second.daemon.store.audit_log(session["id"]) if e.action == "status_changed"
    ]
    assert len(changes) == 1
