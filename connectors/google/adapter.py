"""The Google Calendar adapter: one calendar id, through ``google-api-python-client`` (v3).

:class:`GoogleCalendar` is the connection (:mod:`~connectors.google.transport`), reading
(:mod:`~connectors.google.sync`) and session writes (:mod:`~connectors.google.sessions`)
combined in one class, each part in its own module.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build

from connectors.base import BadConfiguration
from connectors.google.auth import _load_credentials
from connectors.google.sessions import _Sessions
from connectors.google.sync import _Sync
from connectors.google.transport import _CountingHttp
from connectors.retry import RetryPolicy

__all__ = ["DEFAULT_SCOPES", "GoogleCalendar"]

DEFAULT_SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.freebusy",
)
DEFAULT_TIMEOUT = 30.0
DEFAULT_EXPAND_MARGIN = timedelta(days=7)
DEFAULT_PAGE_SIZE = 250
MAX_PAGE_SIZE = 2500  # events.list maxResults ceiling


class GoogleCalendar(_Sync, _Sessions):
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

    def __enter__(self) -> GoogleCalendar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
