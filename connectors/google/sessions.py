"""Writing session events to a Google calendar, and reading one back.

Writing: a session event lives at a client-chosen event id derived from its UID
(:func:`event_id`), with the UID and state in ``extendedProperties.private``. A create is an
``events.insert`` with that id; a ``409`` (our own earlier insert whose answer was lost, or
a deleted event with the id) is read and patched into shape, never duplicated. Updates
and deletes carry ``If-Match: <etag>``; a ``412`` is a :class:`Conflict` unless the event
already holds exactly what we meant to write (the retry of a write that landed). No
attendee is written: Google would copy the event, check-in link included, into the
client's own Google calendar and mail them; the client gets the daemon's own e-mail.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import Conflict, NotFound, ObjectChange, SessionEvent, Unavailable
from connectors.google.translate import (
    STATE_KEY,
    UID_KEY,
    _describe_series,
    _parse_instant,
    _private,
)
from connectors.google.transport import _Transport
from connectors.ical import DEFAULT_MARKERS
from rules.intervals import Interval, require_aware

log = logging.getLogger("connectors.google")  # the package's name: what logs are filtered on

MAX_REMINDER_MINUTES = 40320  # four weeks: Google's ceiling for a reminder override
# Google event colours closest to the CalDAV writer's COLOR per state.
STATE_COLORS: Mapping[str, str] = {
    "booked": "9",
    "in_progress": "10",
    "completed": "8",
    "rescheduled": "6",
    "cancelled": "11",
}


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


class _Sessions(_Transport):
    """Session events of :class:`~connectors.google.adapter.GoogleCalendar`."""

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
        return _describe_series(str(found["id"]), found, [], window, self.desk_tz, self.name)


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
