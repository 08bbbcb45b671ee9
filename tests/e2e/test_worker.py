"""``expediente run`` on SQLite: the background work in a process of its own beside the web
one (daemon/split.py), seen from outside as one daemon."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon.desk import monday
from tests.e2e.harness import ADMIN, Process, http
from tests.factories import booking, private_event
from tests.servers import CalendarHandle

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody has reaped (no init reaps in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def eventually(check: Callable[[], bool], message: str, timeout: float = 10.0) -> None:
    """``check`` comes true within ``timeout`` (the daemon itself may be gone by then)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def the_worker(process: Process) -> int:
    assert process.process is not None
    found = children(process.process.pid)
    assert len(found) == 1, f"one background worker, not {found}"
    return found[0]


def book_and_see_it_written(process: Process, calendars: dict[str, CalendarHandle]) -> None:
    """Book over HTTP, and wait for the session's event in its technician's calendar."""
    status, written = http("POST", process.url + "/api/v1/bookings", booking(monday(9)))
    assert status == 201
    _, session = http("GET", process.url + f"/api/v1/sessions/{written['id']}", headers=ADMIN)
    calendar = calendars[session["technician_id"]]
    name = f"expediente-{written['id']}.ics"
    process.wait_until(lambda: calendar.get_raw(name) is not None, "the session's event")


def counters(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = http("GET", url + "/metrics")
    assert status == 200
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    names: list[str] = []
    for family in text_string_to_metric_families(text if isinstance(text, str) else text.decode()):
        names.append(family.name)
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    assert len(names) == len(set(names)), "a family appears once in a scrape"
    return found


def test_the_worker_syncs_and_writes_and_the_web_process_reports_it(
    process_desk: tuple[Process, dict[str, CalendarHandle]],
) -> None:
    process, calendars = process_desk
    process.start()
    worker = the_worker(process)
    book_and_see_it_written(process, calendars)
    # Counted in the worker, where the syncs and the calendar writes run, and scraped from
    # the web process: one scrape sees the whole daemon.
    process.wait_until(
        lambda: (
            counters(process.url).get(
                ("expediente_outbox_deliveries_total", (("action", "put"), ("outcome", "ok")))
            )
            == 1
        ),
        "the worker's calendar write in /metrics",
    )
    found = counters(process.url)
    synced = {
        dict(labels)["calendar"]
        for (name, labels), value in found.items()
        if name == "expediente_syncs_total" and dict(labels)["outcome"] == "ok" and value >= 1
    }
    assert len(synced) == len(calendars), f"every calendar synced, by the worker: {synced}"
    assert found["expediente_bookings_total", (("outcome", "booked"),)] == 1
    assert process.stop() == 0
    eventually(lambda: gone(worker), "the worker stopping with the daemon")


def test_sighup_reloads_the_worker_too(
    process_desk: tuple[Process, dict[str, CalendarHandle]],
) -> None:
    process, _ = process_desk
    process.start()
    process.signal(signal.SIGHUP)
    process.wait_until(
        lambda: process.log.read_text().count("configuration reloaded") == 2,
        "both processes reloading",
    )
    assert process.stop() == 0


def test_kill_9_of_the_daemon_ends_its_worker(
    process_desk: tuple[Process, dict[str, CalendarHandle]],
) -> None:
    process, _ = process_desk
    process.start()
    worker = the_worker(process)
    process.kill9()
    eventually(lambda: gone(worker), "the worker dying with the daemon")


def test_the_daemon_stops_with_an_error_when_its_worker_dies(
    process_desk: tuple[Process, dict[str, CalendarHandle]],
) -> None:
    process, _ = process_desk
    process.start()
    os.kill(the_worker(process), signal.SIGKILL)
    assert process.process is not None
    assert process.process.wait(30) == 1, "an error, for systemd to restart the service"
    assert "the background worker" in process.log.read_text()


def test_with_worker_process_false_the_daemon_is_one_process(
    process_desk: tuple[Process, dict[str, CalendarHandle]],
) -> None:
    process, calendars = process_desk
    text = process.config.read_text()
    assert "\n[store]\n" in text
    process.config.write_text(text.replace("\n[store]\n", "\n[store]\nworker_process = false\n"))
    process.start()
    assert process.process is not None
    assert children(process.process.pid) == []
    book_and_see_it_written(process, calendars)
    assert process.stop() == 0


def test_a_change_the_worker_syncs_reaches_the_slots_the_web_process_serves(
    process_desk: tuple[Process, dict[str, CalendarHandle]],
) -> None:
    """The worker lands the change in the store; the web process sees the store's
    versions move and rebuilds that technician's busy time (no rebuild in the worker)."""
    process, calendars = process_desk
    process.start()
    day = monday(0).date()

    def technicians_at_11() -> int:
        status, body = http("GET", process.url + f"/api/v1/slots?from={day}&to={day}")
        assert status == 200
        offered = {s["start"]: s["technicians"] for s in body["slots"]}
        return int(offered.get(monday(11).isoformat(), 0))

    assert technicians_at_11() == 2
    calendars["ana"].put_raw(
        "dentist.ics", private_event("dentist", "20261130T140000Z", "20261130T150000Z")
    )
    process.signal(signal.SIGHUP)  # a reload syncs every calendar at once, in the worker
    process.wait_until(lambda: technicians_at_11() == 1, "the change in the slots")
    assert process.stop() == 0
