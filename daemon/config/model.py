"""The configuration as the rest of the daemon sees it: typed, frozen, validated.

A :class:`Config` is only ever built by :mod:`daemon.config.load` from a file that passed
every check, so its users never re-check a value. Durations are ``timedelta``, paths are
absolute, secrets are :class:`~daemon.config.secrets.Secret` and "0 means none" keys are
``None`` when off.

Each section's class is filled from its schema table by :func:`from_table`: a key fills
the field of its name, so a plain new key costs one ``Setting`` row in the schema and one
typed field here. What the schema says about the key (type, default, help) is written
there only; what mypy should know (the field's type) here only; the mapping between them is
not written at all. A key without a field, or a field without a key or a computed value,
stops the first load with a ``TypeError`` naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from daemon.config.holidays import HolidaySource
from daemon.config.kinds import Table
from daemon.config.secrets import Secret
from rules.model import Policy

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Section = TypeVar("Section", bound="DataclassInstance")


def from_table(
    cls: type[Section],
    table: Table,
    values: Mapping[str, Any],
    *,
    consumed: Iterable[str] = (),
    **computed: Any,
) -> Section:
    """The typed section ``cls`` from ``values``, a table converted by its schema ``table``.

    Each field takes the value of the key that fills it, through the key's ``then``;
    ``computed`` gives the fields that come from elsewhere (several keys, other sections)
    and wins over a key of the same name. A field whose key is absent (a key of another
    calendar kind) keeps its default. ``consumed`` names the keys used only to compute
    other values. Raises TypeError when the schema and ``cls`` disagree: that is a bug.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    keys = {s.field_name: s for s in table.every_setting() if s.name not in consumed}
    strays = sorted(name for name in keys if name not in fields and name not in computed)
    missing = sorted(fields - keys.keys() - computed.keys())
    if strays or missing:
        raise TypeError(
            f"{cls.__name__} and its schema table disagree: keys without a field: "
            f"{', '.join(strays) or 'none'}; fields without a key: {', '.join(missing) or 'none'}"
        )
    arguments = dict(computed)
    for name, setting in keys.items():
        if name not in computed and setting.name in values:
            arguments[name] = setting.typed(values[setting.name])
    return cls(**arguments)


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
