"""The Google Calendar adapter against the local Calendar v3 server (tests/servers/gcal.py).

The contract suite runs as it is. Where it names an object (``new.ics``), Google has an
event id instead (base32hex): the technician's app here (:class:`GoogleApp`) maps a name
to an id, and the contract's ``stored_name`` hook does the same. Everything else is
Google-specific: paging, 410, retries, 409/412, busy semantics, malformed events,
free/busy batching and both credential flows.
"""

from __future__ import annotations

import base64
import json
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from connectors.base import (
    AuthFailed,
    BadConfiguration,
    Conflict,
    NotFound,
    SessionCalendar,
    Unavailable,
)
from connectors.google import GoogleCalendar, event_id
from connectors.retry import RetryPolicy
from rules.intervals import Interval
from tests.connectors.contract import (
    SP,
    WINDOW,
    SessionCalendarContract,
    session,
    sp,
)
from tests.servers.gcal import (
    Fault,
    GoogleCalendarServer,
    ServiceAccountKey,
    make_service_account_key,
)

_calendars = count(1)


class SleepRecorder:
    """Stands in for time.sleep: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="module")
def server() -> Iterator[GoogleCalendarServer]:
    with GoogleCalendarServer() as running:
        yield running


@pytest.fixture(scope="module")
def sa_key(server: GoogleCalendarServer) -> ServiceAccountKey:
    key = make_service_account_key(server.token_uri)
    server.add_service_account(key)
    return key


@pytest.fixture(scope="module")
def key_file(sa_key: ServiceAccountKey, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sa_key.write(tmp_path_factory.mktemp("google") / "service-account.json")


@pytest.fixture(autouse=True)
def _no_leftover_faults(server: GoogleCalendarServer) -> Iterator[None]:
    yield
    server.clear_faults()


@pytest.fixture
def calendar_id(server: GoogleCalendarServer) -> str:
    cal_id = f"tech{next(_calendars)}@empresa.example"
    server.add_calendar(cal_id)
    return cal_id


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def open_adapter(
    server: GoogleCalendarServer,
    calendar_id: str,
    credentials: Path,
    sleeps: SleepRecorder | None = None,
    **kwargs: Any,
) -> GoogleCalendar:
    policy = RetryPolicy(
        attempts=3,
        base_delay=0.5,
        max_delay=4.0,
        sleep=sleeps or SleepRecorder(),
        rng=random.Random(7),
    )
    return GoogleCalendar(
        calendar_id,
        credentials_file=credentials,
        desk_tz=SP,
        api_endpoint=server.api_endpoint,
        timeout=5,
        retry_policy=policy,
        **kwargs,
    )


@pytest.fixture
def adapter(
    server: GoogleCalendarServer, calendar_id: str, key_file: Path, sleeps: SleepRecorder
) -> Iterator[GoogleCalendar]:
    with open_adapter(server, calendar_id, key_file, sleeps) as cal:
        yield cal


# ---------------------------------------------------------------------- the technician's app


class GoogleApp:
    """The technician's calendar app, through the API with its own token.

    ``put_raw`` turns a small iCalendar object into a JSON event (times, summary,
    description, TRANSP, recurrence) and inserts or patches it at the id for ``name``.
    Objects Google would refuse (no end) are placed behind the API's back, as a broken file
    is placed on a CalDAV server's disk.
    """

    def __init__(self, server: GoogleCalendarServer, calendar_id: str) -> None:
        self.server = server
        self.calendar_id = calendar_id
        self.token = server.issue_token()

    @staticmethod
    def event_id(name: str) -> str:
        if len(name) >= 5 and all(c in "0123456789abcdefghijklmnopqrstuv" for c in name):
            return name
        return base64.b32hexencode(name.encode()).decode().rstrip("=").lower()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return api(self.server, method, path, body, token=self.token)

    def events_path(self, eid: str = "") -> str:
        base = f"/calendar/v3/calendars/{self.calendar_id}/events"
        return f"{base}/{eid}" if eid else base

    def put_raw(self, name: str, data: str | bytes) -> str:
        eid = self.event_id(name)
        body = ical_to_json(data)
        status, current = self.call("GET", self.events_path(eid))
        if status == 200 and current.get("status") != "cancelled":
            status, answer = self.call("PATCH", self.events_path(eid), body)
        else:
            status, answer = self.call("POST", self.events_path(), {"id": eid, **body})
        if status == 400:
            self.server.store_raw(self.calendar_id, {"id": eid, **body})
            return str(self.server.event(self.calendar_id, eid)["etag"])  # type: ignore[index]
        assert status == 200, answer
        return str(answer["etag"])

    def get_raw(self, name: str) -> bytes | None:
        status, event = self.call("GET", self.events_path(self.event_id(name)))
        if status != 200 or event.get("status") == "cancelled":
            return None
        return json_to_ical(event)

    def delete_raw(self, name: str) -> None:
        status, _ = self.call("DELETE", self.events_path(self.event_id(name)))
        assert status in (204, 404, 410)

    def insert(self, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.call("POST", self.events_path(), body)
        assert status == 200, answer
        return dict(answer)

    def patch(self, eid: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.call("PATCH", self.events_path(eid), body)
        assert status == 200, answer
        return dict(answer)


def api(
    server: GoogleCalendarServer, method: str, path: str, body: Any = None, *, token: str
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + path, data=data, method=method)  # noqa: S310
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def _json_time(value: Any) -> dict[str, str]:
    moment = value.dt
    if hasattr(moment, "hour"):
        return {"dateTime": moment.isoformat(), "timeZone": "UTC"}
    return {"date": moment.isoformat()}


def ical_to_json(data: str | bytes) -> dict[str, Any]:
    event = next(iter(icalendar.Calendar.from_ical(data).walk("VEVENT")))
    body: dict[str, Any] = {"iCalUID": str(event["UID"]), "summary": str(event.get("SUMMARY", ""))}
    if "DESCRIPTION" in event:
        body["description"] = str(event["DESCRIPTION"])
    body["start"] = _json_time(event["DTSTART"])
    if "DTEND" in event:
        body["end"] = _json_time(event["DTEND"])
    if str(event.get("TRANSP", "")).upper() == "TRANSPARENT":
        body["transparency"] = "transparent"
    rules = [f"RRULE:{event['RRULE'].to_ical().decode()}"] if "RRULE" in event else []  # type: ignore[union-attr]
    if rules:
        body["recurrence"] = rules
    return body


def json_to_ical(event: dict[str, Any]) -> bytes:
    vevent = icalendar.Event()
    private = (event.get("extendedProperties") or {}).get("private") or {}
    vevent.add("UID", private.get("expedienteUid") or event["iCalUID"])
    for name, key in (("DTSTART", "start"), ("DTEND", "end")):
        when = event[key]
        zone = ZoneInfo(when.get("timeZone") or "UTC")
        vevent.add(name, datetime.fromisoformat(when["dateTime"]).astimezone(zone))
    vevent.add("SUMMARY", event.get("summary", ""))
    vevent.add("DESCRIPTION", event.get("description", ""))
    if "expedienteState" in private:
        vevent.add("X-EXPEDIENTE-STATE", private["expedienteState"])
    for override in (event.get("reminders") or {}).get("overrides") or []:
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("TRIGGER", -timedelta(minutes=override["minutes"]))
        vevent.add_component(alarm)
    cal = icalendar.Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", "-//test app//EN")
    cal.add_component(vevent)
    return bytes(cal.to_ical())


@pytest.fixture
def app(server: GoogleCalendarServer, calendar_id: str) -> GoogleApp:
    return GoogleApp(server, calendar_id)


# ---------------------------------------------------------------------- the contract


class TestGoogleContract(SessionCalendarContract):
    """The SessionCalendar contract, with Google's event ids for the names of objects."""

    skips_known_bodies = False  # events.list hands over every changed event's body

    @pytest.fixture
    def calendar(self, adapter: GoogleCalendar) -> SessionCalendar:
        return adapter

    def stored_name(self, name: str) -> str:
        return GoogleApp.event_id(name)  # Google keeps an event at its id, not a name


# ---------------------------------------------------------------------- ids


def test_event_ids_are_valid_google_ids_and_stable() -> None:
    for uid in ("sess-0001", "a", "ção-ü", "x" * 700, "sess/with spaces@host"):
        eid = event_id(uid)
        assert 5 <= len(eid) <= 1024
        assert set(eid) <= set("0123456789abcdefghijklmnopqrstuv")
        assert event_id(uid) == eid
    assert event_id("sess-0001") != event_id("sess-0002")
    assert base64.b32hexdecode(event_id("sess-0001").upper() + "=" * 1) == b"sess-0001"


# ---------------------------------------------------------------------- sync


def _timed(summary: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": start, "timeZone": "America/Sao_Paulo"},
        "end": {"dateTime": end, "timeZone": "America/Sao_Paulo"},
        **extra,
    }


def test_paging_across_pages_and_idle_sync_is_one_request(
    server: GoogleCalendarServer, calendar_id: str, key_file: Path, app: GoogleApp
) -> None:
    for n in range(7):
        app.insert(
            _timed(f"e{n}", f"2026-03-0{n + 2}T10:00:00-03:00", f"2026-03-0{n + 2}T11:00:00-03:00")
        )
    with open_adapter(server, calendar_id, key_file, page_size=3) as cal:
        before = len(server.api_requests("GET", "/events"))
        first = cal.sync(None, WINDOW)
        lists = server.api_requests("GET", "/events")[before:]
        assert len(lists) == 3  # 3 + 3 + 1
        assert all(r.query["maxResults"] == ["3"] for r in lists)
        assert "pageToken" not in lists[0].query and "pageToken" in lists[2].query
        assert first.full
        assert len([c for c in first.changes if not c.deleted]) == 7
        assert first.requests >= 3
        idle = cal.sync(first.state, WINDOW)
        assert (idle.changes, idle.full, idle.requests) == ([], False, 1)


def test_expired_sync_token_resyncs_in_full(
    server: GoogleCalendarServer, adapter: GoogleCalendar, app: GoogleApp
) -> None:
    app.insert(_timed("a", "2026-03-02T10:00:00-03:00", "2026-03-02T11:00:00-03:00"))
    first = adapter.sync(None, WINDOW)
    server.expire_sync_tokens()
    app.insert(_timed("b", "2026-03-03T10:00:00-03:00", "2026-03-03T11:00:00-03:00"))
    again = adapter.sync(first.state, WINDOW)
    assert again.full
    assert len([c for c in again.changes if not c.deleted]) == 2
    assert any("expired" in p.message for p in again.problems)
    assert not adapter.sync(again.state, WINDOW).full


def test_busy_semantics(adapter: GoogleCalendar, app: GoogleApp, calendar_id: str) -> None:
    busy = app.insert(_timed("busy", "2026-03-02T10:00:00-03:00", "2026-03-02T11:00:00-03:00"))
    free = app.insert(
        _timed(
            "free",
            "2026-03-02T12:00:00-03:00",
            "2026-03-02T13:00:00-03:00",
            transparency="transparent",
        )
    )
    declined = app.insert(
        _timed(
            "declined",
            "2026-03-02T14:00:00-03:00",
            "2026-03-02T15:00:00-03:00",
            attendees=[
                {"email": "boss@empresa.example", "responseStatus": "accepted"},
                {"email": calendar_id, "self": True, "responseStatus": "declined"},
            ],
        )
    )
    accepted = app.insert(
        _timed(
            "accepted",
            "2026-03-03T14:00:00-03:00",
            "2026-03-03T15:00:00-03:00",
            attendees=[{"email": calendar_id, "self": True, "responseStatus": "accepted"}],
        )
    )
    allday = app.insert(
        {"summary": "off", "start": {"date": "2026-03-04"}, "end": {"date": "2026-03-06"}}
    )
    cancelled = app.insert(_timed("gone", "2026-03-09T10:00:00-03:00", "2026-03-09T11:00:00-03:00"))
    app.call("DELETE", app.events_path(cancelled["id"]))
    result = adapter.sync(None, WINDOW)
    found = {c.href: c for c in result.changes}
    assert found[busy["id"]].blocks == (Interval(sp(2026, 3, 2, 10), sp(2026, 3, 2, 11)),)
    assert found[free["id"]].blocks == ()
    assert found[declined["id"]].blocks == ()
    assert found[accepted["id"]].blocks == (Interval(sp(2026, 3, 3, 14), sp(2026, 3, 3, 15)),)
    assert found[allday["id"]].blocks == (Interval(sp(2026, 3, 4), sp(2026, 3, 6)),)
    assert cancelled["id"] not in found  # a full sync lists only what exists


def test_recurring_master_with_exceptions_and_exdate(
    adapter: GoogleCalendar, app: GoogleApp
) -> None:
    master = app.insert(
        _timed(
            "weekly",
            "2026-03-02T10:00:00-03:00",
            "2026-03-02T11:00:00-03:00",
            recurrence=[
                "RRULE:FREQ=WEEKLY;COUNT=5",
                "EXDATE;TZID=America/Sao_Paulo:20260316T100000",
            ],
        )
    )
    mid = master["id"]
    first = adapter.sync(None, WINDOW)
    weekly = {c.href: c for c in first.changes}[mid]
    assert [b.start.day for b in weekly.blocks] == [2, 9, 23, 30]
    # The technician moves the 9th to the 10th at 15:00 and deletes the 23rd.
    app.patch(
        f"{mid}_20260309T130000Z",
        {
            "start": {"dateTime": "2026-03-10T15:00:00-03:00"},
            "end": {"dateTime": "2026-03-10T16:00:00-03:00"},
        },
    )
    app.call("DELETE", app.events_path(f"{mid}_20260323T130000Z"))
    delta = adapter.sync(first.state, WINDOW)
    assert not delta.full
    assert [c.href for c in delta.changes] == [mid]  # exceptions fold into their master
    assert delta.changes[0].blocks == (
        Interval(sp(2026, 3, 2, 10), sp(2026, 3, 2, 11)),
        Interval(sp(2026, 3, 10, 15), sp(2026, 3, 10, 16)),
        Interval(sp(2026, 3, 30, 10), sp(2026, 3, 30, 11)),
    )
    # A full sync reads the same series the same way.
    full = {c.href: c for c in adapter.sync(None, WINDOW).changes}
    assert full[mid].blocks == delta.changes[0].blocks
    app.call("DELETE", app.events_path(mid))
    gone = adapter.sync(delta.state, WINDOW)
    assert [(c.href, c.deleted) for c in gone.changes] == [(mid, True)]


def test_endless_rule_costs_only_the_window(adapter: GoogleCalendar, app: GoogleApp) -> None:
    daily = app.insert(
        _timed(
            "daily",
            "2020-01-01T08:00:00-03:00",
            "2020-01-01T08:30:00-03:00",
            recurrence=["RRULE:FREQ=DAILY"],
        )
    )
    result = adapter.sync(None, WINDOW)
    blocks = {c.href: c for c in result.changes}[daily["id"]].blocks
    assert len(blocks) == 31 + 7  # the window and the expansion margin past it
    assert blocks[0] == Interval(sp(2026, 3, 1, 8), sp(2026, 3, 1, 8, 30))


# ---------------------------------------------------------------------- malformed data


def test_malformed_events_are_problems_and_the_rest_counts(
    server: GoogleCalendarServer, adapter: GoogleCalendar, calendar_id: str, app: GoogleApp
) -> None:
    good = app.insert(_timed("good", "2026-03-02T10:00:00-03:00", "2026-03-02T11:00:00-03:00"))
    raw: dict[str, dict[str, Any]] = {
        "noend": {"start": {"dateTime": "2026-03-03T10:00:00-03:00"}},
        "baddate": {"start": {"dateTime": "2026-13-45T10:00:00-03:00"}, "end": {"dateTime": "x"}},
        "badend": {"start": {"dateTime": "2026-03-05T10:00:00-03:00"}, "end": {"date": "nope"}},
        "zone": {
            "start": {"dateTime": "2026-03-06T10:00:00-03:00", "timeZone": "Mars/Olympus"},
            "end": {"dateTime": "2026-03-06T11:00:00-03:00", "timeZone": "Mars/Olympus"},
        },
        "minutely": {
            "start": {"dateTime": "2026-03-10T10:00:00-03:00", "timeZone": "America/Sao_Paulo"},
            "end": {"dateTime": "2026-03-10T10:30:00-03:00", "timeZone": "America/Sao_Paulo"},
            "recurrence": ["RRULE:FREQ=MINUTELY"],
        },
        "badrule": {
            "start": {"dateTime": "2026-03-11T10:00:00-03:00", "timeZone": "America/Sao_Paulo"},
            "end": {"dateTime": "2026-03-11T11:00:00-03:00", "timeZone": "America/Sao_Paulo"},
            "recurrence": ["RRULE:FREQ=SOMETIMES", "X-EVIL:1\r\nBEGIN:VEVENT"],
        },
        "huge": {
            "start": {"dateTime": "2026-03-12T10:00:00-03:00"},
            "end": {"dateTime": "2026-03-12T11:00:00-03:00"},
            "description": "x" * 2_000_000,
        },
    }
    ids = {
        name: server.store_raw(calendar_id, {"iCalUID": f"{name}@app", "summary": name, **body})
        for name, body in raw.items()
    }
    result = adapter.sync(None, WINDOW)
    found = {c.href: c for c in result.changes}
    assert found[good["id"]].blocks == (Interval(sp(2026, 3, 2, 10), sp(2026, 3, 2, 11)),)

    def problems(name: str) -> list[str]:
        return [p.message for p in result.problems if p.uid == f"{name}@app"]

    for name, eid in ids.items():
        assert problems(name), name
        assert all(eid in m for m in problems(name)), name
        assert all(p.calendar == adapter.name for p in result.problems)
    # Conservative readings:
    assert found[ids["noend"]].blocks == (Interval(sp(2026, 3, 3, 10), sp(2026, 3, 3, 11)),)
    assert found[ids["baddate"]].blocks == ()  # no readable start: skipped, an error
    assert any(p.severity == "error" for p in found[ids["baddate"]].problems)
    assert found[ids["badend"]].blocks == (Interval(sp(2026, 3, 5, 10), sp(2026, 3, 5, 11)),)
    assert found[ids["zone"]].blocks == (Interval(sp(2026, 3, 6, 10), sp(2026, 3, 6, 11)),)
    assert found[ids["badrule"]].blocks == (Interval(sp(2026, 3, 11, 10), sp(2026, 3, 11, 11)),)
    assert found[ids["huge"]].blocks == (Interval(sp(2026, 3, 12, 10), sp(2026, 3, 12, 11)),)
    assert any("2000000 characters" in m for m in problems("huge"))
    assert "x" * 100 not in "".join(p.message for p in result.problems)


# ---------------------------------------------------------------------- failures


def test_429_then_success_honours_retry_after(
    server: GoogleCalendarServer, adapter: GoogleCalendar, sleeps: SleepRecorder, app: GoogleApp
) -> None:
    app.insert(_timed("a", "2026-03-02T10:00:00-03:00", "2026-03-02T11:00:00-03:00"))
    server.inject(Fault(status=429, retry_after="2"))
    result = adapter.sync(None, WINDOW)
    assert len(result.changes) == 1
    assert result.requests >= 2
    assert sleeps.waits and sleeps.waits[0] >= 2.0
    assert server.pending_faults() == 0


def test_retry_after_beyond_the_limit_gives_up_at_once(
    server: GoogleCalendarServer, adapter: GoogleCalendar, sleeps: SleepRecorder
) -> None:
    server.inject(Fault(status=429, retry_after="3600"))
    with pytest.raises(Unavailable) as caught:
        adapter.sync(None, WINDOW)
    assert caught.value.retry_after == 3600
    assert sleeps.waits == []


def test_503_beyond_the_retry_budget_raises_never_empty(
    server: GoogleCalendarServer, adapter: GoogleCalendar, sleeps: SleepRecorder, app: GoogleApp
) -> None:
    app.insert(_timed("a", "2026-03-02T10:00:00-03:00", "2026-03-02T11:00:00-03:00"))
    first = adapter.sync(None, WINDOW)
    server.inject(*[Fault(status=503)] * 3)
    with pytest.raises(Unavailable):
        adapter.sync(first.state, WINDOW)
    with pytest.raises(Unavailable):
        server.inject(*[Fault(status=500)] * 3)
        adapter.sync(None, WINDOW)
    assert len(sleeps.waits) == 4  # two waits per call of three attempts


def test_dropped_connections_are_retried_then_unavailable(
    server: GoogleCalendarServer, adapter: GoogleCalendar, app: GoogleApp
) -> None:
    app.insert(_timed("a", "2026-03-02T10:00:00-03:00", "2026-03-02T11:00:00-03:00"))
    server.inject(*[Fault(drop="before")] * 2)  # httplib2 itself resends once
    assert len(adapter.sync(None, WINDOW).changes) == 1
    server.inject(*[Fault(drop="before")] * 12)
    with pytest.raises(Unavailable):
        adapter.sync(None, WINDOW)


def test_retried_insert_after_a_lost_answer_does_not_duplicate(
    server: GoogleCalendarServer, adapter: GoogleCalendar, calendar_id: str
) -> None:
    server.inject(Fault(drop="after", method="POST"), Fault(drop="before", method="POST"))
    etag = adapter.put_session(session())
    posts = server.api_requests("POST", f"/calendars/{calendar_id}/events")
    # Landed (answer lost), resent by httplib2 and dropped, resent by the adapter: 409.
    assert len(posts) == 3
    assert server.api_requests("GET", "/" + event_id("sess-0001"))  # read after the 409
    events = [e for e in server.events(calendar_id) if e.get("status") != "cancelled"]
    assert [e["id"] for e in events] == [event_id("sess-0001")]
    assert events[0]["etag"] == etag


def test_stale_etag_is_a_conflict_on_412(adapter: GoogleCalendar, app: GoogleApp) -> None:
    stale = adapter.put_session(session())
    app.patch(event_id("sess-0001"), {"summary": "moved by the technician"})
    with pytest.raises(Conflict):
        adapter.put_session(session(state="in_progress"), etag=stale)
    with pytest.raises(Conflict):
        adapter.delete_session("sess-0001", stale)


def test_another_event_at_the_session_id_is_a_conflict(
    adapter: GoogleCalendar, app: GoogleApp
) -> None:
    app.insert(
        {
            "id": event_id("sess-0001"),
            **_timed("mine", "2026-03-02T10:00:00-03:00", "2026-03-02T11:00:00-03:00"),
        }
    )
    with pytest.raises(Conflict):
        adapter.put_session(session())
    assert adapter.get_session("sess-0001") is None


def test_session_event_as_google_stores_it(
    server: GoogleCalendarServer, adapter: GoogleCalendar, calendar_id: str
) -> None:
    etag = adapter.put_session(session(url="https://desk.example/c/1", alarm_minutes=15))
    stored = server.event(calendar_id, event_id("sess-0001"))
    assert stored is not None
    assert stored["extendedProperties"]["private"] == {
        "expedienteUid": "sess-0001",
        "expedienteState": "booked",
    }
    assert stored["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "popup", "minutes": 15}],
    }
    assert stored["transparency"] == "opaque"
    assert stored["description"] == session().description
    assert stored["source"]["url"] == "https://desk.example/c/1"
    rescheduled = adapter.put_session(session(state="rescheduled"), etag=etag)
    stored = server.event(calendar_id, event_id("sess-0001"))
    assert stored is not None and stored["etag"] == rescheduled
    assert stored["summary"].startswith("[REAGENDADO] ")
    assert stored["transparency"] == "transparent"
    assert stored["reminders"]["overrides"] == []
    found = adapter.get_session("sess-0001")
    assert found is not None and found[0].blocks == ()


def test_session_recreated_after_delete(adapter: GoogleCalendar) -> None:
    adapter.put_session(session())
    adapter.delete_session("sess-0001")
    etag = adapter.put_session(session())  # 409 on a deleted id: revived, not refused
    found = adapter.get_session("sess-0001")
    assert found is not None and found[1] == etag


def test_unknown_calendar_is_bad_configuration(
    server: GoogleCalendarServer, key_file: Path
) -> None:
    with (
        open_adapter(server, "nobody@empresa.example", key_file) as cal,
        pytest.raises(BadConfiguration),
    ):
        cal.sync(None, WINDOW)


# ---------------------------------------------------------------------- free/busy


def test_free_busy_batches_over_50_calendars(
    server: GoogleCalendarServer, adapter: GoogleCalendar, app: GoogleApp, calendar_id: str
) -> None:
    others = []
    for n in range(54):
        cal_id = f"fb{n}-{calendar_id}"
        server.add_calendar(cal_id)
        others.append(cal_id)
    GoogleApp(server, others[53]).insert(
        _timed("x", "2026-03-02T10:00:00-03:00", "2026-03-02T11:00:00-03:00")
    )
    app.insert(_timed("y", "2026-03-03T10:00:00-03:00", "2026-03-03T11:00:00-03:00"))
    window = Interval(sp(2026, 3, 1), sp(2026, 6, 1))  # 92 days: more than one span
    before = len(server.api_requests("POST", "/freeBusy"))
    result = adapter.free_busy([calendar_id, *others, "missing@empresa.example"], window)
    queries = server.api_requests("POST", "/freeBusy")[before:]
    assert len(queries) == 4  # 2 batches × 2 spans
    assert all(len(q.body["items"]) <= 50 for q in queries)
    assert result[others[53]].intervals == [Interval(sp(2026, 3, 2, 10), sp(2026, 3, 2, 11))]
    assert result[calendar_id].intervals == [Interval(sp(2026, 3, 3, 10), sp(2026, 3, 3, 11))]
    assert result[others[0]].intervals == []
    missing = result["missing@empresa.example"]
    assert missing.problems and missing.intervals  # unknown time is not offered as free
    assert missing.intervals[0].start == window.start


# ---------------------------------------------------------------------- credentials


def test_service_account_jwt_flow_with_subject(
    server: GoogleCalendarServer, calendar_id: str, key_file: Path
) -> None:
    before = len(server.token_requests)
    with open_adapter(server, calendar_id, key_file, subject="ana@empresa.example") as cal:
        cal.sync(None, WINDOW)
    grants = server.token_requests[before:]
    assert [g["grant_type"] for g in grants] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    last = server.api_requests()[-1]
    assert last.subject == "ana@empresa.example"


def test_a_key_the_server_does_not_know_fails_auth(
    server: GoogleCalendarServer, calendar_id: str, tmp_path: Path
) -> None:
    stranger = make_service_account_key(server.token_uri, email="desk@expediente-test.iam.example")
    path = stranger.write(tmp_path / "other.json")  # same account name, another key
    with open_adapter(server, calendar_id, path) as cal, pytest.raises(AuthFailed):
        cal.sync(None, WINDOW)


def test_refresh_token_flow_and_a_revoked_access_token(
    server: GoogleCalendarServer, calendar_id: str, tmp_path: Path
) -> None:
    server.add_refresh_token("client-1.apps.example", "shh", "1//refresh-abc")
    path = tmp_path / "user.json"
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "client-1.apps.example",
                "client_secret": "shh",
                "refresh_token": "1//refresh-abc",
                "token_uri": server.token_uri,
            }
        )
    )
    before = len(server.token_requests)
    with open_adapter(server, calendar_id, path) as cal:
        first = cal.sync(None, WINDOW)
        server.revoke_tokens()
        assert cal.sync(first.state, WINDOW).changes == []  # 401 → refresh → retried
    grants = server.token_requests[before:]
    assert [g["grant_type"] for g in grants] == ["refresh_token", "refresh_token"]
    assert grants[0]["refresh_token"] == "1//refresh-abc"


def test_a_refused_refresh_token_is_auth_failed(
    server: GoogleCalendarServer, calendar_id: str, tmp_path: Path
) -> None:
    path = tmp_path / "user.json"
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "client-1.apps.example",
                "client_secret": "shh",
                "refresh_token": "1//revoked",
                "token_uri": server.token_uri,
            }
        )
    )
    with open_adapter(server, calendar_id, path) as cal, pytest.raises(AuthFailed):
        cal.sync(None, WINDOW)


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"type": "external_account"}), json.dumps({"type": "service_account"})],
)
def test_unusable_credentials_file_is_bad_configuration(
    server: GoogleCalendarServer, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "creds.json"
    path.write_text(content)
    with pytest.raises(BadConfiguration):
        open_adapter(server, "x@empresa.example", path)
    with pytest.raises(BadConfiguration):
        open_adapter(server, "x@empresa.example", tmp_path / "absent.json")


def test_not_found_for_update_of_missing_session(adapter: GoogleCalendar) -> None:
    with pytest.raises(NotFound):
        adapter.put_session(session(), etag='"123"')
