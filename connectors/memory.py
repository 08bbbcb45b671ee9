"""An in-memory :class:`~connectors.base.SessionCalendar`, for tests of everything above it.

It keeps iCalendar text per object name, like a CalDAV collection, reads it with the same
:mod:`connectors.ical` functions as the real adapters, and answers conditional writes the
same way (:class:`Conflict`, :class:`NotFound`). Like a real server it keeps a change log,
so incremental syncs return only what changed. A test plays the technician's calendar app
with :meth:`MemoryCalendar.put_raw` / :meth:`delete_raw`, and a server outage by setting
:attr:`MemoryCalendar.down` to an exception to raise.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.base import (
    Conflict,
    ConnectorError,
    NotFound,
    ObjectChange,
    Problem,
    SessionEvent,
    SyncResult,
    sync_problems,
)
from connectors.ical import describe_ics, parse_calendar, parse_session_event, session_to_ical
from rules.intervals import Interval

__all__ = ["MemoryCalendar"]

log = logging.getLogger(__name__)


class MemoryCalendar:
    """A SessionCalendar whose objects live in a dict; ``name`` is its printable name."""

    def __init__(self, desk_tz: ZoneInfo, name: str = "memory") -> None:
        self.desk_tz = desk_tz
        self._name = name
        self._objects: dict[str, tuple[bytes, str]] = {}  # name → (text, ETag)
        self._log: list[str] = []  # object names in the order they changed
        self._etags = 0
        self.down: ConnectorError | None = None  # raised by every call while set

    @property
    def name(self) -> str:
        return self._name

    # -- the technician's side
    def put_raw(self, name: str, data: str | bytes) -> str:
        """Store ``data`` as object ``name`` (no checks, as a lenient server would)."""
        self._etags += 1
        etag = f'"{self._etags}"'
        self._objects[name] = (data.encode() if isinstance(data, str) else data, etag)
        self._log.append(name)
        return etag

    def get_raw(self, name: str) -> bytes | None:
        found = self._objects.get(name)
        return found[0] if found else None

    def delete_raw(self, name: str) -> None:
        if self._objects.pop(name, None) is not None:
            self._log.append(name)

    # -- Calendar
    def sync(
        self, state: str | None, window: Interval, known: Mapping[str, str] | None = None
    ) -> SyncResult:
        self._check()
        problems: list[Problem] = []
        since, expand = self._decode(state, window, problems)
        full = since is None
        names = list(self._objects) if since is None else list(dict.fromkeys(self._log[since:]))
        changes = [self._change(n, expand, known or {}) for n in names]
        new_state = json.dumps(
            {"at": len(self._log), "window": [expand.start.isoformat(), expand.end.isoformat()]}
        )
        return SyncResult(
            changes, new_state, full, sync_problems(changes, problems, log), requests=1
        )

    def _decode(
        self, state: str | None, window: Interval, problems: list[Problem]
    ) -> tuple[int | None, Interval]:
        if state is None:
            return None, window
        try:
            data = json.loads(state)
            since = int(data["at"])
            start, end = (datetime.fromisoformat(x) for x in data["window"])
            saved = Interval(start, end)
        except (ValueError, KeyError, TypeError):
            problems.append(Problem(self.name, None, "sync state refused; full resync"))
            return None, window
        if not 0 <= since <= len(self._log) or not saved.contains(window):
            return None, window
        return since, saved

    def _change(self, name: str, window: Interval, known: Mapping[str, str]) -> ObjectChange:
        found = self._objects.get(name)
        if found is None:
            return ObjectChange(href=name, uid=None, etag=None, deleted=True)
        data, etag = found
        if etag and known.get(name) == etag:  # as a CalDAV server's listing would let it be skipped
            return ObjectChange(href=name, uid=None, etag=etag, written=True)
        return describe_ics(data, window, self.desk_tz, href=name, etag=etag, calendar=self.name)

    # -- SessionCalendar
    def get_session(self, uid: str) -> tuple[ObjectChange, str] | None:
        self._check()
        found = self._objects.get(_name(uid))
        if found is None:
            return None
        data, etag = found
        cal, _ = parse_calendar(data, calendar=self.name)
        snapshot = parse_session_event(cal, self.desk_tz, uid=uid) if cal is not None else None
        start = snapshot.start if snapshot and snapshot.start else None
        start = start or datetime(2000, 1, 1, tzinfo=self.desk_tz)
        window = Interval(start - timedelta(days=1), start + timedelta(days=366))
        return self._change(_name(uid), window, {}), etag

    def session_href(self, uid: str) -> str:
        return _name(uid)

    def put_session(self, event: SessionEvent, etag: str | None = None) -> str:
        self._check()
        name = _name(event.uid)
        current = self._objects.get(name)
        if etag is not None and current is None:
            raise NotFound(f"session {event.uid} is not in the calendar", calendar=self.name)
        if etag is not None and current is not None and current[1] != etag:
            raise Conflict(f"session {event.uid} changed meanwhile", calendar=self.name)
        return self.put_raw(name, session_to_ical(event))

    def delete_session(self, uid: str, etag: str | None = None) -> None:
        self._check()
        current = self._objects.get(_name(uid))
        if current is not None and etag is not None and current[1] != etag:
            raise Conflict(f"session {uid} changed meanwhile", calendar=self.name)
        self.delete_raw(_name(uid))

    def _check(self) -> None:
        if self.down is not None:
            raise self.down


def _name(uid: str) -> str:
    return f"{uid}.ics"
