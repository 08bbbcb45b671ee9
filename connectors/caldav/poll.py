"""The sync-collection REPORT that every incremental sync repeats, and the session writes,
over a kept stdlib connection.

An idle sync is this one request, sent for every calendar at every interval. Through caldav
and niquests it costs about 2 ms of Python with the GIL held (the library's request objects,
the session's machinery, its response wrapper); over :mod:`http.client` with one lxml parse,
about 0.4 ms. The daemon's web threads wait for the GIL meanwhile, so with 50 calendars
synced every 2 s that difference shows in the slot requests' tail latency.

:class:`SyncPoller` takes only a plain answer: a one-page 207 multistatus with a sync-token
whose members all say 200, 201 or 404 (see :meth:`SyncPoller._listing`). Anything else
(another status, such as a refused token, a 401 or a 5xx; a truncated or unreadable answer;
a connection that fails) returns ``None``, and the caller
sends the same REPORT through caldav, whose handling of errors, retries and paging is the one
that counts. After a few fallbacks in a row the poller stands aside for a while, so a server
it cannot talk to costs one extra request now and then, not one per sync. A proxy in the
environment turns it off: only niquests goes through proxies.

A booking's calendar write (a PUT, and the GET or DELETE around some of them) cost the
daemon more CPU through caldav and niquests than the booking itself: 2.6 ms a request
against 0.5 ms here. :meth:`SyncPoller.send` takes those too, with the same rule: only a
plain answer (2xx, 404, 412) is kept, and for anything else, a redirect, a refusal, a 5xx, or
no answer, the caller sends the request again through caldav. Sending a PUT or a DELETE
twice is safe because each carries a precondition (``If-None-Match: *`` or ``If-Match``):
one that landed the first time makes the second a 412, which the adapter already reads as
"written meanwhile".
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from connectors.caldav.transport import _DAV, _norm, _status_code, _text, log

FALLBACKS_BEFORE_PAUSE = 3
"""Fallbacks in a row after which the poller stands aside."""
SYNCS_PAUSED = 50
"""Requests (syncs, session writes) the poller leaves to caldav alone before trying again."""
KEPT_IDLE = 20.0
"""Seconds a connection may sit unused and still be reused. Servers close theirs sooner or
later, and a closed one is seen at once; one a firewall dropped without a word would hold
the sync for the whole timeout, so at the default 60 s interval each sync opens its own."""

_T = TypeVar("_T")
# Entities stay unresolved and the network off; a long listing is ordinary calendar data.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
_STALE = (http.client.RemoteDisconnected, ConnectionError)
_PLAIN = (200, 201, 404)  # the statuses of a listing the poller reads itself
_PLAIN_ANSWERS = frozenset({200, 201, 204, 404, 412})  # what send() hands back as it is


class Answer:
    """An answer :meth:`SyncPoller.send` received, read as the adapter reads caldav's:
    ``status``, ``headers`` (``get`` by any case), the body on ``_raw``."""

    __slots__ = ("_raw", "headers", "status")

    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self._raw = body


@dataclass(frozen=True)
class Listing:
    """What a sync-collection REPORT says changed since the token it was sent."""

    token: str
    changed: dict[str, str | None]  # href → listed ETag (None when the server gave none)
    deleted: list[str]


class SyncPoller:
    """Sends the sync-collection REPORT for one calendar; see the module docs.

    ``url`` is the calendar's URL, its path percent-encoded, no credentials; ``count`` is
    told the body bytes sent and received for each exchange, so the adapter's traffic
    figures include these requests.
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        ca_file: str | Path | None,
        timeout: float,
        count: Callable[[int, int], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)  # an IPv6 host has colons
        self._url = url
        self._target = parts.path
        self._collection = _norm(url).rstrip("/")
        self._ca_file = str(ca_file) if ca_file is not None else None
        self._timeout = timeout
        self._count = count
        self._auth: dict[str, str] = {}
        if username or password:
            pair = f"{username}:{password}".encode()
            self._auth["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self._headers = {"Depth": "1", "Content-Type": "text/xml", **self._auth}
        self._connection: http.client.HTTPConnection | None = None
        self._context: ssl.SSLContext | None = None
        self._monotonic = monotonic
        self._used_at = 0.0
        self._lock = threading.Lock()
        self._fallbacks = 0
        self._paused = 0
        self.enabled = not _proxied(parts.scheme, self._host)

    def close(self) -> None:
        with self._lock:
            self.enabled = False
            self._drop()

    def report(self, token: str) -> Listing | None:
        """Changes since ``token``, or None when caldav must send this REPORT instead.

        Never raises for what the network or the server does: the caller's caldav path
        is where those become the connector's errors.
        """
        return self._attempt(lambda: self._report(token))

    def send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer | None:
        """``method`` on ``path`` (percent-encoded, on the calendar's server), or None when
        caldav must send it instead (see the module docs): the poller is off, busy with
        another thread's request, standing aside, or the answer is not a plain one.

        Never raises for what the network or the server does, as :meth:`report`.
        """
        return self._attempt(lambda: self._plain(method, path, body, headers))

    def _attempt(self, call: Callable[[], _T | None]) -> _T | None:
        """``call`` on the kept connection, counting the fallbacks it ends in."""
        if not self.enabled or not self._lock.acquire(blocking=False):
            return None
        try:
            if self._paused:
                self._paused -= 1
                return None
            found = call()
            if found is None:
                self._fallbacks += 1
                if self._fallbacks >= FALLBACKS_BEFORE_PAUSE:
                    log.debug("%s: requests left to caldav for a while", self._collection)
                    self._fallbacks, self._paused = 0, SYNCS_PAUSED
            else:
                self._fallbacks = 0
            return found
        finally:
            self._lock.release()

    def _plain(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer | None:
        answer = self._exchange(method, path, body, {**headers, **self._auth})
        if answer is None or answer[0] not in _PLAIN_ANSWERS:
            return None
        return Answer(*answer)

    def _report(self, token: str) -> Listing | None:
        body = (
            '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
            f"<D:sync-token>{escape(token)}</D:sync-token><D:sync-level>1</D:sync-level>"
            "<D:prop><D:getetag/></D:prop></D:sync-collection>"
        ).encode()
        answer = self._exchange("REPORT", self._target, body, self._headers)
        if answer is None or answer[0] != 207:
            return None
        try:
            tree = etree.fromstring(answer[2], _PARSER)
        except (etree.XMLSyntaxError, ValueError):
            return None  # an empty body is a ValueError
        return self._listing(tree)

    def _listing(self, tree: etree._Element) -> Listing | None:
        """The listing of a plain one-page answer; None for anything caldav should judge.

        Plain means: a multistatus with a sync-token whose members and property groups all
        say 200, 201 or 404. A 507 (truncated, RFC 6578 §3.6), any other status, and an
        href spelled with an encoded percent sign (which some servers encode twice) are
        left to caldav, which pages, raises or decodes as it knows how.
        """
        if tree.tag != f"{_DAV}multistatus":
            return None
        element = tree.find(f"{_DAV}sync-token")
        token = _text(element) if element is not None else ""
        if not token:
            return None
        etags: dict[str, str | None] = {}
        gone: list[str] = []
        for response in tree.findall(f"{_DAV}response"):
            href = response.findtext(f"{_DAV}href") or ""
            if not href or "%25" in href:
                return None
            status = _status_code(response.findtext(f"{_DAV}status"))
            if status not in _PLAIN:
                return None
            etag: str | None = None
            found = False
            for propstat in response.findall(f"{_DAV}propstat"):
                code = _status_code(propstat.findtext(f"{_DAV}status"))
                if code not in _PLAIN:
                    return None
                getetag = propstat.find(f"{_DAV}prop/{_DAV}getetag")
                if code != 404 and getetag is not None:
                    etag, found = _text(getetag) or None, True
            path = _norm(urljoin(self._url, href))  # a relative href is the collection's
            if path.rstrip("/") == self._collection:
                continue
            if found:
                etags[path] = etag  # an ETag in any entry: changed (Cyrus lists both)
            elif status == 404:
                gone.append(path)
            else:
                etags.setdefault(path, None)
        deleted = list(dict.fromkeys(p for p in gone if p not in etags))
        return Listing(token, etags, deleted)

    def _exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes] | None:
        """(status, headers, body) of one request; a kept connection the server closed is
        reopened once (it closed while idle: the request never reached it)."""
        if self._connection is not None and self._monotonic() - self._used_at > KEPT_IDLE:
            self._drop()
        for _ in range(2):
            fresh = self._connection is None
            try:
                connection = self._connection or self._connect()
                self._connection = connection
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                content = response.read()
            except _STALE:
                self._drop()
                if fresh:
                    return None
                continue
            except (OSError, http.client.HTTPException, ValueError):
                # A timeout, TLS or a CA file it cannot load (ssl.SSLError is an OSError), a
                # refused connection, a header http.client will not send: caldav will say which.
                self._drop()
                return None
            if response.will_close:
                self._drop()
            self._used_at = self._monotonic()
            self._count(len(body), len(content))
            return response.status, response.headers, content
        return None

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            if self._context is None:  # loading the CAs costs more than the request itself
                self._context = ssl.create_default_context(cafile=self._ca_file)
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _proxied(scheme: str, host: str) -> bool:
    """Would the environment send this calendar's requests through a proxy?"""
    proxies = urllib.request.getproxies()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)
