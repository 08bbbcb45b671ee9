"""Free slots as an iCalendar feed clients can subscribe to.

``GET /feeds/free.ics`` serves the first (default) session type, ``GET /feeds/{type}.ics``
any configured type; an unknown type is a 404. The slots are exactly the API's
(:meth:`Service.slots` from today to the booking horizon, at most :data:`MAX_DAYS` days),
one ``VEVENT`` per free start, in UTC.

Only busy/free ever leaves: a slot says "free for this type at this time" and nothing
else, whatever blocked the time around it (no titles, descriptions, attendees, not even
how many technicians are free). Events are ``TRANSP:TRANSPARENT`` so a subscribed feed
never makes the client's own calendar look busy.

Calendar apps poll feeds, so each answer is cacheable and revalidated cheaply:

* The body depends only on what a subscriber sees (the slots, names, links) and on when
  that content was first served here: that instant is each event's DTSTAMP and the
  ``Last-Modified``, so the same content gives the same bytes on every poll, and the
  strong ``ETag`` (a hash of both) changes exactly when the bytes do. After a restart the
  first answer is new (a new ``Last-Modified``): one full download, never a stale 304.
* ``Cache-Control: max-age`` is the refresh interval the feed itself advertises
  (``REFRESH-INTERVAL``, ``X-PUBLISHED-TTL``): one figure for both.
* ``If-None-Match`` (weak comparison), else ``If-Modified-Since``, gets a bodiless 304
  while still valid (RFC 9110 §13.2.2).
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlencode, urlsplit

from icalendar import Calendar, Event, vDuration

from daemon.availability import iso
from daemon.i18n import gettext, language_of
from daemon.service import Service
from daemon.web.http import HTTPError, Request, Response, Router
from rules.slots import Slot

MAX_DAYS = 60  # a feed is polled for weeks; a longer list costs every poll for no use
REFRESH = timedelta(minutes=15)  # what clients are asked to poll at (RFC 7986) and may cache
CONTENT_TYPE = "text/calendar; charset=utf-8"


class Feeds:
    """The ``/feeds/*.ics`` routes; every answer comes from :meth:`Service.slots`."""

    def __init__(self, service: Service) -> None:
        self.service = service
        # Per feed (type, language): the latest content's digest and when it was first
        # served. Kept in memory: a restart only costs each subscriber one full download.
        self._since: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._lock = threading.Lock()

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
        content = self._digest(type_name, language, slots)
        since = self._modified(type_name, language, content, now)
        validator = f"{content}@{int(since.timestamp())}"
        etag = '"' + hashlib.sha256(validator.encode()).hexdigest()[:32] + '"'
        headers = [
            ("ETag", etag),
            ("Last-Modified", format_datetime(since, usegmt=True)),
            ("Cache-Control", f"public, max-age={int(REFRESH.total_seconds())}"),
        ]
        if _not_modified(request, etag, since):
            return Response(304, b"", headers)
        body = self.render(type_name, slots, since, language)
        return Response(200, body, [("Content-Type", CONTENT_TYPE), *headers])

    def _digest(self, type_name: str, language: str, slots: list[Slot]) -> str:
        """A hash of everything the body shows but its DTSTAMP."""
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
        return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()

    def _modified(self, type_name: str, language: str, content: str, now: datetime) -> datetime:
        """When this feed first showed ``content`` (whole seconds, as HTTP dates are)."""
        key = (type_name, language)
        with self._lock:
            seen = self._since.get(key)
            if seen is None or seen[0] != content:
                seen = (content, now.astimezone(UTC).replace(microsecond=0))
                self._since[key] = seen
            return seen[1]

    def render(self, type_name: str, slots: list[Slot], stamp: datetime, language: str) -> bytes:
        """The VCALENDAR for ``slots`` (RFC 5545, with RFC 7986's name and refresh hints);
        ``stamp`` is every event's DTSTAMP, the time this content was first published."""
        config = self.service.config
        policy = self.service.policy
        _ = gettext(language)
        label = policy.session_types[type_name].label
        public_url = config.server.public_url
        host = urlsplit(public_url).hostname or "expediente"
        book_url = f"{public_url}/book/{type_name}"
        calendar = Calendar()
        calendar.add("prodid", "-//expediente//free slots//EN")
        calendar.add("version", "2.0")
        calendar.add("calscale", "GREGORIAN")
        calendar.add("method", "PUBLISH")
        name = _("{desk} — free times ({label})").format(desk=config.desk.name, label=label)
        calendar.add("name", name)
        calendar.add("x-wr-calname", name)
        calendar.add(
            "x-wr-caldesc",
            _("Times free to book: {label}. To book, open: {url}").format(
                label=label, url=book_url
            ),
        )
        calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", vDuration(REFRESH))  # the older spelling, same meaning
        stamp = stamp.astimezone(UTC)
        for slot in slots:
            start = slot.start.astimezone(UTC)
            link = f"{book_url}?{urlencode({'start': iso(slot.start, policy)})}"
            event = Event()
            event.add("uid", f"free-{type_name}-{start:%Y%m%dT%H%M%SZ}@{host}")
            event.add("dtstamp", stamp)
            event.add("dtstart", start)
            event.add("dtend", slot.end.astimezone(UTC))
            event.add("summary", _("Free — {label}").format(label=label))
            event.add("description", _("Book this time: {url}").format(url=link))
            event.add("url", link)
            event.add("transp", "TRANSPARENT")
            event.add("class", "PUBLIC")
            calendar.add_component(event)
        return bytes(calendar.to_ical())


def _not_modified(request: Request, etag: str, since: datetime) -> bool:
    """Whether the client's copy is still current: ``If-None-Match`` decides when sent,
    else ``If-Modified-Since`` (an unreadable date is ignored, as RFC 9110 asks)."""
    match = request.header("If-None-Match")
    if match is not None:
        return _matches(match, etag)
    modified_since = request.header("If-Modified-Since")
    if not modified_since:
        return False
    try:
        when = parsedate_to_datetime(modified_since)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:  # "-0000" and obsolete forms: HTTP dates are in GMT
        when = when.replace(tzinfo=UTC)
    return since <= when


def _matches(header: str | None, etag: str) -> bool:
    """``If-None-Match`` by weak comparison (RFC 9110 §13.1.2), ``*`` included."""
    if not header:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False
