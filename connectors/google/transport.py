"""HTTP for the Google adapter: one request with retries, and Google's errors in our terms.

Every request is retried on 429, 5xx and connection errors with jittered backoff
(:mod:`connectors.retry`), honouring ``Retry-After``; writes are safe to repeat because the
id and ``If-Match`` make a repeated write answer 409/412, handled in
:mod:`connectors.google.sessions`.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import google.auth.exceptions
import httplib2
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.errors import HttpError

from connectors.base import AuthFailed, BadConfiguration, Unavailable, brief
from connectors.retry import RetryPolicy, http_date, retry_after_seconds

_RATE_LIMIT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)


class _CountingHttp(httplib2.Http):  # type: ignore[misc]
    """httplib2 that counts requests, token refreshes included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = 0

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.sent += 1
        return super().request(*args, **kwargs)


class _Transport:
    """The connection part of :class:`~connectors.google.adapter.GoogleCalendar`: identity,
    request counting, one API request with retries, one event fetched as Google has it."""

    calendar_id: str
    desk_tz: ZoneInfo
    retry_policy: RetryPolicy
    _http: _CountingHttp
    _authed: AuthorizedHttp
    _service: Any
    _events: Any

    @property
    def name(self) -> str:
        """``google:`` and the calendar id (no credentials)."""
        return f"google:{self.calendar_id}"

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, token requests included."""
        return int(self._http.sent)

    def close(self) -> None:
        self._authed.close()

    def _call(
        self,
        make: Callable[[], Any],
        doing: str,
        *,
        expect: Iterable[int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Run one API request with retries: ``(200, body)``, or ``(status, None)`` for a
        status listed in ``expect``; any other failure raises its ConnectorError."""
        expected = frozenset(expect)

        def once() -> tuple[int, Any]:
            request = make()
            if headers:
                request.headers.update(headers)
            try:
                return 200, request.execute(num_retries=0)
            except HttpError as exc:
                status = int(exc.resp.status)
                if status in expected:
                    return status, None
                self._fail_status(exc, doing)
            except google.auth.exceptions.RefreshError as exc:
                if exc.retryable:
                    raise Unavailable(
                        f"{doing}: token refresh failed: {brief(exc)}", calendar=self.name
                    ) from exc
                raise AuthFailed(
                    f"{doing}: the token endpoint refused the credentials: {brief(exc)}",
                    calendar=self.name,
                ) from exc
            except (
                google.auth.exceptions.TransportError,
                httplib2.HttpLib2Error,
                http.client.HTTPException,
                OSError,
            ) as exc:
                raise Unavailable(f"{doing}: {brief(exc)}", calendar=self.name) from exc

        return self.retry_policy.run(once)

    def _fail_status(self, exc: HttpError, doing: str) -> NoReturn:
        status = int(exc.resp.status)
        reason, message = _error_detail(exc.content)
        text = f"{doing}: HTTP {status}" + (f" ({message})" if message else "")
        retry_after = retry_after_seconds(
            exc.resp.get("retry-after"), http_date(exc.resp.get("date"))
        )
        if status == 429 or status >= 500 or status in (408, 425):
            raise Unavailable(text, calendar=self.name, retry_after=retry_after)
        if status == 403 and reason in _RATE_LIMIT_REASONS:
            raise Unavailable(text, calendar=self.name, retry_after=retry_after)
        if status == 401:
            raise AuthFailed(f"{text}: the server refused the credentials", calendar=self.name)
        if status == 403:
            raise AuthFailed(f"{text}: permission denied", calendar=self.name)
        if status == 404:
            raise BadConfiguration(f"{text}: the calendar does not exist", calendar=self.name)
        raise BadConfiguration(f"{text}: unexpected answer", calendar=self.name)

    def _get_event(self, eid: str) -> dict[str, Any] | None:
        """The event as Google has it (deleted ones too, with status cancelled), or None."""
        status, found = self._call(
            lambda: self._events.get(calendarId=self.calendar_id, eventId=eid),
            "events.get",
            expect=(404, 410),
        )
        if status != 200 or not isinstance(found, dict):
            return None
        return found


def _error_detail(content: Any) -> tuple[str | None, str | None]:
    """(first reason, message) from Google's JSON error body, when there is one."""
    try:
        data = json.loads(content)
        error = data["error"]
        message = str(error.get("message", ""))[:200] or None
        errors = error.get("errors") or []
        reason = errors[0].get("reason") if errors and isinstance(errors[0], dict) else None
        return (str(reason) if reason else None), message
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, None
