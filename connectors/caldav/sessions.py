"""Writing session events to a CalDAV calendar, and reading one back.

Writing (:meth:`CalDAVCalendar.put_session` and friends) uses one object per session at a
name derived from its UID, with ``If-None-Match: *`` on create and ``If-Match`` on update, so
a retried create never duplicates and a technician's edit is never overwritten blindly.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from connectors import compat
from connectors.base import Conflict, NotFound, ObjectChange, SessionEvent, Unavailable
from connectors.caldav.sync import _describe_fetched, _Fetched
from connectors.caldav.transport import (
    _DAV,
    _MULTISTATUS,
    _body,
    _preconditions,
    _responses,
    _text,
    _Transport,
)
from connectors.ical import parse_calendar, parse_session_event, session_to_ical
from rules.intervals import Interval

_ICS_TYPE = "text/calendar; charset=utf-8"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}")

_GETETAG_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'
)


def object_name(uid: str) -> str:
    """The resource name a session with ``uid`` is stored under (stable, URL-safe).

    A UID made of letters, digits, ``.``, ``_`` and ``-`` is used as it is; anything else is
    hashed, so two UIDs never share a name and no name needs quoting.
    """
    if _SAFE_NAME.fullmatch(uid) and not uid.endswith(".ics"):
        return f"{uid}.ics"
    return f"uid-{hashlib.sha256(uid.encode()).hexdigest()[:40]}.ics"


class _Sessions(_Transport):
    """Session events of :class:`~connectors.caldav.adapter.CalDAVCalendar`."""

    def session_href(self, uid: str) -> str:
        """The server path of the session event with ``uid`` (see the interface)."""
        return self._path + object_name(uid)

    def get_session(self, uid: str) -> tuple[ObjectChange, str] | None:
        """The session event stored for ``uid`` and its ETag, or None when absent.

        ``blocks`` cover the event's own day range (a year from its start), which is all a
        session event ever spans.
        """
        with self._measure():
            found = self._get(self.session_href(uid))
        if found is None:
            return None
        data, etag = found
        return self._describe_session(uid, data, etag), etag

    def put_session(self, event: SessionEvent, etag: str | None = None) -> str:
        """Create or update the session event; returns its new ETag.

        ``etag=None``: create with ``If-None-Match: *``; if the object is already there with
        the same UID (a retried create), it is updated in place. With ``etag``: update with
        ``If-Match``; :class:`Conflict` when the event changed meanwhile, :class:`NotFound`
        when it is gone. A UID already used by another object in the calendar is a Conflict.
        """
        href = self.session_href(event.uid)
        with self._measure():
            if etag is None:
                return self._create(event, href)
            current = self._get(href)
            if current is None:
                raise NotFound(f"session {event.uid} is not in the calendar", calendar=self.name)
            data, current_etag = current
            if current_etag != etag:
                raise Conflict(
                    f"session {event.uid} changed on the server (ETag {current_etag}, "
                    f"expected {etag})",
                    calendar=self.name,
                )
            return self._update(event, href, data, etag)

    def delete_session(self, uid: str, etag: str | None = None) -> None:
        """Delete the session event; absent already is success. A stale ``etag`` conflicts."""
        href = self.session_href(uid)
        headers = {"If-Match": etag} if etag else {}
        with self._measure():
            response = self._request("DELETE", self._href_url(href), "", headers)
            status = int(response.status)
            if status in (200, 204, 404):
                return
            if status == 412 and etag:
                if self._get(href) is None:
                    return  # gone meanwhile: the goal is reached
                raise Conflict(f"session {uid} changed on the server", calendar=self.name)
            self._checked(response, f"DELETE {href}", (200, 204))

    def _create(self, event: SessionEvent, href: str) -> str:
        body = self._ical(event, sequence=0)
        response = self._put(href, body, {"If-None-Match": "*"})
        status = int(response.status)
        if status in (200, 201, 204):
            return self._etag_after_put(response, href)
        preconditions = _preconditions(response)
        if compat.is_uid_conflict(status, preconditions):
            raise Conflict(
                f"UID {event.uid} is already used by another object in the calendar",
                calendar=self.name,
            )
        if status != 412:
            self._checked(response, f"PUT {href}", (201, 204))
        # The name is taken: most likely our own earlier create whose answer was lost.
        current = self._get(href)
        if current is None:
            # Deleted again in between: one more plain create settles it.
            response = self._put(href, body, {"If-None-Match": "*"})
            self._checked(response, f"PUT {href}", (200, 201, 204))
            return self._etag_after_put(response, href)
        data, current_etag = current
        return self._update(event, href, data, current_etag)

    def _update(self, event: SessionEvent, href: str, data: bytes, etag: str) -> str:
        cal, _ = parse_calendar(data, calendar=self.name)
        stored = _uids(cal) if cal is not None else set()
        if stored and stored != {event.uid}:
            raise Conflict(
                f"{href} holds another event (UID {sorted(stored)[0]}), not session {event.uid}",
                calendar=self.name,
            )
        body = self._ical(event, sequence=_sequence(cal) + 1 if cal is not None else 1)
        response = self._put(href, body, {"If-Match": etag})
        status = int(response.status)
        if status == 412:
            raise Conflict(f"session {event.uid} changed on the server", calendar=self.name)
        self._checked(response, f"PUT {href}", (200, 201, 204))
        return self._etag_after_put(response, href)

    def _ical(self, event: SessionEvent, *, sequence: int) -> bytes:
        stamp = self._clock() if self._clock is not None else None
        return session_to_ical(event, sequence=sequence, stamp=stamp)

    def _put(self, href: str, body: bytes, headers: dict[str, str]) -> Any:
        return self._request(
            "PUT", self._href_url(href), body.decode(), {"Content-Type": _ICS_TYPE, **headers}
        )

    def _etag_after_put(self, response: Any, href: str) -> str:
        """The ETag the PUT returned, or (if none, or weak) the one a GET reports."""
        etag = compat.usable_etag(response.headers.get("ETag"))
        if etag is not None:
            return etag
        found = self._get(href)
        if found is None:
            raise Unavailable(f"{href} vanished right after it was written", calendar=self.name)
        return found[1]

    def _get(self, href: str) -> tuple[bytes, str] | None:
        """(body, ETag) of one object, or None when it does not exist."""

        def get() -> Any:
            response = self._request("GET", self._href_url(href), "", {"Accept": "text/calendar"})
            if int(response.status) == 404:
                return None
            return self._checked(response, f"GET {href}", (200,))

        response = self._idempotent(get)
        if response is None:
            return None
        etag = compat.usable_etag(response.headers.get("ETag")) or self._propfind_etag(href)
        return _body(response), etag

    def _propfind_etag(self, href: str) -> str:
        def propfind() -> Any:
            response = self._request(
                "PROPFIND", self._href_url(href), _GETETAG_PROPFIND, {"Depth": "0"}
            )
            return self._checked(response, f"PROPFIND {href}", _MULTISTATUS)

        response = self._idempotent(propfind)
        for _href, _status, props in _responses(response.tree):
            if f"{_DAV}getetag" in props:
                value = _text(props[f"{_DAV}getetag"])
                if value:
                    return value
        raise Unavailable(f"the server gives no ETag for {href}", calendar=self.name)

    def _describe_session(self, uid: str, data: bytes, etag: str) -> ObjectChange:
        href = self.session_href(uid)
        cal, _ = parse_calendar(data, calendar=self.name)
        snapshot = parse_session_event(cal, self.desk_tz, uid=uid) if cal is not None else None
        if snapshot is not None and snapshot.start is not None:
            window = Interval(snapshot.start - timedelta(days=1), snapshot.start + timedelta(366))
        else:
            anchor = datetime(2000, 1, 1, tzinfo=self.desk_tz)
            window = Interval(anchor, anchor)
        return _describe_fetched(_Fetched(href, data, etag), window, self.desk_tz, self.name)


def _uids(cal: Any) -> set[str]:
    return {str(e.get("UID")) for e in cal.walk("VEVENT") if e.get("UID") is not None}


def _sequence(cal: Any) -> int:
    best = 0
    for event in cal.walk("VEVENT"):
        try:
            best = max(best, int(event.get("SEQUENCE", 0)))
        except (TypeError, ValueError):
            continue
    return best
