"""A desk with one technician on Google Calendar and one on CalDAV: the daemon drives
the real google-api-python-client against the local Calendar v3 server, and Radicale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.loop import Daemon
from daemon.systemd import Notifier
from tests.daemon.desk import monday, write_config
from tests.daemon.forged import FORGED, assert_client_text_set_apart
from tests.e2e.harness import ADMIN, LIVE, Desk, assert_only_cancelled
from tests.servers import CalDAVServer
from tests.servers.gcal import GoogleCalendarServer, make_service_account_key

pytestmark = pytest.mark.slow

ANA_GOOGLE = "ana@empresa.example"


@pytest.fixture
def google_desk(
    radicale: CalDAVServer, tmp_path: Path
) -> Iterator[tuple[Desk, GoogleCalendarServer]]:
    with GoogleCalendarServer() as google:
        google.add_calendar(ANA_GOOGLE)
        key = make_service_account_key(google.token_uri)
        google.add_service_account(key)
        calendars = {"ana": radicale.new_calendar(), "bruno": radicale.new_calendar()}
        ana_google = {
            "kind": "google",
            "calendar_id": ANA_GOOGLE,
            "credentials_file": "secrets/google.json",
            "api_endpoint": google.api_endpoint,
        }
        path = write_config(
            tmp_path, {"ana": ana_google, "bruno": calendars["bruno"]}, settings=LIVE
        )
        key.write(tmp_path / "secrets" / "google.json")
        clock = FixedClock(monday(7, 0))
        daemon = Daemon(load_config(path), clock=clock, systemd=Notifier({}))
        daemon.start(port=0)
        try:
            yield Desk(daemon, clock, radicale, calendars, path), google
        finally:
            daemon.shutdown()


def session_events(google: GoogleCalendarServer) -> list[dict[str, object]]:
    return [
        e
        for e in google.events(ANA_GOOGLE)
        if e.get("status") != "cancelled" and "extendedProperties" in e
    ]


def test_a_google_technicians_sessions_busy_time_and_deletions(
    google_desk: tuple[Desk, GoogleCalendarServer],
) -> None:
    desk, google = google_desk
    _, health = desk.get("/healthz")
    assert health["status"] == "ok", health  # both calendars synced
    # Bruno is away at 09:00, so the booking goes to Ana, on Google.
    desk.calendars["bruno"].put_raw(
        "away.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:away\r\n"
        "DTSTAMP:20261101T000000Z\r\nDTSTART:20261130T120000Z\r\nDTEND:20261130T123000Z\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    desk.daemon.sync_all()
    session = desk.book(monday(9), description=FORGED)
    assert desk.technician(session["id"]) == "ana"
    desk.daemon.flush()
    [event] = session_events(google)
    assert "Relojoaria Central" in str(event["summary"])
    public_url = desk.daemon.config.server.public_url
    assert_client_text_set_apart(str(event["description"]), f"{public_url}/checkin/")

    # Ana adds a private event in Google Calendar: her 11:00 is gone after the next sync.
    assert desk.slots(monday(0))[monday(11).isoformat()] == 2
    google.store_raw(
        ANA_GOOGLE,
        {
            "summary": "dentista",
            "start": {"dateTime": "2026-11-30T11:00:00-03:00"},
            "end": {"dateTime": "2026-11-30T12:00:00-03:00"},
        },
    )
    desk.daemon.sync_all()
    assert desk.slots(monday(0))[monday(11).isoformat()] == 1

    # She deletes the session event: the session is cancelled.
    google.store_raw(ANA_GOOGLE, {**event, "status": "cancelled"})
    desk.daemon.sync_all()
    _, body = desk.get(f"/api/v1/sessions/{session['id']}", ADMIN)
    assert body["status"] == "cancelled"


def test_a_google_event_deleted_before_the_next_sync_cancels_the_session(
    google_desk: tuple[Desk, GoogleCalendarServer],
) -> None:
    """Deleted before any sync listed it: Google lists only ``{"id", "status":
    "cancelled"}``, an id no sync has tied to a UID."""
    desk, google = google_desk
    first, second = desk.book(monday(9)), desk.book(monday(9))  # one per technician
    gone, kept = (first, second) if desk.technician(first["id"]) == "ana" else (second, first)
    desk.daemon.flush()
    [event] = session_events(google)
    google.store_raw(ANA_GOOGLE, {**event, "status": "cancelled"})
    other = google.store_raw(
        ANA_GOOGLE, {"summary": "x", "start": event["start"], "end": event["end"]}
    )
    google.store_raw(ANA_GOOGLE, {"id": other, "status": "cancelled"})  # unrelated, likewise
    assert_only_cancelled(desk, desk.daemon.sync_all(), gone["id"], kept["id"])
    desk.daemon.flush()
    assert session_events(google) == [], "the cancellation is not written back"
