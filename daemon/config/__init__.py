"""The configuration: one TOML file, described by one declarative schema.

:data:`SCHEMA` lists every key with its type, default and help text. The same schema
validates a file (every problem at once, each naming the file, the key, what was expected
and what was found), fills in defaults, and writes the commented example file
(:func:`example_toml`, shipped as ``deploy/expediente.example.toml``). Defaults go
through the same conversion as user input, so a default can never drift out of its type.

Paths in the file are relative to the file's own folder. Secrets are read from files only
and held in :class:`Secret`, whose ``repr`` and ``str`` are ``***`` (see
:mod:`daemon.config.secrets`).

One module per job, in the order a value travels:

- ``problems.py``: how a problem is worded (:class:`ConfigProblem`, :class:`ConfigError`);
- ``kinds.py``: the schema's mini-language (value types, :class:`Setting`, :class:`Table`);
- ``secrets.py``, ``holidays.py``: the two kinds that reach outside the file;
- ``schema.py``: :data:`SCHEMA`, every key;
- ``model.py``: the typed :class:`Config` the daemon uses, and the plain keys declared
  once as its fields (:func:`setting`);
- ``whatsapp.py``: the ``[whatsapp]`` section's keys, declared the same way;
- ``load.py``: :func:`load_config`, the checks across keys, assembling the :class:`Config`;
- ``rules_text.py``: the rules clients accept, written from the policy;
- ``describe.py``: ``expediente check-config``'s text;
- ``generate.py`` (and ``__main__.py``): the example file and the key reference.

Everything the rest of the daemon and the tests use is importable from here.
"""

from __future__ import annotations

from daemon.config.describe import describe
from daemon.config.generate import (
    EXAMPLE_HEADER,
    REFERENCE_MARKER,
    example_toml,
    main,
    reference_markdown,
    reference_page,
)
from daemon.config.holidays import HolidayCalendar, Holidays, HolidaySource
from daemon.config.kinds import (
    BAD,
    EMAIL,
    IDENTIFIER,
    OPTIONAL,
    REQUIRED,
    ArrayOfTables,
    Boolean,
    Choice,
    ClosedDates,
    DateKind,
    Duration,
    FilePath,
    Integer,
    Kind,
    Listen,
    ListOf,
    Ranges,
    Setting,
    Table,
    Text,
    TimeZoneKind,
    Url,
    zero_is_none,
)
from daemon.config.load import load_config, parse_config
from daemon.config.model import (
    SESSION_EVENTS,
    BookingConfig,
    CalendarConfig,
    Config,
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
    from_table,
    setting,
    settings_of,
    variants_of,
)
from daemon.config.problems import (
    ARRAY_SECTIONS,
    ConfigError,
    ConfigProblem,
    KeyPath,
    render_key,
    show,
    toml_string,
    toml_value,
)
from daemon.config.rules_text import default_rules_text, rules_version
from daemon.config.schema import (
    BOOKING,
    CALENDAR,
    DEFAULT_SESSION_TYPES,
    DESK,
    HOURS,
    LOG,
    NOTIFICATIONS,
    OVERRIDES,
    SCHEMA,
    SEED_DAY,
    SERVER,
    SESSION_TYPE,
    SMTP,
    STORE,
    SYNC,
    TECHNICIAN,
    WEBHOOK,
)
from daemon.config.secrets import Secret, SecretError, SecretFile
from daemon.config.whatsapp import WHATSAPP_EVENTS, WhatsAppConfig, WhatsAppTemplates
from daemon.i18n import LANGUAGES

__all__ = [
    "ARRAY_SECTIONS",
    "BAD",
    "BOOKING",
    "CALENDAR",
    "DEFAULT_SESSION_TYPES",
    "DESK",
    "EMAIL",
    "EXAMPLE_HEADER",
    "HOURS",
    "IDENTIFIER",
    "LANGUAGES",
    "LOG",
    "NOTIFICATIONS",
    "OPTIONAL",
    "OVERRIDES",
    "REFERENCE_MARKER",
    "REQUIRED",
    "SCHEMA",
    "SEED_DAY",
    "SERVER",
    "SESSION_EVENTS",
    "SESSION_TYPE",
    "SMTP",
    "STORE",
    "SYNC",
    "TECHNICIAN",
    "WEBHOOK",
    "WHATSAPP_EVENTS",
    "ArrayOfTables",
    "BookingConfig",
    "Boolean",
    "CalendarConfig",
    "Choice",
    "ClosedDates",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "ConsoleConfig",
    "DateKind",
    "DeskConfig",
    "Duration",
    "FilePath",
    "HolidayCalendar",
    "HolidaySource",
    "Holidays",
    "Integer",
    "KeyPath",
    "Kind",
    "ListOf",
    "Listen",
    "LogConfig",
    "NotificationsConfig",
    "Ranges",
    "Secret",
    "SecretError",
    "SecretFile",
    "ServerConfig",
    "Setting",
    "SmtpConfig",
    "StoreConfig",
    "SyncConfig",
    "Table",
    "TechnicianConfig",
    "Text",
    "TimeZoneKind",
    "Url",
    "WebhookConfig",
    "WhatsAppConfig",
    "WhatsAppTemplates",
    "default_rules_text",
    "describe",
    "example_toml",
    "from_table",
    "load_config",
    "main",
    "parse_config",
    "reference_markdown",
    "reference_page",
    "render_key",
    "rules_version",
    "setting",
    "settings_of",
    "show",
    "toml_string",
    "toml_value",
    "variants_of",
    "zero_is_none",
]
