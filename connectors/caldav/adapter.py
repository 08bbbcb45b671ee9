"""The CalDAV adapter: one calendar URL on any CalDAV server, through the ``caldav`` library.

:class:`CalDAVCalendar` is the connection (:mod:`~connectors.caldav.transport`), reading
(:mod:`~connectors.caldav.sync`) and session writes (:mod:`~connectors.caldav.sessions`)
combined in one class, each part in its own module.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient

from connectors.base import BadConfiguration
from connectors.caldav.poll import SyncPoller
from connectors.caldav.sessions import _Sessions
from connectors.caldav.sync import SyncMethod, _Sync
from connectors.caldav.transport import TransferStats, _redact
from connectors.retry import RetryPolicy

__all__ = ["CalDAVCalendar"]

DEFAULT_TIMEOUT = 30.0
DEFAULT_EXPAND_MARGIN = timedelta(days=7)
DEFAULT_MULTIGET_BATCH = 250


class CalDAVCalendar(_Sync, _Sessions):
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
        self._poller = SyncPoller(
            self._href_url(self._path),
            username,
            password,
            ca_file=ca_file,
            timeout=timeout,
            count=self._count_exchange,
        )

    def __enter__(self) -> CalDAVCalendar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
