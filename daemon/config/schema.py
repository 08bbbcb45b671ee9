"""The schema: every key of the file, its type, default and help, as one declarative table.

Each section is a :class:`~daemon.config.kinds.Table` of :class:`~daemon.config.kinds.Setting`
rows that read like the reference they generate. The same tables validate a file
(:mod:`daemon.config.load`), write the example file and the key reference
(:mod:`daemon.config.generate`), and name the fields of the typed sections in
:mod:`daemon.config.model`: a key fills the field of its name (or of ``attribute``),
through ``then`` when the daemon holds the value in another form (``0`` → ``None``).

A section of plain keys is not written here but derived, ``Table(settings_of(...))``,
from its dataclass, where each key is declared once as the field it fills, and so are a
calendar's keys of each kind (``variants_of``); what stays here is what a field cannot
say: nested tables, arrays of tables, keys that are read but fill no field, and the
document's order of sections.
"""

from __future__ import annotations

from daemon.config.kinds import (
    OPTIONAL,
    REQUIRED,
    ArrayOfTables,
    DateKind,
    Duration,
    FilePath,
    Ranges,
    Setting,
    Table,
    Text,
    identifier,
)
from daemon.config.model import (
    BookingConfig,
    CalendarConfig,
    ConsoleConfig,
    DeskConfig,
    LogConfig,
    NotificationsConfig,
    ServerConfig,
    SmtpConfig,
    StoreConfig,
    SyncConfig,
    TechnicianConfig,
    WebhookConfig,
    settings_of,
    variants_of,
)
from daemon.config.whatsapp import WhatsAppConfig, WhatsAppTemplates
from daemon.i18n import DEFAULT_LANGUAGE, SOURCE_LANGUAGE, gettext, weekday_names
from rules.messages import N_
from rules.model import WEEKDAYS

SEED_DAY = ["07:30-12:00", "13:00-17:30"]
# The default session types' labels: English msgids, written in the file (and the example
# file) in the desk's default language; a desk that keeps them reads them in its own
# language (``load.py``).
DEFAULT_LABELS = {
    "standard": N_("Remote session"),
    "extended": N_("Long session (booked in advance)"),
}
DEFAULT_SESSION_TYPES = [
    {
        "name": "standard",
        "label": gettext(DEFAULT_LANGUAGE)(DEFAULT_LABELS["standard"]),
        "duration": "30m",
        "min_notice": "15m",
    },
    {
        "name": "extended",
        "label": gettext(DEFAULT_LANGUAGE)(DEFAULT_LABELS["extended"]),
        "duration": "2h",
        "min_notice": "24h",
    },
]
_CALDAV_EXAMPLE = {
    "kind": "caldav",
    "url": "http://127.0.0.1:5232/ana/work/",
    "username": "ana",
    "password_file": "secrets/ana.caldav",
}
_TECHNICIAN_EXAMPLE = {
    "id": "ana",
    "name": "Ana Souza",
    "calendar": _CALDAV_EXAMPLE,
    "busy": [{**_CALDAV_EXAMPLE, "url": "http://127.0.0.1:5232/ana/personal/"}],
}

# fmt: off
S = Setting  # the schema below reads as a table of keys

CALENDAR = Table(
    settings_of(CalendarConfig),
    expected="a calendar table with a kind",
    variants=variants_of(CalendarConfig),
)

DESK = Table(
    [
        *settings_of(DeskConfig),
        S("rules_file", FilePath(must_exist=True),
          help="Or read the rules from this UTF-8 text file.", example="rules.txt"),
    ],
    misplaced={"hours": "opening hours go in their own [hours] section"},
)

HOURS = Table(
    [
        S(day, Ranges(), SEED_DAY if n < 5 else [], f"{name}'s opening ranges.")
        for n, (day, name) in enumerate(zip(WEEKDAYS, weekday_names(SOURCE_LANGUAGE), strict=True))
    ],
    compact=True,
)

OVERRIDES = Table(
    [],
    expected='a table of dates and ranges like { "2026-12-23" = ["08:00-12:00"] }',
    extra=(DateKind(), Ranges()),
    extra_example='"2026-12-23" = ["08:00-12:00"]',
)

BOOKING = Table(settings_of(BookingConfig))  # the plain sections' keys are their fields

SESSION_TYPE = Table(
    [
        S("name", identifier("standard"), REQUIRED,
          "Identifier used in links, the API and the CLI (--type)."),
        S("label", Text("a label"), REQUIRED, "Name shown to clients."),
        S("duration", Duration(positive=True), REQUIRED, "How long the session is booked for."),
        S("min_notice", Duration(), "0m", "How far ahead it must be booked (rule 3)."),
        S("description", Text("a description", empty=True, max_length=2000), "",
          "Shown to clients when they choose the type."),
    ]
)

TECHNICIAN = Table(
    [
        *settings_of(TechnicianConfig),
        S("calendar", CALENDAR, REQUIRED,
          "The session calendar: sessions are written here, and its events block time."),
        S("busy", ArrayOfTables(CALENDAR, name="technicians.busy"), [],
          "Further calendars that only block time (only busy/free is read)."),
    ]
)

SERVER = Table(settings_of(ServerConfig))

STORE = Table(settings_of(StoreConfig), variants=variants_of(StoreConfig))

SYNC = Table(settings_of(SyncConfig))

NOTIFICATIONS = Table(settings_of(NotificationsConfig))

SMTP = Table(settings_of(SmtpConfig))

WEBHOOK = Table(settings_of(WebhookConfig))

CONSOLE = Table(settings_of(ConsoleConfig))

LOG = Table(settings_of(LogConfig))

WHATSAPP_TEMPLATES = Table(settings_of(WhatsAppTemplates))

WHATSAPP = Table(
    [
        *settings_of(WhatsAppConfig),
        S("templates", WHATSAPP_TEMPLATES, {},
          "The approved message templates, by event. Each takes five body parameters: "
          "date, time, technician, remote tool and link (deploy/whatsapp.md)."),
    ]
)

SCHEMA = Table(
    [
        S("desk", DESK, {}, "Who the desk is, its time zone and its closed days."),
        S("hours", HOURS, {},
          "Weekly opening hours in the desk's time zone. Several ranges make a break (lunch); "
          "[] closes the day. A session must fit inside one range."),
        S("overrides", OVERRIDES, {},
          "Special hours on given dates, replacing the weekly hours (and opening a holiday); "
          "[] closes the day. A closed date wins over an override."),
        S("booking", BOOKING, {}, "How clients book."),
        S("session_types", ArrayOfTables(SESSION_TYPE, name="session_types", min_items=1),
          DEFAULT_SESSION_TYPES,
          "Kinds of session clients can book. Without any [[session_types]], these two apply."),
        S("technicians", ArrayOfTables(TECHNICIAN, name="technicians", min_items=1), REQUIRED,
          "The technicians who take sessions, each with the calendar they work in.",
          [_TECHNICIAN_EXAMPLE]),
        S("server", SERVER, {}, "The web server: booking page, JSON API, feeds, health check."),
        S("store", STORE, {}, "Where the daemon keeps its state."),
        S("sync", SYNC, {}, "Reading and writing the technicians' calendars."),
        S("notifications", NOTIFICATIONS, {}, "Who is told what, by e-mail."),
        S("smtp", SMTP, OPTIONAL, "Outgoing e-mail. Without this section no e-mail is sent.", {}),
        S("webhooks", ArrayOfTables(WEBHOOK, name="webhooks"), [],
          "Other systems told about session changes.",
          [{"url": "https://hooks.example.com/expediente"}]),
        S("whatsapp", WHATSAPP, OPTIONAL,
          "The desk's WhatsApp Business number (Meta's Cloud API): confirmations, reminders "
          "and changes reach the client there, and a client's message at session time checks "
          "the session in. Without this section nothing is sent by WhatsApp.", {}),
        S("console", CONSOLE, {}, "The desk console at /desk/ for staff (deploy/desk.md)."),
        S("log", LOG, {}, "Logging."),
    ],
    expected="a TOML document",
    misplaced={
        "calendar": "a calendar belongs to a technician: write [technicians.calendar] after "
        "its [[technicians]]",
        "busy": "busy calendars belong to a technician: write [[technicians.busy]] after its "
        "[[technicians]]",
        "session_type": 'did you mean "session_types"? (write [[session_types]])',
    },
)
del S
# fmt: on
