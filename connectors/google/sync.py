"""Reading a Google calendar: incremental sync of busy time, and free/busy queries.

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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from connectors.base import (
    ObjectChange,
    Problem,
    SyncResult,
    Unavailable,
    dump_state,
    load_state,
    resume_state,
    sync_problems,
)
from connectors.google.translate import _describe_series, _group, _parse_instant
from connectors.google.transport import _Transport
from connectors.ical import BusyResult
from rules.intervals import Interval

log = logging.getLogger("connectors.google")  # the package's name: what logs are filtered on

FREEBUSY_MAX_CALENDARS = 50  # freeBusy calendarExpansionMax ceiling
# Google refuses long freeBusy ranges ("The requested time range is too long", seen past
# ~90 days); 60 leaves room for DST and rounding.
FREEBUSY_MAX_SPAN = timedelta(days=60)

_STATE_VERSION = 1


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


class _Sync(_Transport):
    """Listing, incremental sync and free/busy of
    :class:`~connectors.google.adapter.GoogleCalendar`."""

    page_size: int
    expand_margin: timedelta

    def sync(
        self, state: str | None, window: Interval, known: Mapping[str, str] | None = None
    ) -> SyncResult:
        """Changes since ``state`` with busy blocks over ``window`` (see the module docs).

        ``known`` is not used: Google lists each changed event with its body, so there is
        no fetch to skip.

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
            changes.append(
                _describe_series(master_id, master, exceptions, expand, self.desk_tz, self.name)
            )
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
            changes.append(
                _describe_series(master_id, master, exceptions, expand, self.desk_tz, self.name)
            )
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
