"""The configuration as the rest of the daemon sees it: typed, frozen, validated.

A :class:`Config` is only ever built by :mod:`daemon.config.load` from a file that passed
every check, so its users never re-check a value. Durations are ``timedelta``, paths are
absolute, secrets are :class:`~daemon.config.secrets.Secret` and "0 means none" keys are
``None`` when off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from daemon.config.holidays import HolidaySource
from daemon.config.secrets import Secret
from rules.model import Policy


@dataclass(frozen=True)
class DeskConfig:
    name: str
    language: str
    timezone: ZoneInfo
    holidays: HolidaySource | None
    closed_dates: Mapping[date, str]
    rules_text: str  # in the desk's language; what clients accept
    rules_texts: Mapping[str, str]  # every language the rules exist in
    rules_version: str  # also in Policy.rules_version
    phone: str | None = None
    whatsapp: str | None = None
    email: str | None = None

    def rules_for(self, language: str) -> str:
        """The rules in ``language`` when they exist in it, else in the desk's language."""
        return self.rules_texts.get(language, self.rules_text)


@dataclass(frozen=True)
class BookingConfig:
    slot_step: timedelta
    buffer: timedelta
    horizon: timedelta
    grace: timedelta
    checkin_early: timedelta
    cancel_cutoff: timedelta
    reminder: timedelta | None  # None: no reminder
    remote_tools: tuple[str, ...]
    required_fields: frozenset[str]
    rate_limit: int | None  # bookings per client address per rate_window; None: no limit
    rate_window: timedelta
    refusal_limit: int | None  # refused bookings per address per rate_window; None: no limit


@dataclass(frozen=True)
class CalendarConfig:
    """One calendar of a technician: where it is and how to log in.

    ``id`` is stable while the technician, role and address stay the same (sync state is
    kept under it), e.g. ``ana:sessions:1f0c2a9b``. ``key`` says where it is in the file.
    """

    id: str
    technician: str
    role: Literal["sessions", "busy"]
    kind: Literal["caldav", "google"]
    key: str
    url: str | None = None
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    verify_tls: bool = True
    calendar_id: str | None = None
    credentials: Secret | None = None
    subject: str | None = None
    api_endpoint: str | None = None

    @property
    def address(self) -> str:
        return self.url or self.calendar_id or ""

    @property
    def password_file(self) -> Path | None:
        return self.password.path if self.password else None

    @property
    def credentials_file(self) -> Path | None:
        return self.credentials.path if self.credentials else None

    def __str__(self) -> str:
        return f"{self.kind} {self.address}"


@dataclass(frozen=True)
class TechnicianConfig:
    id: str
    name: str
    email: str | None
    calendar: CalendarConfig
    busy: tuple[CalendarConfig, ...] = ()

    @property
    def calendars(self) -> tuple[CalendarConfig, ...]:
        """The session calendar first, then the busy ones."""
        return (self.calendar, *self.busy)


@dataclass(frozen=True)
class ServerConfig:
    listen: str
    host: str
    port: int
    public_url: str  # without a trailing slash
    admin_token: Secret
    signing_key: Secret
    behind_proxy: bool = False


@dataclass(frozen=True)
class StoreConfig:
    path: Path
    audit_retention: timedelta | None  # None: the audit is kept forever


@dataclass(frozen=True)
class SyncConfig:
    interval: timedelta
    stale_after: timedelta
    timeout: timedelta
    max_backoff: timedelta


@dataclass(frozen=True)
class NotificationsConfig:
    client_email: bool
    technician_email: bool
    admin_email: str | None


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    username: str | None
    password: Secret | None
    from_address: str
    from_name: str
    timeout: timedelta


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    events: frozenset[str]
    secret: Secret | None
    timeout: timedelta


@dataclass(frozen=True)
class LogConfig:
    level: str


@dataclass(frozen=True)
class Config:
    """A validated configuration: the rules' :class:`Policy` and the daemon's settings."""

    path: Path
    policy: Policy
    desk: DeskConfig
    booking: BookingConfig
    technicians: tuple[TechnicianConfig, ...]
    server: ServerConfig
    store: StoreConfig
    sync: SyncConfig
    notifications: NotificationsConfig
    smtp: SmtpConfig | None
    webhooks: tuple[WebhookConfig, ...]
    log: LogConfig

    @property
    def calendars(self) -> tuple[CalendarConfig, ...]:
        return tuple(c for tech in self.technicians for c in tech.calendars)

    def technician(self, technician_id: str) -> TechnicianConfig | None:
        return next((t for t in self.technicians if t.id == technician_id), None)

    def calendar(self, calendar_id: str) -> CalendarConfig | None:
        return next((c for c in self.calendars if c.id == calendar_id), None)
