"""Two and three ``expediente run`` processes on one PostgreSQL database, over real HTTP,
against a real Radicale: bookings split across instances, ``kill -9`` of the leader (as it
writes events, and as a no-show comes due), the database restarted under load. Failover
times are printed (``-s`` shows them); nothing here asserts a duration: the machines
running the suite are shared.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.store.postgres import PostgresStore
from tests.daemon.desk import monday, write_config
from tests.e2e.harness import ADMIN, LIVE, Process, http, session_objects
from tests.factories import booking
from tests.servers import CalDAVServer, CalendarHandle, free_port
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.slow


class Cluster:
    """Instances of one desk, each its own process, port and log, on one database."""

    def __init__(self, folder: Path, calendars: dict[str, CalendarHandle], dsn: str) -> None:
        self.folder = folder
        self.calendars = calendars
        self.dsn = dsn
        self.instances: list[Process] = []

    def add(self, clock_start: datetime | None = None) -> Process:
        """One more instance, ready; its clock starts at ``clock_start`` (Monday 07:00)."""
        folder = self.folder / f"app{len(self.instances) + 1}"
        port = free_port()
        write_config(folder, self.calendars, port=port, settings=LIVE)  # the secrets folder
        (folder / "secrets" / "postgres-dsn").write_text(self.dsn + "\n")
        store = {"kind": "postgresql", "dsn_file": "secrets/postgres-dsn"}
        path = write_config(folder, self.calendars, port=port, settings={**LIVE, "store": store})
        process = Process(path, port, clock_start or monday(7, 0), folder / "daemon.log")
        process.start()
        self.instances.append(process)
        return process

    def health(self, process: Process) -> dict[str, Any]:
        _, body = http("GET", process.url + "/healthz")
        assert isinstance(body, dict), body
        return body

    def leader(self) -> Process:
        """The instance leading now (waiting out a failover in progress)."""
        found: list[Process] = []

        def one_leads() -> bool:
            found[:] = [p for p in self.alive() if self.health(p)["leading"]]
            return len(found) == 1

        self.alive()[0].wait_until(one_leads, "exactly one instance to lead")
        return found[0]

    def leaders(self) -> list[Process]:
        """The live instances that say they lead, as they say it now."""
        return [p for p in self.alive() if self.health(p)["leading"]]

    def alive(self) -> list[Process]:
        return [p for p in self.instances if p.process is not None and p.process.poll() is None]

    def events(self) -> list[str]:
        return sorted(name for c in self.calendars.values() for name in session_objects(c))


@pytest.fixture
def cluster(
    radicale: CalDAVServer, tmp_path: Path, postgres_server: PostgresServer
) -> Iterator[Cluster]:
    calendars = {"ana": radicale.new_calendar(), "bruno": radicale.new_calendar()}
    running = Cluster(tmp_path, calendars, postgres_server.create_database())
    try:
        yield running
    finally:
        for process in running.instances:
            process.stop()


def event_names(sessions: list[dict[str, Any]]) -> list[str]:
    return sorted(f"expediente-{s['id']}.ics" for s in sessions)


def test_one_slot_booked_through_three_instances_at_once_is_taken_once_per_technician(
    cluster: Cluster,
) -> None:
    instances = [cluster.add(), cluster.add(), cluster.add()]
    assert sum(cluster.health(p)["leading"] for p in instances) == 1
    body = booking(monday(9).isoformat())
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(
            pool.map(lambda n: http("POST", instances[n % 3].url + "/api/v1/bookings", body),
                     range(36))
        )  # fmt: skip
    statuses = sorted(status for status, _ in results)
    # Two technicians are free at 09:00: exactly two bookings, whichever instances took them.
    assert statuses.count(201) == 2, statuses
    assert statuses.count(409) == 34, statuses
    accepted = [session for status, session in results if status == 201]
    _, first = http(
        "GET", instances[0].url + f"/api/v1/sessions/{accepted[0]['id']}", headers=ADMIN
    )
    _, second = http(
        "GET", instances[1].url + f"/api/v1/sessions/{accepted[1]['id']}", headers=ADMIN
    )
    assert {first["technician_id"], second["technician_id"]} == {"ana", "bruno"}
    instances[0].wait_until(lambda: cluster.events() == event_names(accepted), "both events")


def test_kill_9_of_the_leader_loses_nothing_and_duplicates_no_event(cluster: Cluster) -> None:
    cluster.add()
    cluster.add()
    leader = cluster.leader()
    standby = next(p for p in cluster.instances if p is not leader)
    sessions = []
    for hour, through in ((9, leader), (10, standby), (11, leader)):
        status, session = http("POST", through.url + "/api/v1/bookings", booking(monday(hour)))
        assert status == 201, session
        sessions.append(session)
    # Killed as it wakes to write those events: before, during or after some of them.
    killed = time.monotonic()
    leader.kill9()
    standby.wait_until(lambda: cluster.health(standby)["leading"], "the standby to lead")
    failover = time.monotonic() - killed
    for session in sessions:
        _, full = http("GET", standby.url + f"/api/v1/sessions/{session['id']}", headers=ADMIN)
        assert full["status"] == "booked", "no accepted booking is lost"
    # Items the dead leader had claimed wait for their claim to run out (60 s), then land.
    standby.wait_until(
        lambda: cluster.events() == event_names(sessions), "every event, once", timeout=150
    )
    written = time.monotonic() - killed
    status, later = http("POST", standby.url + "/api/v1/bookings", booking(monday(14)))
    assert status == 201, later
    print(f"\nfailover after kill -9: leading in {failover:.1f} s, all written in {written:.1f} s")


# The no-show sweep test: a 09:00 session comes due at 09:10 (the desk's 10-minute
# tolerance). The instances' clocks start LEAD before that, time to start three of them;
# the leader is killed KILL_MARGIN seconds before its clock can reach the deadline.
DUE = monday(9, 10)
LEAD = timedelta(seconds=20)
KILL_MARGIN = 0.3


def transitions(store: PostgresStore, session_id: str) -> list[str]:
    return [
        str(e.details["to"]) for e in store.audit_log(session_id) if e.action == "status_changed"
    ]


def test_kill_9_of_the_leader_as_a_no_show_comes_due_marks_it_once(cluster: Cluster) -> None:
    # Booked at 07:00 (no 09:00 booking is taken at 09:09), their events written, then the
    # booking instance stops: the others start on the same database near 09:10.
    booker = cluster.add()
    sessions = []
    for hour in (9, 9, 11):  # 09:00 for Ana and for Bruno; 11:00 is not due
        status, session = http("POST", booker.url + "/api/v1/bookings", booking(monday(hour)))
        assert status == 201, session
        sessions.append(session)
    due, later = sessions[:2], sessions[2]
    booker.wait_until(lambda: cluster.events() == event_names(sessions), "the booked events")
    assert booker.stop() == 0
    # Each clock starts as far past the first one's start as real time went before its
    # launch, so every instance's clock is at most (now - first) past DUE - LEAD.
    first = time.monotonic()
    for _ in range(3):
        cluster.add(DUE - LEAD + timedelta(seconds=time.monotonic() - first))
    kill_at = first + LEAD.total_seconds() - KILL_MARGIN
    leader = cluster.leader()
    standbys = [p for p in cluster.alive() if p is not leader]
    for session in due:
        _, full = http("GET", leader.url + f"/api/v1/sessions/{session['id']}", headers=ADMIN)
        assert full["status"] == "booked", "the instances started too late: raise LEAD"
    slack = kill_at - time.monotonic()
    assert slack > 0, "the instances started too late: raise LEAD"
    while time.monotonic() < kill_at:  # real time must bring the leader's clock there
        time.sleep(0.01)
    killed = time.monotonic()
    leader.kill9()  # right before its sweep finds the sessions due
    standbys[0].wait_until(lambda: len(cluster.leaders()) == 1, "a standby to lead")
    failover = time.monotonic() - killed
    [new_leader] = cluster.leaders()
    assert new_leader in standbys

    def marked() -> bool:
        return all(
            http("GET", new_leader.url + f"/api/v1/sessions/{s['id']}", headers=ADMIN)[1]["status"]
            == "rescheduled"
            for s in due
        )

    # 150 s: had the leader claimed the events' writes before dying (killed late on a
    # loaded machine), the new one writes them once the 60-second claim runs out.
    new_leader.wait_until(marked, "the no-shows marked", timeout=150)
    marked_after = time.monotonic() - killed

    def event(session: dict[str, Any]) -> bytes | None:
        _, full = http("GET", new_leader.url + f"/api/v1/sessions/{session['id']}", headers=ADMIN)
        return cluster.calendars[full["technician_id"]].get_raw(f"expediente-{session['id']}.ics")

    def rescheduled_events() -> bool:
        return all(b"[REAGENDADO]" in (event(s) or b"") for s in due)

    new_leader.wait_until(rescheduled_events, "the rescheduled events", timeout=150)
    written = time.monotonic() - killed
    # One object per session, the rescheduled ones marked once in their calendar.
    assert cluster.events() == event_names(sessions)
    for calendar in cluster.calendars.values():
        texts = [calendar.get_raw(name) or b"" for name in session_objects(calendar)]
        assert sum(text.count(b"[REAGENDADO]") for text in texts) == 1
    assert b"[REAGENDADO]" not in (event(later) or b"")
    with PostgresStore(cluster.dsn) as store:
        assert sorted(s.id for s in store.list_sessions()) == sorted(s["id"] for s in sessions)
        for session in due:
            assert transitions(store, session["id"]) == ["rescheduled"], "marked exactly once"
        assert transitions(store, later["id"]) == []
        stored = store.get_session(later["id"])
        assert stored is not None and stored.status == "booked"
    status, after = http("POST", new_leader.url + "/api/v1/bookings", booking(monday(14)))
    assert status == 201, after
    print(
        f"\nkill -9 before the no-show sweep: leading in {failover:.1f} s, no-shows marked "
        f"in {marked_after:.1f} s, rescheduled events written in {written:.1f} s "
        f"(started {slack:.1f} s before the kill)"
    )


def test_a_database_restart_under_load_loses_no_accepted_booking(
    radicale: CalDAVServer, tmp_path: Path
) -> None:
    server = PostgresServer()
    server.start()
    calendars = {"ana": radicale.new_calendar(), "bruno": radicale.new_calendar()}
    cluster = Cluster(tmp_path, calendars, server.create_database())
    try:
        instances = [cluster.add(), cluster.add()]
        # Monday to Friday of next week, 08:00 to 09:30: twenty open half hours.
        starts = [
            monday(8, weeks=1) + timedelta(days=day, minutes=30 * n)
            for day in range(5)
            for n in range(4)
        ]

        def book(n: int) -> tuple[int, Any]:
            if n == 8:
                server.restart()  # mid-way, while the others are in flight
                return 0, None
            start = starts[n % len(starts)]
            return http("POST", instances[n % 2].url + "/api/v1/bookings", booking(start))

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(book, range(40)))
        statuses = [status for status, _ in results if status]
        assert set(statuses) <= {201, 409, 503}, statuses
        accepted = [session for status, session in results if status == 201]
        assert accepted, statuses
        for process in instances:
            assert process.process is not None and process.process.poll() is None
        for session in accepted:
            _, full = http(
                "GET", instances[0].url + f"/api/v1/sessions/{session['id']}", headers=ADMIN
            )
            assert full["status"] == "booked", "an accepted booking survived the restart"
        # Both instances serve again by themselves, and one leads.
        status, after = http("POST", instances[1].url + "/api/v1/bookings", booking(monday(17)))
        assert status == 201, after
        cluster.leader()
        print(f"\nrestart under load: {statuses.count(503)} requests answered 503")
    finally:
        for process in cluster.instances:
            process.stop()
        server.close()
