"""The configuration as the rest of the daemon sees it: typed, frozen, validated.

A :class:`Config` is only ever built by :mod:`daemon.config.load` from a file that passed
every check, so its users never re-check a value. Durations are ``timedelta``, paths are
absolute, secrets are :class:`~daemon.config.secrets.Secret` and "0 means none" keys are
``None`` when off.

A plain key is declared once, as the typed field it fills: ``grace: timedelta =
setting(Duration(), "10m", "Tolerated delay …")`` says what mypy should know (the field's
type) and what the schema should know (kind, default, help, example, ``then``) in one
place, and :func:`settings_of` turns a section's fields, in declaration order, into the
rows of its schema table (:mod:`daemon.config.schema`). Declaration order is key order:
it is the order of the example file and the key reference. A field's Python default is
never used (every value comes from the file, defaults filled by the schema), so a
``setting()`` field has none; except a key that only one ``kind`` of its table has (a
calendar's ``url`` is CalDAV's, ``calendar_id`` Google's): ``setting(..., variant=
"caldav")`` puts it among that kind's keys (:func:`variants_of`), and in a table of the
other kind the field keeps its Python default, ``otherwise``.

What is not a plain key keeps its own handling: a field computed from several keys or
other sections is passed to :func:`from_table` by the loader and carries no
``setting()``; nested tables and arrays of tables (a technician's ``calendar`` and
``busy``) are written in the schema and built by the loader. :func:`from_table` fills
each section from its schema table, whichever way the table was written: a key fills the
field of its name (or of ``key=``'s field). A key without a field, or a field without a
key or a computed value, stops the first load with a ``TypeError`` naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from daemon.config.holidays import Holidays, HolidaySource
from daemon.config.kinds import (
    EMAIL,
    OPTIONAL,
    REQUIRED,
    Boolean,
    Choice,
    ClosedDates,
    Duration,
    FilePath,
    Integer,
    Kind,
    Listen,
    ListOf,
    Setting,
    Table,
    Text,
    TimeZoneKind,
    Url,
    identifier,
    zero_is_none,
)
from daemon.config.secrets import Secret, SecretFile
from daemon.i18n import LANGUAGES
from rules.model import BOOKING_FIELDS, DEFAULT_REQUIRED_FIELDS, Policy, Status

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from daemon.config.whatsapp import WhatsAppConfig

Section = TypeVar("Section", bound="DataclassInstance")

# What a webhook can ask for: each status a session reaches, and "moved" (the technician
# gave it another valid time; the status stays "booked").
SESSION_EVENTS = (*(str(status) for status in Status), "moved")

# How to fill a file that must hold a random value.
_RANDOM_FILL_HINT = (
    "create it with a random value: head -c 32 /dev/urandom | base64 > {path}; chmod 600 {path}"
)

_SETTING = "daemon.config.setting"  # the metadata entry that makes a field a key
_VARIANT = "daemon.config.variant"  # the ``kind`` that brings the key, if only one does


def setting(
    kind: Kind,
    default: object = OPTIONAL,
    help: str = "",
    example: object = None,
    *,
    key: str = "",
    then: Callable[[Any], Any] | None = None,
    variant: str = "",
    otherwise: object = None,
) -> Any:
    """A dataclass field that is also a key of the file, with :class:`Setting`'s arguments.

    The key is named after the field unless ``key`` names it (``admin_token_file`` fills
    ``admin_token``). With ``variant``, the key exists only when the table's ``kind`` is
    that value (a CalDAV calendar's ``url``); in a table of another kind the field holds
    ``otherwise``, its one Python default. Typed ``Any`` so that ``grace: timedelta =
    setting(...)`` keeps the field's own type for mypy.
    """
    metadata = {_SETTING: Setting(key, kind, default, help, example, then=then)}
    if not variant:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=otherwise, metadata={**metadata, _VARIANT: variant})


def _rows(cls: type[DataclassInstance]) -> Iterator[tuple[str, Setting]]:
    """Each :func:`setting` field's variant ("" for every kind) and key, in order."""
    for field in dataclasses.fields(cls):
        row: Setting | None = field.metadata.get(_SETTING)
        if row is not None:
            name = row.name or field.name
            attribute = field.name if name != field.name else ""
            yield (
                field.metadata.get(_VARIANT, ""),
                dataclasses.replace(row, name=name, attribute=attribute),
            )


def settings_of(cls: type[DataclassInstance]) -> list[Setting]:
    """The keys declared with :func:`setting` on ``cls``'s fields, in declaration order.

    Only the keys of every kind: :func:`variants_of` gives the others.
    """
    return [row for variant, row in _rows(cls) if not variant]


def variants_of(cls: type[DataclassInstance]) -> dict[str, list[Setting]]:
    """The keys each ``kind`` brings, for :class:`Table`'s ``variants``, in declaration
    order (the kinds in the order their first key is declared)."""
    variants: dict[str, list[Setting]] = {}
    for variant, row in _rows(cls):
        if variant:
            variants.setdefault(variant, []).append(row)
    return variants


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


# fmt: off
@dataclass(frozen=True)
class DeskConfig:
    rules_texts: Mapping[str, str]  # every language the rules exist in
    rules_version: str  # also in Policy.rules_version
    name: str = setting(
        Text("the desk's name"), "Suporte Técnico",
        "The desk's name, shown on the booking page, in e-mails and in the rules.")
    timezone: ZoneInfo = setting(
        TimeZoneKind(), "America/Sao_Paulo",
        "The desk's time zone: hours, dates and the times clients see are in it.")
    language: str = setting(
        Choice(LANGUAGES), "pt-BR",
        "Language of pages, e-mails and messages: "
        + ", ".join(f'"{tag}"' for tag in LANGUAGES) + ".")
    holidays: HolidaySource | None = setting(
        Holidays(), {"country": "BR"},
        "Public holidays are closed days. country is an ISO code; add subdivision for state "
        'holidays (e.g. { country = "BR", subdivision = "SP" }) and categories to widen the '
        'set (e.g. ["public", "optional"]); false opens on holidays.')
    closed_dates: Mapping[date, str] = setting(
        ClosedDates(), [],
        'The desk\'s own closed days, e.g. ["2026-12-24", "2026-12-31"], or with names: '
        '{ "2026-12-24" = "Véspera de Natal" }.')
    phone: str | None = setting(
        Text("a phone number"),
        help="The desk's phone, which clients call when ready (rule 2).",
        example="+55 11 4000-0000")
    whatsapp: str | None = setting(
        Text("a WhatsApp number"),
        help="The desk's WhatsApp, which clients call when ready (rule 2).",
        example="+55 11 94000-0000")
    email: str | None = setting(
        EMAIL, help="The desk's e-mail address, shown to clients.",
        example="suporte@example.com")
    rules_text: str = setting(  # in the desk's language; what clients accept
        Text("the rules as text", max_length=20000),
        help="The rules clients read and accept before booking. Default: the desk's policy "
        "document, in pt-BR and English, with this file's hours, tolerance, tools and "
        "session types filled in.",
        example="1. O acesso remoto se dará através do AnyDesk. ...")
    # rules_file, read into rules_text, is written in the schema: it fills no field

    def rules_for(self, language: str) -> str:
        """The rules in ``language`` when they exist in it, else in the desk's language."""
        return self.rules_texts.get(language, self.rules_text)
# fmt: on


@dataclass(frozen=True)
class BookingConfig:
    slot_step: timedelta = setting(
        Duration(positive=True),
        "30m",
        "Spacing of the start times offered, counted from each range's start.",
    )
    buffer: timedelta = setting(
        Duration(),
        "0m",
        "Free time kept around each session: between it and the technician's other "
        "sessions and calendar events, before and after.",
    )
    horizon: timedelta = setting(Duration(positive=True), "30d", "How far ahead clients can book.")
    grace: timedelta = setting(
        Duration(),
        "10m",
        "Tolerated delay (rule 5): with no check-in this long after the start, the session "
        "is marked rescheduled and the client is asked to book again.",
    )
    checkin_early: timedelta = setting(
        Duration(), "30m", "How long before the start a session can be checked in."
    )
    cancel_cutoff: timedelta = setting(
        Duration(),
        "2h",
        "Clients can cancel or rebook through their link until this long before the start.",
    )
    reminder: timedelta | None = setting(  # None: no reminder
        Duration(),
        "1h",
        'Remind the client this long before the start; "0m" sends no reminder.',
        then=zero_is_none,
    )
    remote_tools: tuple[str, ...] = setting(
        ListOf(
            Text("a tool name"),
            expected='a list of tool names like ["AnyDesk"]',
            min_items=1,
            unique=lambda name: str(name).lower(),
        ),
        ["AnyDesk"],
        "Remote-access tools clients may choose (rule 1), the first by default. Access IDs "
        "are checked for AnyDesk, TeamViewer, RustDesk and Chrome Remote Desktop; other "
        "tools accept any ID.",
    )
    required_fields: frozenset[str] = setting(
        ListOf(
            Choice(BOOKING_FIELDS), expected="a list of booking fields", unique=lambda name: name
        ),
        [f for f in BOOKING_FIELDS if f in DEFAULT_REQUIRED_FIELDS],
        "Booking fields clients must fill in, among: "
        + ", ".join(BOOKING_FIELDS)
        + ". The responsible person and phone are rule 7.",
        then=frozenset,
    )
    # bookings per client address per rate_window; None: no limit
    rate_limit: int | None = setting(
        Integer(0, 100000),
        10,
        "Bookings accepted from one client address per rate_window; 0 means no limit. "
        "A booking in progress holds its place until it is refused, so a burst of "
        "simultaneous attempts from one address cannot slip past the limit.",
        then=zero_is_none,
    )
    # refused bookings per address per rate_window; None: no limit
    refusal_limit: int | None = setting(
        Integer(0, 100000),
        30,
        "Refused bookings (a rule broken, a slot taken meanwhile) from one client address "
        "per rate_window; past it the address is refused with 429 too. Refusals are "
        "counted apart so that correcting a form costs no booking, and limited because "
        "each one is kept in the audit log. 0 means no limit.",
        then=zero_is_none,
    )
    rate_window: timedelta = setting(
        Duration(positive=True),
        "1h",
        "The period rate_limit and refusal_limit count over, per client address (an IPv6 "
        "address counts as its /64, the block one subscriber gets).",
    )


# fmt: on


# fmt: off
@dataclass(frozen=True)
class CalendarConfig:
    """One calendar of a technician: where it is and how to log in.

    ``id`` is stable while the technician, role and address stay the same (sync state is
    kept under it), e.g. ``ana:sessions:1f0c2a9b``. ``key`` says where it is in the file.
    The keys of the other kind are ``None`` (``verify_tls``: ``True``).
    """

    id: str
    technician: str
    role: Literal["sessions", "busy"]
    key: str
    kind: Literal["caldav", "google"] = setting(
        Choice(("caldav", "google")), REQUIRED,
        'Where the calendar lives: "caldav" (any CalDAV server) or "google".')
    url: str | None = setting(
        Url(), REQUIRED, "The calendar collection's URL.", "http://127.0.0.1:5232/ana/work/",
        variant="caldav")
    username: str | None = setting(
        Text("a user name"), help="User name, if the server wants one.", variant="caldav")
    password: Secret | None = setting(
        SecretFile(example="secrets/ana.caldav"),
        help="File holding the password (with username).", example="secrets/ana.caldav",
        key="password_file", variant="caldav")
    ca_file: Path | None = setting(
        FilePath(must_exist=True),
        help="A CA bundle (PEM) to trust for this server, e.g. a private CA.",
        example="certs/ca.pem", variant="caldav")
    verify_tls: bool = setting(
        Boolean(), True, "Check the server's TLS certificate. Turn off only for a test server.",
        variant="caldav", otherwise=True)
    calendar_id: str | None = setting(
        Text('a Google calendar id like "ana@empresa.com.br"'), REQUIRED,
        'The calendar\'s id ("primary" or an address).', "ana@empresa.com.br",
        variant="google")
    credentials: Secret | None = setting(
        SecretFile(example="secrets/google.json", json_key=True), REQUIRED,
        "A service-account key or an OAuth authorized-user token (JSON).",
        "secrets/google.json", key="credentials_file", variant="google")
    subject: str | None = setting(
        EMAIL, help="With a service account: the user to act as (domain-wide delegation).",
        example="ana@empresa.com.br", variant="google")
    api_endpoint: str | None = setting(
        Url('an http(s) URL like "https://www.googleapis.com/calendar/v3/"'),
        help="Another Calendar v3 endpoint: a proxy or a local test server.",
        example="https://www.googleapis.com/calendar/v3/", variant="google")

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
# fmt: on


@dataclass(frozen=True)
class TechnicianConfig:
    # calendar and busy are nested tables: the schema writes their keys, the loader builds them
    calendar: CalendarConfig
    id: str = setting(identifier("ana"), REQUIRED, "Stable identifier, stored with each session.")
    name: str = setting(Text("a name"), REQUIRED, "Shown to clients.")
    email: str | None = setting(
        EMAIL, help="Where the technician's notifications go.", example="ana@example.com"
    )
    busy: tuple[CalendarConfig, ...] = ()

    @property
    def calendars(self) -> tuple[CalendarConfig, ...]:
        """The session calendar first, then the busy ones."""
        return (self.calendar, *self.busy)


# fmt: off
@dataclass(frozen=True)
class ServerConfig:
    host: str  # from listen
    port: int  # from listen
    listen: str = setting(  # "host:port", IPv6 hosts in brackets
        Listen(), "127.0.0.1:8080",
        "Address and port the web server binds. Behind a reverse proxy keep it on "
        "127.0.0.1.")
    public_url: str = setting(  # without a trailing slash
        Url('an http(s) URL like "https://agenda.example.com"'), "http://127.0.0.1:8080",
        "The address clients and technicians use, for links in e-mails and calendar "
        "events.", then=lambda url: url.rstrip("/"))
    admin_token: Secret = setting(
        SecretFile(example="secrets/admin-token", min_length=16, create=_RANDOM_FILL_HINT),
        "secrets/admin-token",
        "File holding the bearer token of the admin API (at least 16 characters).",
        key="admin_token_file")
    signing_key: Secret = setting(
        SecretFile(example="secrets/signing-key", min_length=16, create=_RANDOM_FILL_HINT),
        "secrets/signing-key",
        "File holding the key that signs check-in and manage links; changing it voids the "
        "links already sent.", key="signing_key_file")
    behind_proxy: bool = setting(
        Boolean(), False, "Trust X-Forwarded-For and X-Forwarded-Proto from a reverse proxy.")
# fmt: on


# fmt: off
@dataclass(frozen=True)
class StoreConfig:
    kind: Literal["sqlite", "postgresql"] = setting(
        Choice(("sqlite", "postgresql")), "sqlite",
        'Which database: "sqlite" (one file, one daemon instance) or "postgresql" (several '
        "instances on one database, see deploy/high-availability.md).")
    path: Path = setting(
        FilePath(must_exist=False), "expediente.db",
        "The SQLite database: sessions, busy-time cache, outbox. Back it up. Under "
        "systemd it belongs in the StateDirectory, the one writable place.",
        "/var/lib/expediente/expediente.db")
    audit_retention: timedelta | None = setting(  # None: the audit is kept forever
        Duration(), "365d",
        "How long audit entries (bookings refused and accepted, status changes, moves, "
        "failed deliveries) are kept; older ones are deleted once a day. Sessions "
        "themselves, with their rules acceptance, are kept regardless. \"0d\" keeps "
        "the audit forever.", then=zero_is_none)
    dsn: Secret | None = setting(
        SecretFile(example="secrets/postgres-dsn"), REQUIRED,
        "File holding the libpq connection string of the PostgreSQL database, e.g. "
        '"host=/run/postgresql dbname=expediente user=expediente".',
        "secrets/postgres-dsn", key="dsn_file", variant="postgresql")
# fmt: on


# fmt: off
@dataclass(frozen=True)
class SyncConfig:
    interval: timedelta = setting(
        Duration(positive=True), "60s",
        "How often each calendar is read for busy time and changes.")
    stale_after: timedelta = setting(
        Duration(positive=True), "5m",
        "/healthz answers 503 when a calendar's last good sync is older.")
    timeout: timedelta = setting(
        Duration(positive=True), "30s", "Time limit of one request to a calendar server.")
    max_backoff: timedelta = setting(
        Duration(positive=True), "15m", "Longest wait between retries after a calendar fails.")
# fmt: on


# fmt: off
@dataclass(frozen=True)
class NotificationsConfig:
    client_email: bool = setting(
        Boolean(), True,
        "E-mail clients their confirmation (with an .ics invitation), reminder and changes. "
        "Needs [smtp].")
    technician_email: bool = setting(
        Boolean(), False, "Also e-mail the technician (their email key) about their sessions.")
    admin_email: str | None = setting(
        EMAIL,
        help="Where problems that need a person go (refused credentials, calendar writes "
        "that keep failing).",
        example="suporte@example.com")
# fmt: on


# fmt: off
@dataclass(frozen=True)
class SmtpConfig:
    host: str = setting(Text("a host name"), REQUIRED, "The mail server.", "smtp.example.com")
    port: int = setting(Integer(1, 65535), 587, "Its port.")
    security: Literal["starttls", "tls", "none"] = setting(
        Choice(("starttls", "tls", "none")), "starttls",
        '"starttls" (port 587), "tls" (port 465), or "none" for a local relay.')
    username: str | None = setting(Text("a user name"), help="Login.", example="agenda")
    password: Secret | None = setting(
        SecretFile(example="secrets/smtp-password"),
        help="File holding the login's password.", example="secrets/smtp-password",
        key="password_file")
    from_address: str = setting(EMAIL, REQUIRED, "Sender address.", "suporte@example.com")
    from_name: str = setting(  # the loader fills in the desk's name
        Text("a name"), help="Sender name; default: the desk's name.",
        example="Suporte Técnico")
    timeout: timedelta = setting(
        Duration(positive=True), "30s", "Time limit of one delivery.")
# fmt: on


# fmt: off
@dataclass(frozen=True)
class WebhookConfig:
    url: str = setting(
        Url('an http(s) URL like "https://hooks.example.com/expediente"'), REQUIRED,
        "Receives a JSON POST for each session change.",
        "https://hooks.example.com/expediente")
    events: frozenset[str] = setting(
        ListOf(Choice(SESSION_EVENTS), expected="a list of session statuses or \"moved\"",
               min_items=1, unique=lambda name: name),
        list(SESSION_EVENTS),
        'Session statuses to send, and "moved" (the technician moved the session to '
        "another valid time).", then=frozenset)
    secret: Secret | None = setting(
        SecretFile(example="secrets/webhook-key", min_length=16),
        help="File holding the key that signs each request (HMAC-SHA256 of "
        '"<timestamp>.<body>"). The key is the file\'s text without surrounding whitespace '
        "(the newline echo or base64 leave is not part of it); deploy/README.md shows how "
        "a receiver checks it.",
        example="secrets/webhook-key", key="secret_file")
    timeout: timedelta = setting(
        Duration(positive=True), "10s", "Time limit of one delivery.")
# fmt: on


# fmt: off
@dataclass(frozen=True)
class ConsoleConfig:
    idle_timeout: timedelta = setting(
        Duration(positive=True), "30m",
        "A staff login to the desk console ends after this long without a request (an open "
        "console asks every poll_interval, so it stays logged in; a closed one does not).")
    login_lifetime: timedelta = setting(
        Duration(positive=True), "12h",
        "A staff login ends this long after it began, however active: log in again.")
    failed_logins: int = setting(
        Integer(1, 1000), 5,
        "Failed logins against one staff name within failure_window that lock the name "
        "until the oldest of them leaves the window.")
    failed_logins_per_address: int = setting(
        Integer(1, 100000), 20,
        "Failed logins from one client address (any names) within failure_window that lock "
        "the address the same way.")
    failure_window: timedelta = setting(
        Duration(positive=True), "15m", "The window the failed logins are counted in.")
    poll_interval: timedelta = setting(
        Duration(positive=True), "15s",
        "How often an open console asks whether the day's list changed (answered 304, no "
        "body, when not).")
# fmt: on


# fmt: off
@dataclass(frozen=True)
class LogConfig:
    level: str = setting(
        Choice(("debug", "info", "warning", "error")), "info",
        "Least important messages logged (to stderr; journald under systemd).")
# fmt: on


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
    console: ConsoleConfig
    log: LogConfig
    whatsapp: WhatsAppConfig | None = None  # daemon/config/whatsapp.py

    @property
    def calendars(self) -> tuple[CalendarConfig, ...]:
        return tuple(c for tech in self.technicians for c in tech.calendars)

    def technician(self, technician_id: str) -> TechnicianConfig | None:
        return next((t for t in self.technicians if t.id == technician_id), None)

    def calendar(self, calendar_id: str) -> CalendarConfig | None:
        return next((c for c in self.calendars if c.id == calendar_id), None)
