"""Free slots as an iCalendar feed clients can subscribe to.

``GET /feeds/free.ics`` serves the first (default) session type, ``GET /feeds/{type}.ics``
any configured type; an unknown type is a 404. The slots are exactly the API's
(:meth:`Service.slots` from today to the booking horizon, at most :data:`MAX_DAYS` days),
one ``VEVENT`` per free start, in UTC.

Only busy/free ever leaves: a slot says "free for this type at this time" and nothing
else, whatever blocked the time around it (no titles, descriptions, attendees, not even
how many technicians are free). Events are ``TRANSP:TRANSPARENT`` so a subscribed feed
never makes the client's own calendar look busy.

Calendar apps poll feeds, so each answer carries an ``ETag`` computed from the slots (not
from the generation time) and a short ``Cache-Control``; an ``If-None-Match`` that still
matches gets a bodiless 304.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode, urlsplit

from icalendar import Calendar, Event, vDuration

from daemon.availability import iso
from daemon.service import Service
from daemon.web.http import HTTPError, Request, Response, Router
from rules.messages import language_of
from rules.slots import Slot

MAX_DAYS = 60  # a feed is polled for weeks; a longer list costs every poll for no use
CACHE_SECONDS = 300
REFRESH = timedelta(minutes=15)  # what clients are asked to poll at (RFC 7986)
CONTENT_TYPE = "text/calendar; charset=utf-8"

_TEXTS = {
    "pt-BR": {
        "summary": "Livre — {label}",
        "name": "{desk} — horários livres ({label})",
        "description": "Horários livres para agendar: {label}. Para marcar, abra: {url}",
        "book": "Agendar este horário: {url}",
    },
    "en": {
        "summary": "Free — {label}",
        "name": "{desk} — free times ({label})",
        "description": "Times free to book: {label}. To book, open: {url}",
        "book": "Book this time: {url}",
    },
}


class Feeds:
    """The ``/feeds/*.ics`` routes; every answer comes from :meth:`Service.slots`."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def routes(self, router: Router) -> None:
        # "free" first: it is also a valid type name pattern, and the feed of that name wins.
        router.add("GET", r"/feeds/free\.ics", self.free)
        router.add("GET", r"/feeds/{type}\.ics", self.by_type)

    def free(self, request: Request) -> Response:
        return self._feed(request, next(iter(self.service.policy.session_types)))

    def by_type(self, request: Request) -> Response:
        type_name = request.params["type"]
        if type_name not in self.service.policy.session_types:
            known = ", ".join(self.service.policy.session_types)
            raise HTTPError(404, "unknown_type", f"no session type {type_name!r} (known: {known})")
        return self._feed(request, type_name)

    def window(self, now: datetime) -> tuple[date, date]:
        """Desk-zone days the feed covers: today to the horizon, at most MAX_DAYS days."""
        policy = self.service.policy
        first = now.astimezone(policy.timezone).date()
        last = (now + policy.horizon).astimezone(policy.timezone).date()
        return first, min(last, first + timedelta(days=MAX_DAYS - 1))

    def _feed(self, request: Request, type_name: str) -> Response:
        now = self.service.clock.now()
        first, last = self.window(now)
        slots = self.service.slots(type_name, first, last)
        language = language_of(request.arg("lang") or self.service.config.desk.language)
        etag = self._etag(type_name, language, slots)
        headers = [("ETag", etag), ("Cache-Control", f"public, max-age={CACHE_SECONDS}")]
        if _matches(request.header("If-None-Match"), etag):
            return Response(304, b"", headers)
        body = self.render(type_name, slots, now, language)
        return Response(200, body, [("Content-Type", CONTENT_TYPE), *headers])

    def _etag(self, type_name: str, language: str, slots: list[Slot]) -> str:
        """Changes when what a subscriber would see changes; ``now`` is left out on purpose
        (DTSTAMP moves every request, the slots do not)."""
        config = self.service.config
        session_type = self.service.policy.session_types[type_name]
        content = [
            type_name,
            session_type.label,
            language,
            config.desk.name,
            config.server.public_url,
            [(int(s.start.timestamp()), int(s.end.timestamp())) for s in slots],
        ]
        digest = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()
        return f'"{digest[:32]}"'

    def render(self, type_name: str, slots: list[Slot], now: datetime, language: str) -> bytes:
        """The VCALENDAR for ``slots`` (RFC 5545, with RFC 7986's name and refresh hints)."""
        config = self.service.config
        policy = self.service.policy
        t = _TEXTS[language]
        label = policy.session_types[type_name].label
        public_url = config.server.public_url
        host = urlsplit(public_url).hostname or "expediente"
        book_url = f"{public_url}/book/{type_name}"
        calendar = Calendar()
        calendar.add("prodid", "-//expediente//free slots//EN")
        calendar.add("version", "2.0")
        calendar.add("calscale", "GREGORIAN")
        calendar.add("method", "PUBLISH")
        name = t["name"].format(desk=config.desk.name, label=label)
        calendar.add("name", name)
        calendar.add("x-wr-calname", name)
        calendar.add("x-wr-caldesc", t["description"].format(label=label, url=book_url))
        calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", vDuration(REFRESH))  # the older spelling, same meaning
        stamp = now.astimezone(UTC)
        for slot in slots:
            start = slot.start.astimezone(UTC)
            link = f"{book_url}?{urlencode({'start': iso(slot.start, policy)})}"
            event = Event()
            event.add("uid", f"free-{type_name}-{start:%Y%m%dT%H%M%SZ}@{host}")
            event.add("dtstamp", stamp)
            event.add("dtstart", start)
            event.add("dtend", slot.end.astimezone(UTC))
            event.add("summary", t["summary"].format(label=label))
            event.add("description", t["book"].format(url=link))
            event.add("url", link)
            event.add("transp", "TRANSPARENT")
            event.add("class", "PUBLIC")
            calendar.add_component(event)
        return bytes(calendar.to_ical())


def _matches(header: str | None, etag: str) -> bool:
    """``If-None-Match`` by weak comparison (RFC 9110 §13.1.2), ``*`` included."""
    if not header:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False
