"""Reading a CalDAV calendar: incremental sync of busy time, and the free-busy REPORT.

Reading (:meth:`CalDAVCalendar.sync`) is incremental. Where the server supports RFC 6578 an
idle sync is one ``sync-collection`` REPORT that lists no object and carries no event body;
changed objects are then fetched with ``calendar-multiget`` and each is parsed and expanded
once. Where it does not, the CTag is compared (one PROPFIND) and only when it moved are
the objects' ETags listed and the changed ones fetched. A token the server refuses makes
a full resync (``full=True``); a failed request raises, it never reads as "everything was
deleted".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from caldav.lib import error as dav_error
from lxml import etree

from connectors import compat
from connectors.base import (
    BadConfiguration,
    ObjectChange,
    Problem,
    SyncResult,
    Unavailable,
    dump_state,
    load_state,
    resume_state,
    sync_problems,
)
from connectors.caldav.transport import (
    _CALDAV,
    _CS,
    _DAV,
    _MULTISTATUS,
    _body,
    _norm,
    _responses,
    _text,
    _Transport,
    log,
)
from connectors.ical import BusyResult, busy_from_ics, describe_ics
from rules.intervals import Interval

SyncMethod = Literal["auto", "sync-collection", "etag"]

_UID_LINE = re.compile(rb"^UID(?:;[^:\r\n]*)?:([^\r\n]*)", re.MULTILINE | re.IGNORECASE)
_STATE_VERSION = 1

_CTAG_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
    "<D:prop><CS:getctag/></D:prop></D:propfind>"
)
_ETAG_PROPFIND = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
    "<D:prop><D:resourcetype/><D:getetag/><CS:getctag/></D:prop></D:propfind>"
)


@dataclass
class _State:
    """What the adapter remembers between syncs (serialised as the opaque state string).

    ``window`` is the range blocks were expanded over; a later sync asking for anything
    outside it resyncs in full, since unchanged recurring events were never expanded there.
    """

    method: Literal["sync-collection", "etag"]
    window: Interval
    token: str | None = None
    ctag: str | None = None
    etags: dict[str, str] = field(default_factory=dict)

    def encode(self) -> str:
        if self.method == "sync-collection":
            return dump_state(_STATE_VERSION, self.window, method=self.method, token=self.token)
        return dump_state(
            _STATE_VERSION, self.window, method=self.method, ctag=self.ctag, etags=self.etags
        )

    @classmethod
    def decode(cls, text: str) -> _State:
        """Raises ValueError (or KeyError/TypeError) when ``text`` is not a state of ours."""
        data, window = load_state(text, _STATE_VERSION)
        method = data["method"]
        if method not in ("sync-collection", "etag"):
            raise ValueError(f"unknown sync method {method!r}")
        if method == "sync-collection":
            token = data.get("token")
            if not isinstance(token, str) or not token:
                raise ValueError("sync state without a token")
            return cls("sync-collection", window, token=token)
        etags = data.get("etags", {})
        if not isinstance(etags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in etags.items()
        ):
            raise ValueError("sync state with a bad ETag map")
        ctag = data.get("ctag")
        return cls("etag", window, ctag=ctag if isinstance(ctag, str) else None, etags=etags)


class _TokenRejected(Exception):
    """The server does not accept our sync token any more."""


class _SyncCollectionUnsupported(Exception):
    """The server does not do sync-collection on this calendar."""


@dataclass(frozen=True)
class _Fetched:
    href: str
    data: bytes
    etag: str | None


class _Sync(_Transport):
    """Sync and free/busy of :class:`~connectors.caldav.adapter.CalDAVCalendar`."""

    sync_method: SyncMethod
    expand_margin: timedelta
    multiget_batch: int

    def sync(
        self, state: str | None, window: Interval, known: Mapping[str, str] | None = None
    ) -> SyncResult:
        """Changes since ``state`` with busy blocks over ``window`` (see the module docs).

        An object listed with the ETag ``known`` gives for its href is not fetched; it
        comes back ``written`` (see :meth:`connectors.base.Calendar.sync`).

        ``SyncResult.problems`` holds every problem met, those of the objects included;
        ``SyncResult.requests`` counts HTTP requests (``last_transfer`` has the bytes too).
        Raises :class:`Unavailable`, :class:`AuthFailed` or :class:`BadConfiguration`.
        """
        with self._measure() as spent:
            problems: list[Problem] = []
            saved = self._usable_state(state, window, problems)
            method = saved.method if saved is not None else self.sync_method
            result: tuple[list[ObjectChange], _State, bool]
            if method == "etag":
                result = self._sync_etags(saved, window, known)
            else:
                try:
                    result = self._sync_collection(saved, window, problems, known)
                except _SyncCollectionUnsupported:
                    if method != "auto":
                        raise BadConfiguration(
                            "the server does not support sync-collection (RFC 6578); "
                            "use the etag sync method",
                            calendar=self.name,
                        ) from None
                    log.info("%s: no sync-collection support; comparing ETags", self.name)
                    result = self._sync_etags(None, window, known)
            changes, new_state, full = result
        return SyncResult(
            changes=changes,
            state=new_state.encode(),
            full=full,
            problems=sync_problems(changes, problems, log),
            requests=spent.requests,
        )

    def _usable_state(
        self, state: str | None, window: Interval, problems: list[Problem]
    ) -> _State | None:
        saved = resume_state(state, window, _State.decode, calendar=self.name, problems=problems)
        if saved is not None and self.sync_method != "auto" and saved.method != self.sync_method:
            return None  # the configuration changed the method: start over with it
        return saved

    def _expansion_window(self, saved: _State | None, window: Interval) -> Interval:
        if saved is not None:
            return saved.window
        return Interval(window.start, window.end + self.expand_margin)

    # -- RFC 6578

    def _sync_collection(
        self,
        saved: _State | None,
        window: Interval,
        problems: list[Problem],
        known: Mapping[str, str] | None,
    ) -> tuple[list[ObjectChange], _State, bool]:
        token = saved.token if saved is not None else None
        expand = self._expansion_window(saved, window)
        try:
            listing = self._list_changes(token)
        except _TokenRejected:
            problems.append(
                Problem(self.name, None, "the server refused the sync token; full resync")
            )
            token, saved = None, None
            expand = self._expansion_window(None, window)
            listing = self._list_changes(None)
        full = token is None
        new_token, changed, deleted, truncated = listing
        if truncated and full:
            # A partial listing with full=True would read as "the rest was deleted".
            raise Unavailable("the server truncated the full listing", calendar=self.name)
        changes = [ObjectChange(href=h, uid=None, etag=None, deleted=True) for h in deleted]
        written, fetch = _split_written(changed, known)
        changes += written
        changes += self._fetch_and_describe(fetch, expand, listed=changed)
        state = _State("sync-collection", expand, token=new_token)
        return changes, state, full

    def _list_changes(
        self, token: str | None
    ) -> tuple[str, dict[str, str | None], list[str], bool]:
        """(new token, changed href → listed ETag, deleted hrefs, truncated) since ``token``."""
        if token is not None:
            quick = self._poller.report(token)
            if quick is not None:
                return quick.token, quick.changed, quick.deleted, False

        def report() -> Any:
            try:
                # disable_fallback: a failed REPORT must raise, never become a silent full
                # fetch with a "fake-" token (quirk caldav-fake-token-fallback).
                return self._calendar.get_objects_by_sync_token(
                    sync_token=token, load_objects=False, disable_fallback=True
                )
            except Exception as exc:
                status = getattr(exc, "status", None)
                preconditions = getattr(exc, "preconditions", ())
                if token is not None and compat.is_invalid_sync_token(status, preconditions):
                    raise _TokenRejected() from exc
                if isinstance(exc, dav_error.DAVError) and compat.sync_collection_unsupported(
                    status, preconditions
                ):
                    raise _SyncCollectionUnsupported() from exc
                self._fail(exc, "sync-collection REPORT")

        collection = self._idempotent(report)
        new_token = collection.sync_token
        if not isinstance(new_token, str) or not new_token:
            raise _SyncCollectionUnsupported()  # a 207 without a token is no sync support
        deleted_urls = {str(u.canonical()) for u in collection.deleted_urls}
        changed: dict[str, str | None] = {}
        deleted: list[str] = []
        for obj in collection.objects:
            href = _norm(str(obj.url.path))
            if href == self._path:
                continue
            if deleted_urls and str(obj.url.canonical()) in deleted_urls:
                deleted.append(href)
            else:
                changed[href] = obj.props.get(f"{_DAV}getetag")
        return new_token, changed, deleted, bool(collection.truncated)

    # -- CTag / ETag fallback

    def _sync_etags(
        self, saved: _State | None, window: Interval, known: Mapping[str, str] | None
    ) -> tuple[list[ObjectChange], _State, bool]:
        expand = self._expansion_window(saved, window)
        if saved is not None and saved.ctag is not None:
            ctag = self._ctag()
            if ctag == saved.ctag:
                return [], saved, False
        ctag, listed = self._list_etags()
        old = saved.etags if saved is not None else {}
        # An object listed without an ETag ("") is fetched every time: nothing else tells
        # whether it changed.
        changed = {h: etag for h, etag in listed.items() if not etag or old.get(h) != etag}
        changes = [
            ObjectChange(href=h, uid=None, etag=None, deleted=True) for h in old if h not in listed
        ]
        written, fetch = _split_written(changed, known)
        changes += written
        fetched = self._fetch_and_describe(fetch, expand)
        etags = dict(listed)
        for change in fetched:
            if change.deleted:
                etags.pop(change.href, None)
            elif change.etag and etags.get(change.href):
                etags[change.href] = change.etag
        changes += fetched
        return changes, _State("etag", expand, ctag=ctag, etags=etags), saved is None

    def _ctag(self) -> str | None:
        def propfind() -> Any:
            response = self._request("PROPFIND", self._url, _CTAG_PROPFIND, {"Depth": "0"})
            return self._checked(response, "PROPFIND getctag", _MULTISTATUS)

        response = self._idempotent(propfind)
        for href, _status, props in _responses(response.tree):
            if _norm(href) == self._path and f"{_CS}getctag" in props:
                return _text(props[f"{_CS}getctag"])
        return None

    def _list_etags(self) -> tuple[str | None, dict[str, str]]:
        def propfind() -> Any:
            response = self._request("PROPFIND", self._url, _ETAG_PROPFIND, {"Depth": "1"})
            return self._checked(response, "PROPFIND getetag", _MULTISTATUS)

        response = self._idempotent(propfind)
        ctag: str | None = None
        etags: dict[str, str] = {}
        for href, _status, props in _responses(response.tree):
            path = _norm(href)
            if path == self._path:
                if f"{_CS}getctag" in props:
                    ctag = _text(props[f"{_CS}getctag"])
                continue
            kind = props.get(f"{_DAV}resourcetype")
            if kind is not None and kind.find(f"{_DAV}collection") is not None:
                continue  # a sub-collection is not an event
            etags[path] = _text(props[f"{_DAV}getetag"]) if f"{_DAV}getetag" in props else ""
        return ctag, etags

    # -- fetching and parsing changed objects

    def _fetch_and_describe(
        self,
        hrefs: Sequence[str],
        expand: Interval,
        *,
        listed: dict[str, str | None] | None = None,
    ) -> list[ObjectChange]:
        """Fetch ``hrefs`` in batches and describe each; a missing one counts as deleted.

        ``listed`` holds ETags from the listing, used when the fetch returns none.
        """
        changes: list[ObjectChange] = []
        for start in range(0, len(hrefs), self.multiget_batch):
            batch = list(hrefs[start : start + self.multiget_batch])
            found = self._multiget(batch)
            for href in batch:
                item = found.get(href)
                if item is None:
                    # Deleted between the listing and the fetch (or not an event at all).
                    changes.append(ObjectChange(href=href, uid=None, etag=None, deleted=True))
                else:
                    if item.etag is None and listed and listed.get(href):
                        item = _Fetched(item.href, item.data, listed[href])
                    changes.append(_describe_fetched(item, expand, self.desk_tz, self.name))
        return changes

    def _multiget(self, hrefs: list[str]) -> dict[str, _Fetched]:
        """calendar-multiget for ``hrefs``; members answering 404 are simply absent.

        Sent by hand rather than with ``Calendar.multiget()``, which fails on a 404 member
        (quirk caldav-multiget-missing-object).
        """
        body = _multiget_body(hrefs)

        def report() -> Any:
            # RFC 4791 §7.9: no Depth header on calendar-multiget.
            response = self._request("REPORT", self._url, body, {"Content-Type": "text/xml"})
            return self._checked(response, "calendar-multiget REPORT", _MULTISTATUS)

        response = self._idempotent(report)
        found: dict[str, _Fetched] = {}
        for href, status, props in _responses(response.tree):
            data = props.get(f"{_CALDAV}calendar-data")
            if status == 404 or data is None:
                continue
            etag = _text(props[f"{_DAV}getetag"]) if f"{_DAV}getetag" in props else None
            path = _norm(href)
            found[path] = _Fetched(path, (data.text or "").encode(), etag)
        return found

    def free_busy(self, window: Interval) -> BusyResult:
        """Busy time over ``window`` from the server's CALDAV:free-busy-query REPORT.

        One request, computed by the server (which may read recurrence or zones differently
        from :mod:`connectors.ical`); the sync cache is the primary source, this is a cross
        check and a fallback. Raises like :meth:`sync`.
        """
        start = window.start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        end = window.end.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f'<C:time-range start="{start}" end="{end}"/></C:free-busy-query>'
        )

        def report() -> Any:
            response = self._request("REPORT", self._url, body, {"Depth": "1"})
            return self._checked(response, "free-busy-query REPORT", (200,))

        with self._measure():
            response = self._idempotent(report)
        return busy_from_ics(_body(response), window, self.desk_tz, calendar=self.name)


def _split_written(
    changed: Mapping[str, str | None], known: Mapping[str, str] | None
) -> tuple[list[ObjectChange], list[str]]:
    """The changed objects listed with the ETag the caller wrote them with (reported
    ``written``, not fetched), and the hrefs of the others, to fetch.

    A listing without an ETag, or with another one (the technician edited the event
    since), is fetched as before: only an exact match says the body is the caller's."""
    if not known:
        return [], list(changed)
    written: list[ObjectChange] = []
    fetch: list[str] = []
    for href, etag in changed.items():
        if etag and known.get(href) == etag:
            written.append(ObjectChange(href=href, uid=None, etag=etag, written=True))
        else:
            fetch.append(href)
    return written, fetch


def _describe_fetched(
    item: _Fetched, expand: Interval, desk_tz: ZoneInfo, calendar: str
) -> ObjectChange:
    """One fetched object as an ObjectChange; its UID is named even when it is unreadable."""
    change = describe_ics(
        item.data,
        expand,
        desk_tz,
        href=item.href,
        etag=item.etag,
        calendar=calendar,
    )
    if change.uid is not None:
        return change
    if not change.problems:
        # Readable, but RFC 5545 requires a UID; the time still counts.
        problem = Problem(calendar, None, f"object {item.href} has no UID", "warning")
        return replace(change, problems=(problem,))
    # Unreadable text: name the UID anyway if a UID line can be found, so the
    # technician's event can be found and fixed.
    uid = _uid_from_text(item.data)
    problems = tuple(
        Problem(p.calendar, p.uid or uid, f"{p.message} (object {item.href})", p.severity)
        for p in change.problems
    )
    return ObjectChange(
        href=change.href,
        uid=uid,
        etag=change.etag,
        blocks=change.blocks,
        start=change.start,
        end=change.end,
        cancelled=change.cancelled,
        problems=problems,
    )


def _multiget_body(hrefs: Sequence[str]) -> str:
    root = etree.Element(f"{_CALDAV}calendar-multiget", nsmap={"D": "DAV:", "C": _CALDAV[1:-1]})
    prop = etree.SubElement(root, f"{_DAV}prop")
    etree.SubElement(prop, f"{_DAV}getetag")
    etree.SubElement(prop, f"{_CALDAV}calendar-data")
    for href in hrefs:
        etree.SubElement(root, f"{_DAV}href").text = quote(href, safe="/@:+,;=!$&'()*~")
    return str(etree.tostring(root, xml_declaration=True, encoding="utf-8").decode())


def _uid_from_text(data: bytes) -> str | None:
    match = _UID_LINE.search(data)
    if match is None:
        return None
    return match.group(1).decode(errors="replace").strip() or None
