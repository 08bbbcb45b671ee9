"""The Google Calendar adapter: one calendar id, through ``google-api-python-client`` (v3).

Reading (:meth:`GoogleCalendar.sync`) lists *master* events (``singleEvents=False``,
``showDeleted=True``) and pages through ``nextPageToken``; the last page's
``nextSyncToken`` is the sync state, so an idle sync is one request. Recurring events are
expanded here, with :mod:`connectors.ical`, over the asked window. The choice is forced:
an incremental listing (``syncToken``) cannot carry ``timeMin``/``timeMax``, and with
``singleEvents=True`` Google would expand every endless rule far past any window, send
each instance as its own object, and resend all of them whenever the master changes.
Google stores an exception (a moved, declined or deleted instance) as an event of its own
with ``recurringEventId``/``originalStartTime``; the adapter folds exceptions into their
master, so one object (``href`` = the master's id) is one series, as in CalDAV. When an
incremental listing touches a series, the whole series is fetched again (one
``events.list`` by ``iCalUID``) so its blocks are recomputed from all of its parts. A
``410 Gone`` (sync token expired) makes a full resync, reported with ``full=True``.

What blocks time: every event except ``transparency: transparent``, ``status:
cancelled`` (deleted), events the calendar's owner declined (their attendee entry with
``self: true`` says ``responseStatus: declined``) and working-location events. All-day
events (``start.date``) block whole days in the desk's zone.

Bad data from the server is read conservatively and reported as a
:class:`~connectors.base.Problem` naming the calendar, the event's UID and its Google id;
the sync goes on:

* no end, an unreadable end, or an end before the start: the event blocks one hour from
  its start (a day, for an all-day event);
* an unknown ``timeZone``: the time is read with the UTC offset written in the
  ``dateTime`` (exact for a single event; a recurring one repeats at that offset);
* an unreadable start, or a recurrence line that cannot be read: the event (or that line)
  is skipped and reported as an error, so the caller keeps the object's previous blocks;
* endless or absurd rules (``FREQ=MINUTELY``) cost only what the window holds, as for
  CalDAV;
* huge free text (a 2 MB description) is never parsed — only times are read — and is
  reported as a warning.

Writing: a session event lives at a client-chosen event id derived from its UID
(:func:`event_id`), with the UID and state in ``extendedProperties.private``. A create is an
``events.insert`` with that id; a ``409`` (our own earlier insert whose answer was lost, or
a deleted event with the id) is read and patched into shape, never duplicated. Updates
and deletes carry ``If-Match: <etag>``; a ``412`` is a :class:`Conflict` unless the event
already holds exactly what we meant to write (the retry of a write that landed). No
attendee is written: Google would copy the event, check-in link included, into the
client's own Google calendar and mail them; the client gets the daemon's own e-mail.

Every request is retried on 429, 5xx and connection errors with jittered backoff
(:mod:`connectors.retry`), honouring ``Retry-After``; writes are safe to repeat because the
id and ``If-Match`` make a repeated write answer 409/412, handled as above.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, NoReturn
from zoneinfo import ZoneInfo

import google.auth.exceptions
import google.oauth2.credentials
import httplib2
from google.oauth2 import service_account
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from icalendar import Calendar as ICalendar
from icalendar import Event as IEvent
from icalendar import vRecur, vText

from connectors.base import (
    AuthFailed,
    BadConfiguration,
    Conflict,
    NotFound,
    ObjectChange,
    Problem,
    SessionEvent,
    SyncResult,
    Unavailable,
    brief,
    dump_state,
    load_state,
    resume_state,
    sync_problems,
)
from connectors.ical import DEFAULT_MARKERS, STATE_PROPERTY, BusyResult, describe_ics
from connectors.retry import RetryPolicy, http_date, retry_after_seconds
from rules.intervals import Interval, require_aware

__all__ = ["DEFAULT_SCOPES", "GoogleCalendar", "event_id"]

log = logging.getLogger(__name__)

DEFAULT_SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.freebusy",
)
DEFAULT_TIMEOUT = 30.0
DEFAULT_EXPAND_MARGIN = timedelta(days=7)
DEFAULT_PAGE_SIZE = 250
MAX_PAGE_SIZE = 2500  # events.list maxResults ceiling
FREEBUSY_MAX_CALENDARS = 50  # freeBusy calendarExpansionMax ceiling
# Google refuses long freeBusy ranges ("The requested time range is too long", seen past
# ~90 days); 60 leaves room for DST and rounding.
FREEBUSY_MAX_SPAN = timedelta(days=60)
# Free text this long is no calendar entry a person typed; it is ignored, and said so.
LARGE_TEXT = 100_000
MAX_REMINDER_MINUTES = 40320  # four weeks: Google's ceiling for a reminder override

UID_KEY = "expedienteUid"
STATE_KEY = "expedienteState"
# Google event colours closest to the CalDAV writer's COLOR per state.
STATE_COLORS: Mapping[str, str] = {
    "booked": "9",
    "in_progress": "10",
    "completed": "8",
    "rescheduled": "6",
    "cancelled": "11",
}

_STATE_VERSION = 1
_Note = tuple[Literal["warning", "error"], str]  # a doubt met while reading one series
_BASE32HEX = re.compile(r"[0-9a-v]{5,1024}")
_RECURRENCE_LINE = re.compile(r"(RRULE|EXRULE|RDATE|EXDATE)([;:])(.*)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FREE_EVENT_TYPES = frozenset({"workingLocation"})
_RATE_LIMIT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)


def event_id(uid: str) -> str:
    """The Google event id a session with ``uid`` is stored under (stable, valid).

    Google wants 5–1024 characters of base32hex (``0-9a-v``); the UID's UTF-8 bytes in
    base32hex, lowercase and unpadded, are that for any UID of 3 to 640 bytes. Other UIDs
    are hashed (SHA-256, 52 characters); the UID itself is kept in the event's private
    properties and checked on every read, so a collision could never be taken for ours.
    """
    raw = uid.encode()
    if 3 <= len(raw) <= 640:
        return base64.b32hexencode(raw).decode().rstrip("=").lower()
    return base64.b32hexencode(hashlib.sha256(raw).digest()).decode().rstrip("=").lower()


@dataclass(frozen=True)
class _State:
    """The sync token and the range blocks were expanded over (the opaque state string)."""

    token: str
    window: Interval

    def encode(self) -> str:
        return dump_state(_STATE_VERSION, self.window, token=self.token)

    @classmethod
    def decode(cls, text: str) -> _State:
        """Raises ValueError (or KeyError/TypeError) when ``text`` is not a state of ours."""
        data, window = load_state(text, _STATE_VERSION)
        token = data["token"]
        if not isinstance(token, str) or not token:
            raise ValueError("sync state without a token")
        return cls(token, window)


class _TokenGone(Exception):
    """Google no longer accepts the sync token (410): a full sync is required."""


class _CountingHttp(httplib2.Http):  # type: ignore[misc]
    """httplib2 that counts requests, token refreshes included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = 0

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.sent += 1
        return super().request(*args, **kwargs)


class GoogleCalendar:
    """A :class:`~connectors.base.SessionCalendar` for one Google calendar.

    ``credentials_file`` is a service-account key (``subject`` then names the user to act
    as, through domain-wide delegation) or an OAuth ``authorized_user`` file with a refresh
    token; the token URI written in the file is the one used. ``api_endpoint`` replaces
    ``https://www.googleapis.com/calendar/v3/`` (a proxy, or a local test server).
    ``timeout`` bounds each request in seconds. ``page_size`` is ``maxResults`` per listing
    page; ``expand_margin`` as for the CalDAV adapter. Raises :class:`BadConfiguration`
    when the credentials file cannot be used.
    """

    def __init__(
        self,
        calendar_id: str,
        *,
        credentials_file: str | Path,
        desk_tz: ZoneInfo,
        subject: str | None = None,
        api_endpoint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        page_size: int = DEFAULT_PAGE_SIZE,
        expand_margin: timedelta = DEFAULT_EXPAND_MARGIN,
    ) -> None:
        if not calendar_id:
            raise BadConfiguration("a Google calendar needs a calendar_id")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.calendar_id = calendar_id
        self.desk_tz = desk_tz
        self.retry_policy = retry_policy or RetryPolicy()
        self.page_size = page_size
        self.expand_margin = expand_margin
        credentials = _load_credentials(Path(credentials_file), subject, scopes, self.name)
        self._http = _CountingHttp(timeout=timeout)
        self._authed = AuthorizedHttp(credentials, http=self._http)
        options = {"api_endpoint": api_endpoint} if api_endpoint else None
        self._service = build(
            "calendar",
            "v3",
            http=self._authed,
            static_discovery=True,
            cache_discovery=False,
            client_options=options,
        )
        self._events = self._service.events()

    # ------------------------------------------------------------------ basics

    @property
    def name(self) -> str:
        """``google:`` and the calendar id (no credentials)."""
        return f"google:{self.calendar_id}"

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, token requests included."""
        return int(self._http.sent)

    def close(self) -> None:
        self._authed.close()

    def __enter__(self) -> GoogleCalendar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def _call(
        self,
        make: Callable[[], Any],
        doing: str,
        *,
        expect: Iterable[int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Run one API request with retries: ``(200, body)``, or ``(status, None)`` for a
        status listed in ``expect``; any other failure raises its ConnectorError."""
        expected = frozenset(expect)

        def once() -> tuple[int, Any]:
            request = make()
            if headers:
                request.headers.update(headers)
            try:
                return 200, request.execute(num_retries=0)
            except HttpError as exc:
                status = int(exc.resp.status)
                if status in expected:
                    return status, None
                self._fail_status(exc, doing)
            except google.auth.exceptions.RefreshError as exc:
                if exc.retryable:
                    raise Unavailable(
                        f"{doing}: token refresh failed: {brief(exc)}", calendar=self.name
                    ) from exc
                raise AuthFailed(
                    f"{doing}: the token endpoint refused the credentials: {brief(exc)}",
                    calendar=self.name,
                ) from exc
            except (
                google.auth.exceptions.TransportError,
                httplib2.HttpLib2Error,
                http.client.HTTPException,
                OSError,
            ) as exc:
                raise Unavailable(f"{doing}: {brief(exc)}", calendar=self.name) from exc

        return self.retry_policy.run(once)

    def _fail_status(self, exc: HttpError, doing: str) -> NoReturn:
        status = int(exc.resp.status)
        reason, message = _error_detail(exc.content)
        text = f"{doing}: HTTP {status}" + (f" ({message})" if message else "")
        retry_after = retry_after_seconds(
            exc.resp.get("retry-after"), http_date(exc.resp.get("date"))
        )
        if status == 429 or status >= 500 or status in (408, 425):
            raise Unavailable(text, calendar=self.name, retry_after=retry_after)
        if status == 403 and reason in _RATE_LIMIT_REASONS:
            raise Unavailable(text, calendar=self.name, retry_after=retry_after)
        if status == 401:
            raise AuthFailed(f"{text}: the server refused the credentials", calendar=self.name)
        if status == 403:
            raise AuthFailed(f"{text}: permission denied", calendar=self.name)
        if status == 404:
            raise BadConfiguration(f"{text}: the calendar does not exist", calendar=self.name)
        raise BadConfiguration(f"{text}: unexpected answer", calendar=self.name)

    # ------------------------------------------------------------------ sync

    def sync(self, state: str | None, window: Interval) -> SyncResult:
        """Changes since ``state`` with busy blocks over ``window`` (see the module docs).

        ``SyncResult.problems`` holds every problem met, those of the objects included.
        Raises :class:`Unavailable`, :class:`AuthFailed` or :class:`BadConfiguration`; a
        failed request never reads as an empty calendar.
        """
        before = self.requests
        problems: list[Problem] = []
        saved = resume_state(state, window, _State.decode, calendar=self.name, problems=problems)
        incremental: tuple[list[ObjectChange], str] | None = None
        if saved is not None:
            try:
                items, token = self._list(saved.token)
                incremental = self._incremental(items, saved.window), token
            except _TokenGone:
                problems.append(
                    Problem(self.name, None, "Google expired the sync token; full resync")
                )
        if saved is not None and incremental is not None:
            (changes, token), expand, full = incremental, saved.window, False
        else:
            expand = Interval(window.start, window.end + self.expand_margin)
            try:
                items, token = self._list(None)
            except _TokenGone as exc:
                raise Unavailable("a full listing answered 410", calendar=self.name) from exc
            changes, full = self._full(items, expand), True
        return SyncResult(
            changes=changes,
            state=_State(token, expand).encode(),
            full=full,
            problems=sync_problems(changes, problems, log),
            requests=self.requests - before,
        )

    def _list(self, token: str | None) -> tuple[list[dict[str, Any]], str]:
        """Every page of the calendar's listing: (items, nextSyncToken); _TokenGone on 410."""
        params: dict[str, Any] = {} if token is None else {"syncToken": token}
        items, last = self._pages(params)
        new_token = last.get("nextSyncToken")
        if not isinstance(new_token, str) or not new_token:
            # Without a token the next sync could not be incremental, nor safely full.
            raise Unavailable("events.list ended without nextSyncToken", calendar=self.name)
        return items, new_token

    def _pages(self, query: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every page of ``events.list`` with ``query``: (items, the last page's body)."""
        items: list[dict[str, Any]] = []
        page: str | None = None
        while True:
            params: dict[str, Any] = {
                "calendarId": self.calendar_id,
                "showDeleted": True,
                "singleEvents": False,
                "maxResults": self.page_size,
                **query,
            }
            if page is not None:
                params["pageToken"] = page
            status, body = self._call(
                partial(self._events.list, **params), "events.list", expect=(410,)
            )
            if status == 410:
                raise _TokenGone()
            if not isinstance(body, dict):
                raise Unavailable("events.list: unreadable answer", calendar=self.name)
            for item in body.get("items") or ():
                if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
                    items.append(item)
            next_page = body.get("nextPageToken")
            if not isinstance(next_page, str) or not next_page:
                return items, body
            page = next_page

    def _full(self, items: list[dict[str, Any]], expand: Interval) -> list[ObjectChange]:
        series = _group(items)
        changes: list[ObjectChange] = []
        for master_id, (master, exceptions) in series.items():
            if master is not None and master.get("status") == "cancelled":
                continue  # deleted: a full listing lists only what exists
            if master is None and all(e.get("status") == "cancelled" for e in exceptions):
                continue
            changes.append(self._describe(master_id, master, exceptions, expand))
        return changes

    def _incremental(self, items: list[dict[str, Any]], expand: Interval) -> list[ObjectChange]:
        changes: list[ObjectChange] = []
        for master_id, (master, exceptions) in _group(items).items():
            if master is not None and master.get("status") == "cancelled":
                changes.append(ObjectChange(href=master_id, uid=None, etag=None, deleted=True))
                continue
            if exceptions or (master is not None and master.get("recurrence")):
                # Part of a series changed: read the whole series again.
                ical_uid = next(
                    (e.get("iCalUID") for e in [master, *exceptions] if e and e.get("iCalUID")),
                    None,
                )
                master, exceptions = self._series(master_id, master, ical_uid)
                if master is not None and master.get("status") == "cancelled":
                    changes.append(ObjectChange(href=master_id, uid=None, etag=None, deleted=True))
                    continue
                if master is None and not exceptions:
                    changes.append(ObjectChange(href=master_id, uid=None, etag=None, deleted=True))
                    continue
            changes.append(self._describe(master_id, master, exceptions, expand))
        return changes

    def _series(
        self, master_id: str, master: dict[str, Any] | None, ical_uid: Any
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The master and every exception of one series, as Google has them now."""
        if isinstance(ical_uid, str) and ical_uid:
            items, _ = self._pages({"iCalUID": ical_uid})
            found = _group(items).get(master_id)
            if found is not None:
                return found
            return None, []
        fetched = self._get_event(master_id)
        return fetched if fetched is not None else master, []

    def _describe(
        self,
        href: str,
        master: dict[str, Any] | None,
        exceptions: list[dict[str, Any]],
        expand: Interval,
    ) -> ObjectChange:
        """One series (or single event) as an ObjectChange with its busy blocks."""
        head = master if master is not None else exceptions[0]
        uid = _uid_of(head) or href
        notes: list[_Note] = []
        text = _series_ical(master, exceptions, self.desk_tz, uid, notes)
        change = describe_ics(
            text, expand, self.desk_tz, href=href, etag=_str(head.get("etag")), calendar=self.name
        )
        problems = [
            Problem(self.name, uid, f"{message} (event {href})", severity)
            for severity, message in notes
        ]
        problems += [
            Problem(p.calendar, p.uid or uid, f"{p.message} (event {href})", p.severity)
            for p in change.problems
        ]
        private = _private(head) if master is not None else {}
        cancelled = change.cancelled or private.get(STATE_KEY) == "cancelled"
        return replace(change, uid=uid, cancelled=cancelled, problems=tuple(problems))

    # ------------------------------------------------------------------ free/busy

    def free_busy(self, calendar_ids: Sequence[str], window: Interval) -> dict[str, BusyResult]:
        """Busy time of each calendar over ``window`` from ``freeBusy.query``.

        Calendars go 50 to a query and the window in spans Google accepts. A calendar
        Google reports an error for (not found, no access) counts as busy for the whole
        span asked, with an error Problem: unknown time is never offered as free. Raises
        like :meth:`sync` when a query fails.
        """
        ids = list(dict.fromkeys(calendar_ids))
        results: dict[str, BusyResult] = {i: BusyResult([], [], {}) for i in ids}
        for begin in range(0, len(ids), FREEBUSY_MAX_CALENDARS):
            batch = ids[begin : begin + FREEBUSY_MAX_CALENDARS]
            for span in _spans(window, FREEBUSY_MAX_SPAN):
                answer = self._free_busy_query(batch, span)
                for cal_id in batch:
                    self._add_free_busy(results[cal_id], cal_id, answer.get(cal_id), span)
        for result in results.values():
            result.intervals.sort()
            result.by_uid[""] = list(result.intervals)
        return results

    def _free_busy_query(self, batch: list[str], span: Interval) -> dict[str, Any]:
        body = {
            "timeMin": _rfc3339(span.start),
            "timeMax": _rfc3339(span.end),
            "timeZone": "UTC",
            "items": [{"id": i} for i in batch],
        }
        _, answer = self._call(lambda: self._service.freebusy().query(body=body), "freeBusy.query")
        calendars = answer.get("calendars") if isinstance(answer, dict) else None
        if not isinstance(calendars, dict):
            raise Unavailable("freeBusy.query: answer without calendars", calendar=self.name)
        return calendars

    def _add_free_busy(self, result: BusyResult, cal_id: str, entry: Any, span: Interval) -> None:
        errors = entry.get("errors") if isinstance(entry, dict) else ["missing from the answer"]
        if errors:
            reasons = ", ".join(
                str(e.get("reason", e)) if isinstance(e, dict) else str(e) for e in errors
            )
            result.problems.append(
                Problem(cal_id, None, f"free/busy unavailable ({reasons}); counted busy", "error")
            )
            result.intervals.append(
                Interval(span.start.astimezone(self.desk_tz), span.end.astimezone(self.desk_tz))
            )
            return
        for busy in entry.get("busy") or ():
            try:
                start = _parse_instant(busy["start"]).astimezone(self.desk_tz)
                end = _parse_instant(busy["end"]).astimezone(self.desk_tz)
            except (KeyError, TypeError, ValueError):
                result.problems.append(
                    Problem(cal_id, None, "unreadable busy period; span counted busy", "error")
                )
                start = span.start.astimezone(self.desk_tz)
                end = span.end.astimezone(self.desk_tz)
            if end > start:
                result.intervals.append(Interval(start, end))

    # ------------------------------------------------------------------ sessions

    def get_session(self, uid: str) -> tuple[ObjectChange, str] | None:
        """The session event stored for ``uid`` and its ETag, or None when absent.

        ``blocks`` cover the event's own days (a year from its start), which is all a
        session event ever spans.
        """
        found = self._get_event(event_id(uid))
        if found is None or found.get("status") == "cancelled" or not self._is_ours(found, uid):
            return None
        return self._describe_session(found), str(found.get("etag", ""))

    def session_href(self, uid: str) -> str:
        """The session's event id (:func:`event_id`): a listing names objects by it."""
        return event_id(uid)

    def put_session(self, event: SessionEvent, etag: str | None = None) -> str:
        """Create or update the session event; returns its new ETag.

        ``etag=None``: ``events.insert`` at the UID's id; a 409 (already there: a retried
        create, or a deleted event keeping the id) reads it and patches it into shape. With
        ``etag``: a patch with ``If-Match``; :class:`Conflict` when the event changed,
        :class:`NotFound` when it is gone. An event at the id that is not this session's
        is a Conflict.
        """
        body = self._session_body(event)
        eid = event_id(event.uid)
        if etag is None:
            status, created = self._call(
                lambda: self._events.insert(calendarId=self.calendar_id, body={"id": eid, **body}),
                "events.insert",
                expect=(409,),
            )
            if status == 200:
                return str(created["etag"])
            current = self._get_event(eid)
            if current is None:
                raise Unavailable(
                    f"events.insert said {eid} exists, events.get says it does not",
                    calendar=self.name,
                )
            if current.get("status") != "cancelled" and not self._is_ours(current, event.uid):
                raise Conflict(
                    f"event {eid} exists and is not session {event.uid}", calendar=self.name
                )
            if current.get("status") != "cancelled" and _same(current, body):
                return str(current["etag"])
            return self._patch(event.uid, eid, body, str(current["etag"]))
        return self._patch(event.uid, eid, body, etag)

    def delete_session(self, uid: str, etag: str | None = None) -> None:
        """Delete the session event; absent already is success. A stale ``etag`` conflicts."""
        eid = event_id(uid)
        headers = {"If-Match": etag} if etag else None
        status, _ = self._call(
            lambda: self._events.delete(calendarId=self.calendar_id, eventId=eid),
            "events.delete",
            expect=(404, 410, 412),
            headers=headers,
        )
        if status == 412:
            current = self._get_event(eid)
            if current is not None and current.get("status") != "cancelled":
                raise Conflict(f"session {uid} changed on the server", calendar=self.name)

    def _patch(self, uid: str, eid: str, body: dict[str, Any], etag: str) -> str:
        status, patched = self._call(
            lambda: self._events.patch(calendarId=self.calendar_id, eventId=eid, body=body),
            "events.patch",
            expect=(404, 410, 412),
            headers={"If-Match": etag},
        )
        if status == 200:
            return str(patched["etag"])
        current = self._get_event(eid)
        if current is None or current.get("status") == "cancelled":
            raise NotFound(f"session {uid} is not in the calendar", calendar=self.name)
        if self._is_ours(current, uid) and _same(current, body):
            return str(current["etag"])  # our own earlier write, whose answer was lost
        raise Conflict(
            f"session {uid} changed on the server (ETag {current.get('etag')}, expected {etag})",
            calendar=self.name,
        )

    def _get_event(self, eid: str) -> dict[str, Any] | None:
        """The event as Google has it (deleted ones too, with status cancelled), or None."""
        status, found = self._call(
            lambda: self._events.get(calendarId=self.calendar_id, eventId=eid),
            "events.get",
            expect=(404, 410),
        )
        if status != 200 or not isinstance(found, dict):
            return None
        return found

    def _is_ours(self, found: dict[str, Any], uid: str) -> bool:
        stored = _private(found).get(UID_KEY)
        if stored != uid:
            log.warning(
                "%s: event %s holds UID %r, not %r", self.name, found.get("id"), stored, uid
            )
            return False
        return True

    def _session_body(self, event: SessionEvent) -> dict[str, Any]:
        if event.state not in DEFAULT_MARKERS:
            raise ValueError(f"unknown session state {event.state!r}")
        start = require_aware(event.start, "SessionEvent.start")
        end = require_aware(event.end, "SessionEvent.end")
        if end <= start:
            raise ValueError(f"session {event.uid!r} ends before it starts")
        zone = self.desk_tz.key or "UTC"
        tz = ZoneInfo(zone)
        overrides = []
        if event.state == "booked" and event.alarm_minutes >= 0:
            minutes = min(event.alarm_minutes, MAX_REMINDER_MINUTES)
            overrides.append({"method": "popup", "minutes": minutes})
        body: dict[str, Any] = {
            "summary": DEFAULT_MARKERS[event.state] + event.summary,
            "description": event.description,
            "start": {"dateTime": start.astimezone(tz).isoformat(), "timeZone": zone},
            "end": {"dateTime": end.astimezone(tz).isoformat(), "timeZone": zone},
            "status": "confirmed",
            "transparency": "opaque" if event.blocks_time else "transparent",
            "colorId": STATE_COLORS[event.state],
            "reminders": {"useDefault": False, "overrides": overrides},
            "extendedProperties": {"private": {UID_KEY: event.uid, STATE_KEY: event.state}},
        }
        if event.url.startswith(("https://", "http://")):
            body["source"] = {"title": "Check-in", "url": event.url}
        return body

    def _describe_session(self, found: dict[str, Any]) -> ObjectChange:
        start = found.get("start") if isinstance(found.get("start"), dict) else None
        anchor = datetime(2000, 1, 1, tzinfo=self.desk_tz)
        try:
            if start and "dateTime" in start:
                anchor = _parse_instant(start["dateTime"]).astimezone(self.desk_tz)
            elif start and "date" in start:
                anchor = datetime.combine(date.fromisoformat(start["date"]), datetime.min.time())
                anchor = anchor.replace(tzinfo=self.desk_tz)
        except (TypeError, ValueError):
            pass
        window = Interval(anchor - timedelta(days=1), anchor + timedelta(days=366))
        return self._describe(str(found["id"]), found, [], window)


# ---------------------------------------------------------------------- credentials


def _load_credentials(path: Path, subject: str | None, scopes: Sequence[str], calendar: str) -> Any:
    """Credentials from a service-account key or an ``authorized_user`` file."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadConfiguration(
            f"cannot read credentials_file {path}: {exc.strerror}", calendar=calendar
        ) from None
    except ValueError:
        raise BadConfiguration(
            f"credentials_file {path} is not JSON; download the key again", calendar=calendar
        ) from None
    kind = info.get("type") if isinstance(info, dict) else None
    try:
        if kind == "service_account":
            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=list(scopes)
            )
            return credentials.with_subject(subject) if subject else credentials
        if kind == "authorized_user":
            if subject:
                raise BadConfiguration(
                    "subject (domain-wide delegation) needs a service-account key, "
                    f"but {path} is an OAuth user token",
                    calendar=calendar,
                )
            user = google.oauth2.credentials.Credentials.from_authorized_user_info(info)  # type: ignore[no-untyped-call]
            token_uri = info.get("token_uri")
            # The library always puts Google's token endpoint here; the file's own wins.
            return user.with_token_uri(token_uri) if isinstance(token_uri, str) else user
    except (ValueError, KeyError) as exc:
        # The library names the missing field; no secret is in the message.
        raise BadConfiguration(
            f"credentials_file {path} is incomplete: {brief(exc)}", calendar=calendar
        ) from None
    raise BadConfiguration(
        f"credentials_file {path} has type {kind!r}; expected a service-account key "
        "(service_account) or an OAuth user token (authorized_user)",
        calendar=calendar,
    )


# ---------------------------------------------------------------------- events → iCalendar


def _group(
    items: Iterable[dict[str, Any]],
) -> dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]]:
    """Events by series: master id → (master or None, exceptions), in listing order."""
    series: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {}
    for item in items:
        parent = item.get("recurringEventId")
        if isinstance(parent, str) and parent and parent != item["id"]:
            master, exceptions = series.get(parent, (None, []))
            series[parent] = (master, [*exceptions, item])
        else:
            _, exceptions = series.get(item["id"], (None, []))
            series[item["id"]] = (item, exceptions)
    return series


def _private(item: dict[str, Any]) -> dict[str, Any]:
    props = item.get("extendedProperties")
    private = props.get("private") if isinstance(props, dict) else None
    return private if isinstance(private, dict) else {}


def _uid_of(item: dict[str, Any]) -> str | None:
    for value in (_private(item).get(UID_KEY), item.get("iCalUID")):
        if isinstance(value, str) and value:
            return value
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _blocks(item: dict[str, Any]) -> bool:
    """Whether the event holds time, by Google's fields (status handled by the caller)."""
    if item.get("transparency") == "transparent":
        return False
    if item.get("eventType") in _FREE_EVENT_TYPES:
        return False
    for attendee in item.get("attendees") or ():
        if isinstance(attendee, dict) and attendee.get("self") is True:
            return attendee.get("responseStatus") != "declined"
    return True


def _series_ical(
    master: dict[str, Any] | None,
    exceptions: list[dict[str, Any]],
    desk_tz: ZoneInfo,
    uid: str,
    notes: list[_Note],
) -> bytes:
    """The series as a VCALENDAR that :func:`describe_ics` reads: times and recurrence only.

    Free text is never copied; cancelled instances become EXDATEs; an exception whose
    original time cannot be read stands alone (its time and the master's both block).
    """
    cal = ICalendar()
    cal.add("PRODID", "-//expediente//google//EN")
    cal.add("VERSION", "2.0")
    recurrence: list[str] = []
    exdates: list[date | datetime] = []
    overrides: list[IEvent] = []
    for item in exceptions:
        original = _when(item.get("originalStartTime"), "originalStartTime", desk_tz, notes)
        if item.get("status") == "cancelled":
            if original is not None and master is not None:
                exdates.append(original)
            continue
        override = _vevent(item, uid, desk_tz, notes)
        if override is None:
            continue
        if original is None or master is None:
            if master is not None:
                notes.append(
                    (
                        "warning",
                        f"instance {item['id']} has no readable original time; "
                        "it blocks its own time and the series' too",
                    )
                )
                override["UID"] = vText(f"{uid}#{item['id']}")
        else:
            override.add("RECURRENCE-ID", original)
        overrides.append(override)
    if master is not None:
        main = _vevent(master, uid, desk_tz, notes)
        if main is not None:
            recurrence = _recurrence(master, notes)
            for value in exdates:
                main.add("EXDATE", value)
            cal.add_component(main)
    for override in overrides:
        cal.add_component(override)
    text = bytes(cal.to_ical())
    if recurrence:
        marker = b"END:VEVENT\r\n"
        lines = "".join(line + "\r\n" for line in recurrence).encode()
        text = text.replace(marker, lines + marker, 1)
    return text


def _vevent(item: dict[str, Any], uid: str, desk_tz: ZoneInfo, notes: list[_Note]) -> IEvent | None:
    eid = item["id"]
    for field in ("description", "summary", "location"):
        value = item.get(field)
        if isinstance(value, str) and len(value) > LARGE_TEXT:
            notes.append(
                ("warning", f"{field} of event {eid} is {len(value)} characters; text ignored")
            )
    start = _when(item.get("start"), "start", desk_tz, notes)
    if start is None:
        notes.append(("error", f"event {eid} has no readable start; skipped"))
        return None
    end = _when(item.get("end"), "end", desk_tz, notes)
    if end is not None and (isinstance(end, datetime) != isinstance(start, datetime)):
        notes.append(("warning", f"event {eid} mixes a date and a date-time; end ignored"))
        end = None
    if end is not None and (end < start or (end == start and isinstance(start, datetime))):
        notes.append(("warning", f"event {eid} ends before it starts; end ignored"))
        end = None
    event = IEvent()
    event.add("UID", uid)
    event.add("DTSTAMP", datetime(2000, 1, 1, tzinfo=UTC))
    event.add("DTSTART", start)
    if end is not None:
        event.add("DTEND", end)
    if not _blocks(item):
        event.add("TRANSP", "TRANSPARENT")
    state = _private(item).get(STATE_KEY)
    if isinstance(state, str) and state:
        event.add(STATE_PROPERTY, vText(_CONTROL.sub("", state)))
        if state == "cancelled":
            event.add("STATUS", "CANCELLED")
    return event


def _when(value: Any, field: str, desk_tz: ZoneInfo, notes: list[_Note]) -> date | datetime | None:
    """A Google EventDateTime as a date or an aware datetime (None, noted, if unreadable)."""
    if value is None:
        return None  # absence is judged by the reader (no end: one hour)
    if not isinstance(value, dict):
        notes.append(("error", f"{field} is not an object"))
        return None
    if "dateTime" in value and value["dateTime"] is not None:
        try:
            moment = datetime.fromisoformat(str(value["dateTime"]))
        except ValueError:
            notes.append(
                ("error", f"{field}.dateTime {str(value['dateTime'])[:40]!r} is unreadable")
            )
            return None
        zone_name = value.get("timeZone")
        zone: ZoneInfo | None = None
        if isinstance(zone_name, str) and zone_name:
            try:
                zone = ZoneInfo(zone_name)
            except (ValueError, KeyError, OSError):
                notes.append(
                    (
                        "warning",
                        f"{field}.timeZone {zone_name[:60]!r} is not a known time zone; "
                        "the time's own UTC offset is used",
                    )
                )
        if moment.tzinfo is None:
            if zone is None:
                notes.append(
                    (
                        "warning",
                        f"{field}.dateTime has no offset and no known time zone; "
                        "read in the desk's time zone",
                    )
                )
                zone = desk_tz
            return moment.replace(tzinfo=zone)
        return moment.astimezone(zone) if zone is not None else moment.astimezone(UTC)
    if "date" in value and value["date"] is not None:
        try:
            return date.fromisoformat(str(value["date"]))
        except ValueError:
            notes.append(("error", f"{field}.date {str(value['date'])[:40]!r} is unreadable"))
            return None
    notes.append(("error", f"{field} has neither date nor dateTime"))
    return None


def _recurrence(master: dict[str, Any], notes: list[_Note]) -> list[str]:
    """The master's recurrence lines that are safe to place in a VEVENT (no line breaks,
    a known property, a readable RRULE); the others are noted and left out."""
    lines = master.get("recurrence") or []
    if not isinstance(lines, list):
        notes.append(("error", f"recurrence of event {master['id']} is not a list; ignored"))
        return []
    kept: list[str] = []
    for line in lines:
        text = str(line)
        match = _RECURRENCE_LINE.fullmatch(text)
        if _CONTROL.search(text) or match is None:
            notes.append(
                ("error", f"recurrence line {text[:60]!r} is not RRULE/RDATE/EXDATE; ignored")
            )
            continue
        if match.group(1).upper() in ("RRULE", "EXRULE"):
            rule = match.group(3) if match.group(2) == ":" else match.group(3).partition(":")[2]
            try:
                vRecur.from_ical(rule)
            except ValueError:
                notes.append(("error", f"recurrence rule {text[:60]!r} is unreadable; ignored"))
                continue
        kept.append(text)
    return kept


def _same(current: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether the stored event already says what ``body`` would write."""
    for key in ("summary", "description", "status", "transparency", "colorId"):
        if (current.get(key) or "") != (body.get(key) or ""):
            return False
    for key in ("start", "end"):
        try:
            if _parse_instant(current[key]["dateTime"]) != _parse_instant(body[key]["dateTime"]):
                return False
        except (KeyError, TypeError, ValueError):
            return False
    private = _private(current)
    if any(private.get(k) != v for k, v in body["extendedProperties"]["private"].items()):
        return False
    reminders = current.get("reminders") or {}
    wanted = body["reminders"]
    if bool(reminders.get("useDefault")) != wanted["useDefault"]:
        return False
    if (reminders.get("overrides") or []) != wanted["overrides"]:
        return False
    return (current.get("source") or {}).get("url") == (body.get("source") or {}).get("url")


# ---------------------------------------------------------------------- helpers


def _parse_instant(text: Any) -> datetime:
    """An RFC 3339 time with an offset (ValueError without one)."""
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spans(window: Interval, longest: timedelta) -> list[Interval]:
    spans: list[Interval] = []
    start = window.start
    while start < window.end:
        end = min(window.end, start + longest)
        spans.append(Interval(start, end))
        start = end
    return spans


def _error_detail(content: Any) -> tuple[str | None, str | None]:
    """(first reason, message) from Google's JSON error body, when there is one."""
    try:
        data = json.loads(content)
        error = data["error"]
        message = str(error.get("message", ""))[:200] or None
        errors = error.get("errors") or []
        reason = errors[0].get("reason") if errors and isinstance(errors[0], dict) else None
        return (str(reason) if reason else None), message
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, None
