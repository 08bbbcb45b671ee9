"""The free-slot feeds: the API's slots as iCalendar, busy/free only, cacheable."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
import vobject

from connectors.ical import describe_object, parse_calendar
from daemon.web.api import Api
from daemon.web.feeds import MAX_DAYS, Feeds
from daemon.web.http import App, Router
from rules.intervals import Interval
from tests import wsgi
from tests.daemon.desk import SAO_PAULO, Desk, make_desk, monday
from tests.factories import booking

MARKER = "zq-private-marker-7731"
PRIVATE_EVENT = f"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//private//EN
BEGIN:VEVENT
UID:private-{{tech}}@example.com
DTSTAMP:20261101T000000Z
DTSTART;TZID=America/Sao_Paulo:20261201T090000
DTEND;TZID=America/Sao_Paulo:20261201T100000
SUMMARY:{MARKER} consulta médica
DESCRIPTION:{MARKER} detalhes pessoais
LOCATION:{MARKER} clínica
ATTENDEE;CN={MARKER}:mailto:{MARKER}@example.com
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    desk = make_desk(tmp_path, monday(7))
    router = Router()
    Feeds(desk.service).routes(router)
    Api(desk.service, desk.signer).routes(router)
    desk.app = App(router)
    return desk


def call(
    desk: Desk, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    raw = b"" if body is None else json.dumps(body).encode()
    status, response_headers, content = wsgi.call(
        desk.app, wsgi.environ(method, path, raw, headers=headers)
    )
    return status, dict(response_headers), content


def add_private_events(desk: Desk) -> None:
    """Each technician's calendar holds a private appointment, read as the sync reads it."""
    window = Interval(monday(0), monday(0, weeks=6))
    for calendar in desk.config.calendars:
        cal, problems = parse_calendar(PRIVATE_EVENT.format(tech=calendar.technician))
        assert cal is not None and not problems
        change = describe_object(
            cal, window, SAO_PAULO, href=f"{calendar.technician}.ics", etag='"1"', calendar="t"
        )
        assert change.blocks, "the appointment blocks time"
        desk.store.apply_sync(calendar.id, [change], full=False, state=None, now=desk.clock.now())


def feed_slots(body: bytes) -> list[tuple[datetime, datetime]]:
    calendar = icalendar.Calendar.from_ical(body)
    return [(e.decoded("DTSTART"), e.decoded("DTEND")) for e in calendar.walk("VEVENT")]


def api_slots(desk: Desk, first: str, last: str, type_name: str) -> list[tuple[datetime, datetime]]:
    status, _, body = call(desk, "GET", f"/api/v1/slots?from={first}&to={last}&type={type_name}")
    assert status == 200
    return [
        (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]))
        for s in json.loads(body)["slots"]
    ]


def test_feed_is_the_api_slots_and_leaks_nothing_private(desk: Desk) -> None:
    add_private_events(desk)
    status, headers, body = call(desk, "GET", "/feeds/free.ics")
    assert status == 200
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert MARKER.encode() not in body
    for private in (b"consulta", b"Ana Souza", b"Bruno", b"example.com"):
        assert private not in body

    slots = feed_slots(body)
    assert slots == api_slots(desk, "2026-11-30", "2026-12-30", "standard")
    assert len(slots) > 100

    busy = Interval(monday(9) + timedelta(days=1), monday(10) + timedelta(days=1))
    assert not [s for s in slots if s[0] < busy.end and busy.start < s[1]]
    free_before = monday(8, 30) + timedelta(days=1)
    assert (free_before, free_before + timedelta(minutes=30)) in slots, "the rest is free"


def test_events_are_transparent_free_time_with_stable_uids(desk: Desk) -> None:
    _, _, body = call(desk, "GET", "/feeds/free.ics")
    calendar = icalendar.Calendar.from_ical(body)
    assert calendar["METHOD"] == "PUBLISH"
    assert calendar["X-WR-CALNAME"] == "Suporte Técnico — horários livres (Atendimento remoto)"
    assert calendar["REFRESH-INTERVAL"].params["VALUE"] == "DURATION"
    events = calendar.walk("VEVENT")
    assert {str(e["TRANSP"]) for e in events} == {"TRANSPARENT"}
    assert {str(e["SUMMARY"]) for e in events} == {"Livre — Atendimento remoto"}
    assert all(e.decoded("DTSTAMP") == monday(7) for e in events)
    assert all(e.decoded("DTSTART").utcoffset() == timedelta(0) for e in events)
    uids = [str(e["UID"]) for e in events]
    assert len(set(uids)) == len(uids)
    assert uids[0] == "free-standard-20261130T103000Z@127.0.0.1"
    assert str(events[0]["URL"]).startswith("http://127.0.0.1:8080/book/standard?start=")

    desk.clock.advance(timedelta(minutes=1))
    _, _, later = call(desk, "GET", "/feeds/free.ics")
    assert [str(e["UID"]) for e in icalendar.Calendar.from_ical(later).walk("VEVENT")] == uids


def test_a_second_parser_reads_the_same_feed(desk: Desk) -> None:
    add_private_events(desk)
    _, _, body = call(desk, "GET", "/feeds/free.ics")
    calendar = vobject.readOne(body.decode("utf-8"))
    events = calendar.vevent_list
    read = [(e.dtstart.value, e.dtend.value) for e in events]
    assert read == feed_slots(body)
    assert {e.transp.value for e in events} == {"TRANSPARENT"}
    assert {e.summary.value for e in events} == {"Livre — Atendimento remoto"}
    assert all(e.dtstart.value.utcoffset() == timedelta(0) for e in events)


def test_each_type_has_its_feed_and_an_unknown_one_is_404(desk: Desk) -> None:
    status, _, body = call(desk, "GET", "/feeds/extended.ics")
    assert status == 200
    slots = feed_slots(body)
    assert slots == api_slots(desk, "2026-11-30", "2026-12-30", "extended")
    assert all(end - start == timedelta(hours=2) for start, end in slots)
    assert slots[0][0] >= monday(7) + timedelta(hours=24), "the type's notice applies"
    assert b"Livre \xe2\x80\x94 Atendimento longo" in body

    status, _, body = call(desk, "GET", "/feeds/nonexistent.ics")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "unknown_type"
    assert call(desk, "GET", "/feeds/standard.ics")[2] == call(desk, "GET", "/feeds/free.ics")[2]


def test_english_on_request(desk: Desk) -> None:
    _, _, body = call(desk, "GET", "/feeds/free.ics?lang=en")
    assert {str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(body).walk("VEVENT")} == {
        "Free — Atendimento remoto"
    }


def test_etag_caching_and_304(desk: Desk) -> None:
    status, headers, body = call(desk, "GET", "/feeds/free.ics")
    etag = headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert headers["Last-Modified"] == "Mon, 30 Nov 2026 10:00:00 GMT"  # 07:00 in São Paulo

    status, headers, empty = call(desk, "GET", "/feeds/free.ics", {"If-None-Match": etag})
    assert (status, empty, headers["ETag"]) == (304, b"", etag)
    assert call(desk, "GET", "/feeds/free.ics", {"If-None-Match": f'"x", W/{etag}'})[0] == 304
    assert call(desk, "GET", "/feeds/free.ics", {"If-None-Match": '"stale"'})[0] == 200

    # Later, with the same slots: the very same bytes (DTSTAMP is not the request time), so
    # the strong ETag may stay; and the content is not modified since it was first served.
    desk.clock.advance(timedelta(minutes=1))
    status, headers, again = call(desk, "GET", "/feeds/free.ics")
    assert (again, headers["ETag"]) == (body, etag)
    assert headers["Last-Modified"] == "Mon, 30 Nov 2026 10:00:00 GMT"
    for since, expected in (
        ("Mon, 30 Nov 2026 10:00:00 GMT", 304),
        ("Mon, 30 Nov 2026 10:05:00 GMT", 304),
        ("Mon, 30 Nov 2026 09:59:59 GMT", 200),
        ("not a date", 200),
    ):
        assert call(desk, "GET", "/feeds/free.ics", {"If-Modified-Since": since})[0] == expected
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    both = {"If-None-Match": '"stale"', "If-Modified-Since": "Mon, 30 Nov 2026 10:05:00 GMT"}
    assert call(desk, "GET", "/feeds/free.ics", both)[0] == 200

    sample = booking((monday(9) + timedelta(days=1)).isoformat())
    call(desk, "POST", "/api/v1/bookings", body=sample)
    call(desk, "POST", "/api/v1/bookings", body=sample | {"email": "joao@example.com"})
    status, headers, body = call(desk, "GET", "/feeds/free.ics", {"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag
    assert headers["Last-Modified"] == "Mon, 30 Nov 2026 10:01:00 GMT"
    assert (monday(9) + timedelta(days=1), monday(9, 30) + timedelta(days=1)) not in feed_slots(
        body
    )
    stamps = {e.decoded("DTSTAMP") for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}
    assert stamps == {monday(7, 1)}, "each event is stamped when this content appeared"
    modified = {"If-Modified-Since": "Mon, 30 Nov 2026 10:00:30 GMT"}
    assert call(desk, "GET", "/feeds/free.ics", modified)[0] == 200


def test_cache_lifetime_is_the_refresh_interval_the_feed_advertises(desk: Desk) -> None:
    _, headers, body = call(desk, "GET", "/feeds/free.ics")
    calendar = icalendar.Calendar.from_ical(body)
    refresh = calendar.decoded("REFRESH-INTERVAL")
    assert refresh == timedelta(minutes=15)
    assert str(calendar["X-PUBLISHED-TTL"]) == "PT15M", "the older spelling says the same"
    assert headers["Cache-Control"] == f"public, max-age={int(refresh.total_seconds())}"
    _, headers, _ = call(desk, "GET", "/feeds/free.ics", {"If-None-Match": headers["ETag"]})
    assert headers["Cache-Control"] == f"public, max-age={int(refresh.total_seconds())}"


def test_head_answers_headers_only(desk: Desk) -> None:
    status, headers, body = call(desk, "HEAD", "/feeds/free.ics")
    assert (status, body) == (200, b"")
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert int(headers["Content-Length"]) > 0


def test_a_long_horizon_is_capped(desk: Desk) -> None:
    config = desk.service.config
    policy = dataclasses.replace(config.policy, horizon=timedelta(days=365))
    desk.service.config = dataclasses.replace(config, policy=policy)
    feeds = Feeds(desk.service)
    first, last = feeds.window(desk.clock.now())
    assert (last - first).days + 1 == MAX_DAYS
    _, _, body = call(desk, "GET", "/feeds/free.ics")
    assert max(start for start, _ in feed_slots(body)).date() <= last
