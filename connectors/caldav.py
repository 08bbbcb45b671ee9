"""The CalDAV adapter: one calendar URL on any CalDAV server, through the ``caldav`` library.

Reading (:meth:`CalDAVCalendar.sync`) is incremental. Where the server supports RFC 6578 an
idle sync is one ``sync-collection`` REPORT that lists no object and carries no event body;
changed objects are then fetched with ``calendar-multiget`` and each is parsed and expanded
once. Where it does not, the CTag is compared (one PROPFIND) and only when it moved are
the objects' ETags listed and the changed ones fetched. A token the server refuses makes
a full resync (``full=True``); a failed request raises, it never reads as "everything was
deleted".

Writing (:meth:`CalDAVCalendar.put_session` and friends) uses one object per session at a
name derived from its UID, with ``If-None-Match: *`` on create and ``If-Match`` on update, so
a retried create never duplicates and a technician's edit is never overwritten blindly.

Only GET, PROPFIND and REPORT are retried here (see :mod:`connectors.retry`); PUT and
DELETE failures go back to the caller. Server oddities are listed in :mod:`connectors.compat`.

Note: this module is ``connectors.caldav``; the ``caldav`` imports below are the library
(absolute imports only), never this file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NoReturn, cast
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.lib.http_sync import requests as http
from lxml import etree

from connectors import compat
from connectors.base import (
    AuthFailed,
    BadConfiguration,
    Conflict,
    ConnectorError,
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
from connectors.ical import (
    BusyResult,
    busy_from_ics,
    describe_ics,
    parse_calendar,
    parse_session_event,
    session_to_ical,
)
from connectors.retry import RetryPolicy, http_date, retry_after_seconds
from rules.intervals import Interval

__all__ = ["CalDAVCalendar", "SyncMethod", "TransferStats", "object_name"]

log = logging.getLogger(__name__)

SyncMethod = Literal["auto", "sync-collection", "etag"]

DEFAULT_TIMEOUT = 30.0
DEFAULT_EXPAND_MARGIN = timedelta(days=7)
DEFAULT_MULTIGET_BATCH = 250

_DAV = "{DAV:}"
_CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_CS = "{http://calendarserver.org/ns/}"
_ICS_TYPE = "text/calendar; charset=utf-8"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}")
_UID_LINE = re.compile(rb"^UID(?:;[^:\r\n]*)?:([^\r\n]*)", re.MULTILINE | re.IGNORECASE)
_STATE_VERSION = 1
_MULTISTATUS = (207, 200)  # 207 per RFC 4918; a few servers say 200 for the same body

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


@dataclass
class TransferStats:
    """HTTP traffic: requests sent and body bytes each way (headers not counted)."""

    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def __sub__(self, other: TransferStats) -> TransferStats:
        return TransferStats(
            self.requests - other.requests,
            self.bytes_sent - other.bytes_sent,
            self.bytes_received - other.bytes_received,
        )

    def copy(self) -> TransferStats:
        return TransferStats(self.requests, self.bytes_sent, self.bytes_received)


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


class CalDAVCalendar:
    """A :class:`~connectors.base.SessionCalendar` for one CalDAV calendar URL.

    ``password`` is the secret itself (the caller reads it from its file). ``ca_file`` adds a
    CA bundle for a server with a private CA; otherwise the system's CAs verify HTTPS.
    ``timeout`` bounds each request in seconds. ``sync_method`` forces RFC 6578 or the
    CTag/ETag comparison (``auto`` tries sync-collection and falls back when the server says
    it does not support it). ``expand_margin`` is how far past the asked window a full sync
    expands recurrences, so a window creeping forward day by day stays incremental for that
    long. ``clock`` gives DTSTAMP for written events (defaults to the current time).
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        desk_tz: ZoneInfo,
        ca_file: str | Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        retry_policy: RetryPolicy | None = None,
        sync_method: SyncMethod = "auto",
        expand_margin: timedelta = DEFAULT_EXPAND_MARGIN,
        multiget_batch: int = DEFAULT_MULTIGET_BATCH,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadConfiguration(f"not an http(s) calendar URL: {_redact(url)!r}")
        if ca_file is not None and not Path(ca_file).is_file():
            raise BadConfiguration(f"CA file {str(ca_file)!r} does not exist")
        if multiget_batch < 1:
            raise ValueError("multiget_batch must be at least 1")
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        if ":" in parts.hostname:  # an IPv6 literal keeps its brackets
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        self._url = urlunsplit((parts.scheme, netloc, path, "", ""))
        self._path = unquote(path)
        self.desk_tz = desk_tz
        self.retry_policy = retry_policy or RetryPolicy()
        self.sync_method: SyncMethod = sync_method
        self.expand_margin = expand_margin
        self.multiget_batch = multiget_batch
        self._clock = clock
        self.transfer = TransferStats()
        self.last_transfer = TransferStats()
        self._client = DAVClient(
            url=self._url,
            username=username,
            password=password,
            # Preemptive Basic: no 401 round trip per connection, so an idle sync stays one
            # request.
            auth_type="basic",
            timeout=cast(Any, timeout),  # the library annotates int; niquests takes a float
            ssl_verify_cert=str(ca_file) if ca_file is not None else True,
            # A 2 MB description inside one multistatus is ordinary calendar data; entities
            # stay unresolved and the network off (the library's parser settings).
            huge_tree=True,
            enable_rfc6764=False,
        )
        self._client.session.hooks["response"].append(self._count)
        self._calendar = DAVCalendar(client=self._client, url=self._url)

    # ------------------------------------------------------------------ basics

    @property
    def name(self) -> str:
        """The calendar URL without credentials."""
        return self._url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CalDAVCalendar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, response: Any, **_: Any) -> Any:
        """niquests response hook: count every HTTP exchange (auth retries included)."""
        self.transfer.requests += 1
        body = getattr(getattr(response, "request", None), "body", None)
        if body:
            self.transfer.bytes_sent += len(body)
        content = getattr(response, "content", None)
        if content:
            self.transfer.bytes_received += len(content)
        return response

    @contextmanager
    def _measure(self) -> Iterator[TransferStats]:
        """Record the traffic of one public call in ``last_transfer``."""
        before = self.transfer.copy()
        spent = TransferStats()
        try:
            yield spent
        finally:
            delta = self.transfer - before
            spent.requests, spent.bytes_sent, spent.bytes_received = (
                delta.requests,
                delta.bytes_sent,
                delta.bytes_received,
            )
            self.last_transfer = spent

    def _href_url(self, href: str) -> str:
        """An absolute URL for a server path."""
        parts = urlsplit(self._url)
        return urlunsplit((parts.scheme, parts.netloc, quote(href, safe="/@:+,;=!$&'()*~"), "", ""))

    def session_href(self, uid: str) -> str:
        """The server path of the session event with ``uid`` (see the interface)."""
        return self._path + object_name(uid)

    # ------------------------------------------------------------------ errors

    def _fail(self, exc: BaseException, doing: str) -> NoReturn:
        """Raise the :mod:`connectors.base` error that ``exc`` means."""
        raise _translate(exc, doing, self.name, self._clock) from exc

    def _request(
        self, method: str, url: str, body: str = "", headers: dict[str, str] | None = None
    ) -> Any:
        """One HTTP request; transport failures and 401/403/429 become ConnectorErrors."""
        try:
            return self._client.request(url, method, body, headers or {})
        except Exception as exc:
            self._fail(exc, f"{method} {urlsplit(url).path}")

    def _checked(self, response: Any, doing: str, ok: Sequence[int]) -> Any:
        """``response`` if its status is in ``ok``, else the matching error."""
        status = int(response.status)
        if status in ok:
            return response
        headers = response.headers
        retry_after = retry_after_seconds(
            headers.get("Retry-After"), http_date(headers.get("Date"))
        )
        raise _status_error(status, doing, self.name, retry_after)

    def _idempotent(self, call: Callable[[], Any]) -> Any:
        return self.retry_policy.run(call)

    # ------------------------------------------------------------------ sync

    def sync(self, state: str | None, window: Interval) -> SyncResult:
        """Changes since ``state`` with busy blocks over ``window`` (see the module docs).

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
                result = self._sync_etags(saved, window)
            else:
                try:
                    result = self._sync_collection(saved, window, problems)
                except _SyncCollectionUnsupported:
                    if method != "auto":
                        raise BadConfiguration(
                            "the server does not support sync-collection (RFC 6578); "
                            "use the etag sync method",
                            calendar=self.name,
                        ) from None
                    log.info("%s: no sync-collection support; comparing ETags", self.name)
                    result = self._sync_etags(None, window)
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
        self, saved: _State | None, window: Interval, problems: list[Problem]
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
        changes += self._fetch_and_describe(list(changed), expand, listed=changed)
        state = _State("sync-collection", expand, token=new_token)
        return changes, state, full

    def _list_changes(
        self, token: str | None
    ) -> tuple[str, dict[str, str | None], list[str], bool]:
        """(new token, changed href → listed ETag, deleted hrefs, truncated) since ``token``."""

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
        self, saved: _State | None, window: Interval
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
        changed = [h for h, etag in listed.items() if not etag or old.get(h) != etag]
        changes = [
            ObjectChange(href=h, uid=None, etag=None, deleted=True) for h in old if h not in listed
        ]
        fetched = self._fetch_and_describe(changed, expand)
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
                    changes.append(self._describe(item, expand))
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

    def _describe(self, item: _Fetched, expand: Interval) -> ObjectChange:
        change = describe_ics(
            item.data,
            expand,
            self.desk_tz,
            href=item.href,
            etag=item.etag,
            calendar=self.name,
        )
        if change.uid is not None:
            return change
        if not change.problems:
            # Readable, but RFC 5545 requires a UID; the time still counts.
            problem = Problem(self.name, None, f"object {item.href} has no UID", "warning")
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

    # ------------------------------------------------------------------ free/busy

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

    # ------------------------------------------------------------------ sessions

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
        return self._describe(_Fetched(href, data, etag), window)


# ---------------------------------------------------------------------- helpers


def _redact(url: str) -> str:
    """``url`` without its user:password part, for error messages."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _norm(href: str) -> str:
    """A server path in one spelling (percent-decoded, no scheme or host)."""
    return unquote(urlsplit(href).path)


def _text(element: Any) -> str:
    return str(element.text or "").strip()


def _body(response: Any) -> bytes:
    """The raw body of a non-XML response (caldav keeps it on ``_raw``)."""
    raw = getattr(response, "_raw", b"")
    if isinstance(raw, str):
        return raw.encode()
    return bytes(raw or b"")


def _status_code(text: str | None) -> int:
    if not text:
        return 200
    parts = text.split()
    try:
        return int(parts[1]) if len(parts) > 1 else 200
    except ValueError:
        return 200


def _responses(tree: Any) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(href, status, {property tag: element}) for each DAV:response of a multistatus.

    Only properties in a 200 propstat are returned; ``status`` is the response-level
    status (404 for a missing multiget member), 200 when there is none.
    """
    if tree is None:
        return
    for response in tree.iter(f"{_DAV}response"):
        href = response.findtext(f"{_DAV}href") or ""
        status = _status_code(response.findtext(f"{_DAV}status"))
        props: dict[str, Any] = {}
        for propstat in response.findall(f"{_DAV}propstat"):
            if _status_code(propstat.findtext(f"{_DAV}status")) != 200:
                continue
            prop = propstat.find(f"{_DAV}prop")
            if prop is None:
                continue
            for child in prop:
                if isinstance(child.tag, str):
                    props[child.tag] = child
        yield href, status, props


def _multiget_body(hrefs: Sequence[str]) -> str:
    root = etree.Element(f"{_CALDAV}calendar-multiget", nsmap={"D": "DAV:", "C": _CALDAV[1:-1]})
    prop = etree.SubElement(root, f"{_DAV}prop")
    etree.SubElement(prop, f"{_DAV}getetag")
    etree.SubElement(prop, f"{_CALDAV}calendar-data")
    for href in hrefs:
        etree.SubElement(root, f"{_DAV}href").text = quote(href, safe="/@:+,;=!$&'()*~")
    return str(etree.tostring(root, xml_declaration=True, encoding="utf-8").decode())


def _preconditions(response: Any) -> list[str]:
    return dav_error.parse_preconditions(_body(response) or getattr(response, "raw", ""))


def _uid_from_text(data: bytes) -> str | None:
    match = _UID_LINE.search(data)
    if match is None:
        return None
    return match.group(1).decode(errors="replace").strip() or None


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


def _status_error(
    status: int, doing: str, calendar: str, retry_after: float | None = None
) -> ConnectorError:
    message = f"{doing}: HTTP {status}"
    if status in (429, 502, 503, 504) or status >= 500:
        return Unavailable(message, calendar=calendar, retry_after=retry_after)
    if status == 401:
        return AuthFailed(f"{message}: the server refused the credentials", calendar=calendar)
    if status == 403:
        return AuthFailed(f"{message}: permission denied", calendar=calendar)
    if status == 404:
        return BadConfiguration(f"{message}: the calendar does not exist", calendar=calendar)
    if status in (408, 425):
        return Unavailable(message, calendar=calendar, retry_after=retry_after)
    return BadConfiguration(f"{message}: unexpected answer", calendar=calendar)


def _translate(
    exc: BaseException,
    doing: str,
    calendar: str,
    clock: Callable[[], datetime] | None = None,
) -> ConnectorError:
    """Map a library or transport exception onto the connector error it means.

    ``clock`` measures a ``Retry-After`` date on a 429: the library keeps the header's text
    but not the answer's ``Date``.
    """
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, http.exceptions.SSLError):
        return BadConfiguration(
            f"{doing}: TLS failed ({brief(exc)}); check the URL, or set ca_file for a private CA",
            calendar=calendar,
        )
    if isinstance(exc, http.exceptions.RequestException):
        return Unavailable(f"{doing}: {brief(exc)}", calendar=calendar)
    if isinstance(exc, dav_error.RateLimitError):
        return Unavailable(
            f"{doing}: rate limited (HTTP {exc.status or 429})",
            calendar=calendar,
            retry_after=retry_after_seconds(
                exc.retry_after, clock() if clock is not None else None
            ),
        )
    if isinstance(exc, dav_error.DAVError):
        status = exc.status
        if status is None and isinstance(exc, dav_error.NotFoundError):
            status = 404
        if status is None:
            return Unavailable(f"{doing}: unexpected answer ({brief(exc)})", calendar=calendar)
        return _status_error(status, doing, calendar)
    if isinstance(exc, etree.XMLSyntaxError | ValueError):
        return Unavailable(f"{doing}: unreadable answer ({brief(exc)})", calendar=calendar)
    # Something in the library choked on an answer: keep the daemon running, keep the trace.
    log.warning("%s: %s failed unexpectedly", calendar, doing, exc_info=exc)
    return Unavailable(f"{doing}: {type(exc).__name__}: {brief(exc)}", calendar=calendar)
