"""The daemon end to end: real HTTP in, real CalDAV (Radicale) out, time moved by hand."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import icalendar
import pytest

from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.loop import Daemon
from daemon.systemd import Notifier
from tests.daemon.desk import monday, record_syncs, write_config
from tests.daemon.forged import FORGED, assert_client_text_set_apart
from tests.e2e.harness import (
    ADMIN,
    LIVE,
    Desk,
    Process,
    assert_only_cancelled,
    http,
    session_objects,
)
from tests.factories import booking, private_event
from tests.servers import CalendarHandle
from tests.servers.radicale import RadicaleServer

pytestmark = pytest.mark.slow


def local(text: bytes | None) -> icalendar.Event:
    assert text is not None
    return icalendar.Calendar.from_ical(text).events[0]


def test_a_booking_over_http_lands_in_the_technicians_calendar(desk: Desk) -> None:
    session = desk.book(monday(9))
    desk.daemon.flush()
    event = local(desk.event(session["id"]))
    assert event.decoded("DTSTART") == monday(9)
    assert "Relojoaria Central" in str(event["SUMMARY"])
    description = str(event["DESCRIPTION"])
    assert "Maria Lima" in description and "/checkin/" in description
    assert event.walk("VALARM"), "the technician gets a reminder"


def test_the_clients_words_reach_the_technician_quoted_after_the_daemons_lines(
    desk: Desk,
) -> None:
    typed = FORGED.replace("evil", "ev\u202eil\u200b")  # and a bidi override, a zero width
    session = desk.book(monday(9), description=typed)
    desk.daemon.flush()
    description = str(local(desk.event(session["id"]))["DESCRIPTION"])
    public_url = desk.daemon.config.server.public_url
    assert_client_text_set_apart(description, f"{public_url}/checkin/")


def test_an_event_the_technician_adds_removes_its_slots_after_the_next_sync(desk: Desk) -> None:
    before = desk.slots(monday(0))
    assert before[monday(11).isoformat()] == 2
    desk.calendars["ana"].put_raw(
        "dentist.ics", private_event("dentist", "20261130T140000Z", "20261130T150000Z")
    )
    assert desk.slots(monday(0)) == before, "not before the next sync"
    desk.daemon.sync_all()
    after = desk.slots(monday(0))
    assert after[monday(11).isoformat()] == 1
    assert after[monday(11, 30).isoformat()] == 1
    assert after[monday(10, 30).isoformat()] == 2


def test_no_show_is_rescheduled_in_the_store_and_the_calendar(desk: Desk) -> None:
    session = desk.book(monday(9))
    desk.daemon.flush()
    desk.clock.set(monday(9, 10) + timedelta(seconds=1))
    desk.daemon.sweep()
    desk.daemon.flush()
    status, body = desk.get(f"/api/v1/sessions/{session['id']}", ADMIN)
    assert status == 200 and body["status"] == "rescheduled"
    event = local(desk.event(session["id"]))
    assert str(event["TRANSP"]) == "TRANSPARENT", "the time no longer blocks"
    assert str(event["SUMMARY"]).startswith("[REAGENDADO]"), "a marker the technician sees"
    desk.daemon.sync_all()
    slots = desk.slots(monday(0))
    assert slots[monday(10).isoformat()] == 2, slots


def test_a_check_in_in_time_keeps_the_session(desk: Desk) -> None:
    session = desk.book(monday(9))
    desk.daemon.flush()
    desk.clock.set(monday(9, 8))
    status, body = desk.post(f"/api/v1/sessions/{session['id']}/check-in", headers=ADMIN)
    assert status == 200 and body["status"] == "in_progress"
    desk.clock.set(monday(9, 20))
    desk.daemon.sweep()
    status, body = desk.get(f"/api/v1/sessions/{session['id']}", ADMIN)
    assert body["status"] == "in_progress"


def test_the_technician_deleting_the_event_cancels_the_session(desk: Desk) -> None:
    session = desk.book(monday(9))
    desk.daemon.flush()
    desk.daemon.sync_all()
    tech = desk.technician(session["id"])
    desk.calendars[tech].delete_raw(desk.event_name(session["id"]))
    desk.daemon.sync_all()
    _, body = desk.get(f"/api/v1/sessions/{session['id']}", ADMIN)
    assert body["status"] == "cancelled"
    assert body["cancel_reason"] == "technician_deleted"  # a code mails put into words
    desk.daemon.flush()
    assert desk.calendars[tech].get_raw(desk.event_name(session["id"])) is None


def test_an_event_deleted_before_the_next_sync_cancels_the_session(caldav_desk: Desk) -> None:
    """Deleted within seconds of the booking, before any sync listed it: Radicale then
    reports a bare href, Xandikos nothing at all."""
    desk = caldav_desk
    gone, kept = desk.book(monday(9)), desk.book(monday(9))  # one per technician
    desk.daemon.flush()
    tech = desk.technician(gone["id"])
    assert desk.event(gone["id"]) is not None and desk.event(kept["id"]) is not None
    calendar = desk.calendars[tech]
    calendar.delete_raw(desk.event_name(gone["id"]))
    # An unrelated event, created and deleted meanwhile too, changes nothing.
    calendar.put_raw("p.ics", private_event("p1", "20261130T170000Z", "20261130T180000Z"))
    calendar.delete_raw("p.ics")
    assert_only_cancelled(desk, desk.daemon.sync_all(), gone["id"], kept["id"])
    desk.daemon.flush()
    assert desk.event(gone["id"]) is None, "the cancellation is not written back"
    assert desk.event(kept["id"]) is not None


def test_a_sessions_event_coming_back_is_not_read_again(
    caldav_desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync after the outbox wrote a session lists its event with the ETag the server
    gave the write (on Radicale and Xandikos alike): the daemon does not fetch it, and
    stores the session's UID under that ETag, as a read would have."""
    desk = caldav_desk
    session = desk.book(monday(9))
    desk.daemon.flush()
    tech = desk.technician(session["id"])
    calendar_id, adapter = desk.daemon.parts.calendars.session_calendar(tech)
    results = record_syncs(monkeypatch, adapter)
    desk.daemon.sync_all()
    stored = desk.daemon.store.get_session(session["id"])
    assert stored is not None and stored.calendar_etag
    href = adapter.session_href(stored.calendar_uid)
    assert [(c.href, c.written) for c in results[-1].changes] == [(href, True)]
    assert desk.daemon.store.calendar_objects(calendar_id) == {
        href: (stored.calendar_uid, stored.calendar_etag)
    }
    assert desk.daemon.store.unlisted_session_writes(calendar_id) == {}


def test_the_technician_moving_the_event_moves_or_flags_the_session(desk: Desk) -> None:
    first = desk.book(monday(9))
    second = desk.book(monday(9))
    desk.daemon.flush()
    desk.daemon.sync_all()
    for session, new_start in ((first, "20261130T140000"), (second, "20261130T150000")):
        tech = desk.technician(session["id"])
        name = desk.event_name(session["id"])
        raw = desk.calendars[tech].get_raw(name)
        assert raw is not None
        cal = icalendar.Calendar.from_ical(raw)
        event = cal.events[0]
        start = datetime.strptime(new_start + "Z", "%Y%m%dT%H%M%S%z")
        event.DTSTART = start
        event.DTEND = start + timedelta(minutes=30)
        desk.calendars[tech].put_raw(name, cal.to_ical())
    desk.daemon.sync_all()
    _, moved = desk.get(f"/api/v1/sessions/{first['id']}", ADMIN)
    assert moved["start"] == monday(11).isoformat()  # 14:00Z: a valid time
    _, flagged = desk.get(f"/api/v1/sessions/{second['id']}", ADMIN)
    assert flagged["start"] == monday(9).isoformat()  # 15:00Z is lunch: kept, flagged
    assert "outside_hours" in flagged["needs_attention"]
    _, health = desk.get("/healthz")
    assert health["sessions_needing_attention"] == 1
    _, metrics = desk.get("/metrics")
    assert 'expediente_two_way_total{kind="flagged"} 1.0' in metrics
    # Where the daemon's CPU went, by thread group: the requests just served among them.
    assert 'expediente_thread_cpu_seconds_total{threads="waitress"}' in metrics


def test_fifty_concurrent_posts_for_one_slot_book_it_once(desk: Desk) -> None:
    # Bruno is away at 09:00, so the slot has exactly one free technician.
    desk.calendars["bruno"].put_raw(
        "away.ics", private_event("away", "20261130T120000Z", "20261130T123000Z")
    )
    desk.daemon.sync_all()
    assert desk.slots(monday(0))[monday(9).isoformat()] == 1
    body = booking(monday(9))
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(
            pool.map(lambda _: http("POST", desk.url + "/api/v1/bookings", body), range(50))
        )
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 49, statuses
    assert all(b["error"]["code"] == "slot_taken" for s, b in results if s == 409)
    desk.daemon.flush()
    assert len(session_objects(desk.calendars["ana"])) == 1
    assert session_objects(desk.calendars["bruno"]) == []


def test_a_booking_made_while_the_calendar_server_is_down_is_written_when_it_is_back(
    tmp_path: Path,
) -> None:
    server = RadicaleServer(tmp_path / "radicale")
    with server:
        calendars = {"ana": server.new_calendar(), "bruno": server.new_calendar()}
        path = write_config(tmp_path / "desk", calendars, settings=LIVE)
        clock = FixedClock(monday(7, 0))
        daemon = Daemon(load_config(path), clock=clock, systemd=Notifier({}))
        daemon.start(port=0)
        try:
            assert daemon.server is not None
            url = daemon.server.url
            server.stop()
            status, session = http("POST", url + "/api/v1/bookings", booking(monday(9)))
            assert status == 201, "the booking is accepted: the store is the source of truth"
            report = daemon.flush()
            assert report.failed >= 1
            _, health = http("GET", url + "/healthz")
            assert health["outbox_depth"] >= 1
            server.start(same_port=True)
            clock.advance(timedelta(minutes=10))
            daemon.flush()
            _, full = http("GET", url + f"/api/v1/sessions/{session['id']}", headers=ADMIN)
            name = f"expediente-{session['id']}.ics"
            assert calendars[full["technician_id"]].get_raw(name) is not None
            _, health = http("GET", url + "/healthz")
            assert health["outbox_depth"] == 0
        finally:
            daemon.shutdown()


def test_kill_9_loses_no_booking_and_duplicates_no_event(
    process_desk: tuple[Process, dict[str, CalendarHandle]], radicale: RadicaleServer
) -> None:
    process, calendars = process_desk
    process.start()
    url = process.url
    status, written = http("POST", url + "/api/v1/bookings", booking(monday(9)))
    assert status == 201
    name = f"expediente-{written['id']}.ics"
    tech = http("GET", url + f"/api/v1/sessions/{written['id']}", headers=ADMIN)[1]
    process.wait_until(
        lambda: calendars[tech["technician_id"]].get_raw(name) is not None, "first event"
    )
    # A second booking killed before (or while) its event is written.
    status, pending = http("POST", url + "/api/v1/bookings", booking(monday(10)))
    assert status == 201
    process.kill9()
    process.start()
    for session in (written, pending):
        _, full = http("GET", url + f"/api/v1/sessions/{session['id']}", headers=ADMIN)
        assert full["status"] == "booked", "no accepted booking is lost"
        calendar = calendars[full["technician_id"]]
        event_name = f"expediente-{session['id']}.ics"
        process.wait_until(lambda c=calendar, n=event_name: c.get_raw(n) is not None, "event")
    names = session_objects(calendars["ana"]) + session_objects(calendars["bruno"])
    assert sorted(names) == sorted(
        {f"expediente-{written['id']}.ics", f"expediente-{pending['id']}.ics"}
    ), "one event per session, no duplicate"
    assert process.stop() == 0


def test_sighup_with_a_broken_config_keeps_the_running_one(
    process_desk: tuple[Process, dict[str, CalendarHandle]],
) -> None:
    process, _ = process_desk
    process.start()
    good = process.config.read_text()
    process.config.write_text(good.replace('horizon = "30d"', 'horizon = "whenever"'))
    process.signal(signal.SIGHUP)
    process.wait_until(lambda: "reload refused" in process.log.read_text(), "reload refused")
    assert "horizon" in process.log.read_text().split("reload refused", 1)[1]
    status, _ = http("POST", process.url + "/api/v1/bookings", booking(monday(9, weeks=2)))
    assert status == 201, "the old configuration (30-day horizon) still applies"
    process.config.write_text(good.replace('horizon = "30d"', 'horizon = "7d"'))
    process.signal(signal.SIGHUP)
    process.wait_until(
        lambda: "configuration reloaded" in process.log.read_text(), "configuration reloaded"
    )
    status, body = http("POST", process.url + "/api/v1/bookings", booking(monday(10, weeks=2)))
    assert status == 422
    assert "beyond_horizon" in [v["code"] for v in body["error"]["violations"]]
    assert process.stop() == 0
    log = process.log.read_text()
    assert "stopped" in log
    secrets = (process.config.parent / "secrets").iterdir()
    for secret in secrets:
        assert secret.read_text().strip() not in log, f"{secret.name} leaked into the log"


def test_a_calendar_problem_is_logged_once_per_sync(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    """The CalDAV adapter logs the problems it returns; the daemon does not repeat them."""
    desk.calendars["ana"].put_raw(
        "noend.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        "UID:no-end-1\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T120000Z\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    with caplog.at_level("WARNING"):
        desk.daemon.sync_all()
    mentions = [r for r in caplog.records if "no-end-1" in r.getMessage()]
    assert len(mentions) == 1, [r.getMessage() for r in mentions]
