"""Build calendar adapters from configuration: the only place that knows adapter classes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from connectors.base import BadConfiguration, SessionCalendar
from daemon.config import CalendarConfig


def open_calendar(
    config: CalendarConfig,
    desk_tz: ZoneInfo,
    *,
    timeout: float = 30.0,
    clock: Callable[[], datetime] | None = None,
) -> SessionCalendar:
    """An adapter for ``config``. Secrets are read here, at the moment they are needed."""
    if config.kind == "caldav":
        from connectors.caldav import CalDAVCalendar

        if not config.url:
            raise BadConfiguration("a CalDAV calendar needs a url", calendar=config.id)
        if not config.verify_tls:
            raise BadConfiguration(
                "verify_tls = false is not supported; give the server's CA as ca_file",
                calendar=config.id,
            )
        return CalDAVCalendar(
            config.url,
            config.username or "",
            config.password.reveal() if config.password else "",
            desk_tz,
            ca_file=config.ca_file,
            timeout=timeout,
            clock=clock,
        )
    if config.kind == "google":
        from connectors.google import GoogleCalendar

        if not config.calendar_id or config.credentials_file is None:
            raise BadConfiguration(
                "a Google calendar needs calendar_id and credentials_file", calendar=config.id
            )
        google: SessionCalendar = GoogleCalendar(
            config.calendar_id,
            credentials_file=config.credentials_file,
            desk_tz=desk_tz,
            subject=config.subject,
            api_endpoint=config.api_endpoint,
            timeout=timeout,
        )
        return google
    raise BadConfiguration(f"unknown calendar kind {config.kind!r}", calendar=config.id)
