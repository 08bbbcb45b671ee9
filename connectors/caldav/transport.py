"""HTTP for the CalDAV adapter: requests, traffic counting, multistatus answers, errors.

Only GET, PROPFIND and REPORT are retried here (see :mod:`connectors.retry`); PUT and
DELETE failures go back to the caller. Server oddities are listed in :mod:`connectors.compat`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.lib.http_sync import requests as http
from lxml import etree

from connectors.base import (
    AuthFailed,
    BadConfiguration,
    ConnectorError,
    Unavailable,
    brief,
)
from connectors.retry import RetryPolicy, http_date, retry_after_seconds

if TYPE_CHECKING:
    from connectors.caldav.poll import SyncPoller

log = logging.getLogger("connectors.caldav")  # the package's name: what logs are filtered on

_DAV = "{DAV:}"
_CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_CS = "{http://calendarserver.org/ns/}"
_MULTISTATUS = (207, 200)  # 207 per RFC 4918; a few servers say 200 for the same body
# Requests tried over the poller's kept connection first (connectors/caldav/poll.py): the
# session writes, whose answers are read by status, headers and body, not as a multistatus.
_KEPT_CONNECTION_METHODS = frozenset({"GET", "PUT", "DELETE"})


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


class _Transport:
    """The connection part of :class:`~connectors.caldav.adapter.CalDAVCalendar`: identity,
    requests and their errors, traffic counting."""

    desk_tz: ZoneInfo
    retry_policy: RetryPolicy
    transfer: TransferStats
    last_transfer: TransferStats
    _url: str
    _path: str
    _client: DAVClient
    _calendar: DAVCalendar
    _poller: SyncPoller
    _clock: Callable[[], datetime] | None

    @property
    def name(self) -> str:
        """The calendar URL without credentials."""
        return self._url

    def close(self) -> None:
        self._client.close()
        self._poller.close()

    def _count(self, response: Any, **_: Any) -> Any:
        """niquests response hook: count every HTTP exchange (auth retries included)."""
        body = getattr(getattr(response, "request", None), "body", None)
        content = getattr(response, "content", None)
        self._count_exchange(len(body or b""), len(content or b""))
        return response

    def _count_exchange(self, sent: int, received: int) -> None:
        """Count one exchange: body bytes sent and received (the poller's too)."""
        self.transfer.requests += 1
        self.transfer.bytes_sent += sent
        self.transfer.bytes_received += received

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

    def _fail(self, exc: BaseException, doing: str) -> NoReturn:
        """Raise the :mod:`connectors.base` error that ``exc`` means."""
        raise _translate(exc, doing, self.name, self._clock) from exc

    def _request(
        self, method: str, url: str, body: str = "", headers: dict[str, str] | None = None
    ) -> Any:
        """One HTTP request; transport failures and 401/403/429 become ConnectorErrors.

        GET, PUT and DELETE go over the poller's kept connection when it can take them,
        and through caldav when it cannot (see ``connectors/caldav/poll.py``)."""
        if method in _KEPT_CONNECTION_METHODS:
            answer = self._poller.send(method, urlsplit(url).path, body.encode(), headers or {})
            if answer is not None:
                return answer
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


def _preconditions(response: Any) -> list[str]:
    return dav_error.parse_preconditions(_body(response) or getattr(response, "raw", ""))


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
