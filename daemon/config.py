"""The configuration: one TOML file, described by one declarative schema.

:data:`SCHEMA` lists every key with its type, default and help text. The same schema
validates a file (every problem at once, each naming the file, the key, what was expected
and what was found), fills in defaults, and writes the commented example file
(:func:`example_toml`, shipped as ``deploy/expediente.example.toml``). Defaults go
through the same conversion as user input, so a default can never drift out of its type.

Paths in the file are relative to the file's own folder.

Secrets (calendar passwords, Google credentials, the admin token, the signing key, SMTP
and webhook keys) are read from files only; an inline secret (``password = "..."``) is
refused with a hint to use ``password_file``. Under systemd, ``LoadCredential=`` copies
files into ``$CREDENTIALS_DIRECTORY``: when that variable is set and the folder holds a
file with the same base name as a configured secret file, that copy is read instead, so
a hardened unit can hand the service secrets its user could not otherwise read. Secret
values live in :class:`Secret`, whose ``repr`` and ``str`` are ``***``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import os
import re
import textwrap
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final, Literal, NoReturn
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as holidays_lib

from daemon.errors import UserError
from rules.durations import (
    MAX_SECONDS,
    DurationError,
    DurationTooLong,
    format_duration,
    parse_duration,
)
from rules.model import (
    BOOKING_FIELDS,
    DEFAULT_REQUIRED_FIELDS,
    WEEKDAYS,
    HolidayLookup,
    NoHolidays,
    Policy,
    SessionType,
    Status,
    Technician,
    TimeRange,
    remote_tool,
)

LANGUAGES = ("pt-BR", "en")

# ---------------------------------------------------------------------------------------
# Problems and secrets


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a configuration file, worded for the person who edits it.

    ``key`` is where: ``[booking] slot_step`` for a key of a section,
    ``technicians[1].calendar.url`` inside a list of tables (counted from 1).
    """

    file: str
    key: str
    expected: str
    found: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}: " if self.key else f"{self.file}: "
        text = f"expected {self.expected}, found {self.found}" if self.expected else self.found
        return where + text + (f"; {self.hint}" if self.hint else "")


class ConfigError(UserError):
    """The configuration cannot be used; ``problems`` lists every reason, all at once."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class SecretError(UserError):
    """A secret file became unreadable after the configuration was loaded."""


class Secret:
    """A secret held out of sight: ``repr``, ``str`` and formatting all give ``***``.

    The value is read from its file on first :meth:`reveal` and kept privately (the
    loader reveals each secret once to check it, unless told not to). Surrounding
    whitespace, such as the newline ``echo`` leaves, is dropped.
    """

    __slots__ = ("_path", "_value")

    def __init__(self, path: Path | None = None, *, value: str | None = None) -> None:
        if path is None and value is None:
            raise ValueError("a Secret needs a file path or a value")
        self._path = path
        self._value = value

    @property
    def path(self) -> Path | None:
        """The file the secret is read from (``None`` for one given in code, e.g. tests)."""
        return self._path

    def _read(self) -> str:
        if self._value is None:
            if self._path is None:
                raise FileNotFoundError("no secret file")
            self._value = self._path.read_text(encoding="utf-8").strip()
        return self._value

    def reveal(self) -> str:
        """The secret's value; raises :class:`SecretError` naming the file if unreadable."""
        try:
            return self._read()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SecretError(f"cannot read secret file {self._path}: {reason}") from None

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        if self._path is None or other._path is None:
            return self is other
        return self._path == other._path

    def __hash__(self) -> int:
        return hash(self._path) if self._path is not None else id(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError("secrets are not pickled")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self


class HolidayCalendar:
    """Public holidays from the ``holidays`` package, safe to share between threads.

    The package fills in a year on first lookup and marks the year as done *before*
    filling it, so an unguarded concurrent lookup can see a holiday as a working day.
    """

    def __init__(
        self,
        country: str,
        subdivision: str | None = None,
        categories: Sequence[str] = (),
        language: str | None = None,
    ) -> None:
        self.country = country
        self.subdivision = subdivision
        self.categories = tuple(categories)
        self._lock = threading.Lock()
        self._holidays = holidays_lib.country_holidays(
            country, subdiv=subdivision, categories=self.categories or None, language=language
        )

    def get(self, key: date, default: None = None) -> str | None:
        with self._lock:
            name = self._holidays.get(key)
        return default if name is None else str(name)

    def __str__(self) -> str:
        return str(HolidaySource(self.country, self.subdivision, self.categories))


# ---------------------------------------------------------------------------------------
# Value types of the schema

KeyPath = tuple[str | int, ...]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED: Final = _Marker("REQUIRED")  # the key must be present
OPTIONAL: Final = _Marker("OPTIONAL")  # absent means None
BAD: Final = _Marker("BAD")  # a value whose problem has been reported

ARRAY_SECTIONS = frozenset({"session_types", "technicians", "webhooks"})
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def render_key(path: KeyPath) -> str:
    """``("booking", "slot_step")`` → ``[booking] slot_step``; list items count from 1."""
    if not path:
        return ""
    head = str(path[0])
    if len(path) == 1:
        return f"[[{head}]]" if head in ARRAY_SECTIONS else f"[{head}]"
    text = head if isinstance(path[1], int) else ""
    for part in path[1:]:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            text += f".{name}" if text else name
    return text if isinstance(path[1], int) else f"[{head}] {text}"


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, except DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: object) -> str:
    """A TOML value, inline form, for the example file and messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def show(raw: object) -> str:
    """How a found value is quoted in a message: short, with its TOML type when unclear."""
    if isinstance(raw, bool):
        return f"{toml_value(raw)} (true/false)"
    if isinstance(raw, int | float):
        return f"{raw} (a number)"
    if isinstance(raw, str):
        text = toml_string(raw)
        return text if len(text) <= 80 else text[:76] + '…"'
    if isinstance(raw, datetime):
        return f"{raw.isoformat()} (a date and time)"
    if isinstance(raw, date):
        return f"{raw.isoformat()} (a date)"
    if isinstance(raw, time):
        return f"{raw.isoformat()} (a time of day)"
    if isinstance(raw, list):
        return "a list" if raw else "an empty list"
    if isinstance(raw, dict):
        return "a table"
    return type(raw).__name__


def _did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """A suggestion for a misspelt name, or "" (prefixes count: "thursday" → "thu")."""
    lowered = word.lower()
    prefixed = [c for c in candidates if len(c) >= 3 and lowered.startswith(c.lower())]
    close = prefixed[-1:] or difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"?' if close else ""


class _Invalid(Exception):
    """Raised by a value type: what was expected, and optionally how to show what was found."""

    def __init__(self, expected: str, *, found: str | None = None, hint: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.found = found
        self.hint = hint


@dataclass
class _Context:
    """Where values come from (file name, folder, environment) and the problems so far."""

    file: str
    base: Path
    environ: Mapping[str, str]
    check_secrets: bool
    problems: list[ConfigProblem] = field(default_factory=list)

    def report(self, path: KeyPath, expected: str, found: str, hint: str = "") -> None:
        self.problems.append(ConfigProblem(self.file, render_key(path), expected, found, hint))

    def convert(self, kind: Kind, raw: object, path: KeyPath, *, default: bool = False) -> Any:
        try:
            return kind.convert(raw, self, path)
        except _Invalid as invalid:
            found = invalid.found if invalid.found is not None else show(raw)
            self.report(
                path, invalid.expected, found + (" (the default)" if default else ""), invalid.hint
            )
            return BAD

    def resolve(self, raw: str) -> Path:
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.base / path


class Kind:
    """A value type: converts a TOML value, or raises :class:`_Invalid`.

    Composite types (tables, lists) report their members' problems themselves through
    the context and return :data:`BAD` when something inside was wrong.
    """

    expected = "a value"

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> Any:
        raise NotImplementedError


class Text(Kind):
    def __init__(
        self,
        expected: str = "text",
        *,
        pattern: str | None = None,
        empty: bool = False,
        max_length: int = 500,
        hint: str = "",
    ) -> None:
        self.expected = expected
        self.pattern = re.compile(pattern) if pattern else None
        self.empty = empty
        self.max_length = max_length
        self.hint = hint

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> str:
        if not isinstance(raw, str):
            raise _Invalid(self.expected, hint=self.hint or "text goes in double quotes")
        value = raw.strip()
        if not value and not self.empty:
            raise _Invalid(self.expected, found="an empty text", hint=self.hint)
        if len(value) > self.max_length:
            raise _Invalid(
                f"{self.expected} of at most {self.max_length} characters",
                found=f"{len(value)} characters",
            )
        if value and self.pattern and not self.pattern.fullmatch(value):
            raise _Invalid(self.expected, hint=self.hint)
        return value


IDENTIFIER = r"[a-z0-9][a-z0-9_-]{0,63}"


def _identifier(example: str) -> Text:
    return Text(
        f'an identifier like "{example}" (lowercase letters, digits, "-" and "_")',
        pattern=IDENTIFIER,
    )


EMAIL = Text('an e-mail address like "ana@example.com"', pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+")


class Boolean(Kind):
    expected = "true or false"

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> bool:
        if not isinstance(raw, bool):
            raise _Invalid(self.expected, hint="write true or false without quotes")
        return raw


class Integer(Kind):
    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.expected = f"a whole number from {minimum} to {maximum}"

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise _Invalid(self.expected, hint="write the number without quotes")
        if not self.minimum <= raw <= self.maximum:
            raise _Invalid(self.expected)
        return raw


class Duration(Kind):
    expected = 'a duration like "30m"'
    _FORMS = 'units d, h, m and s, largest first: "90s", "10m", "2h", "1h30m", "1d"'

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> timedelta:
        if not isinstance(raw, str):
            raise _Invalid(self.expected, hint='durations are text in quotes, e.g. "30m"')
        try:
            value = parse_duration(raw)
        except DurationTooLong:
            raise _Invalid(f"a duration of at most {MAX_SECONDS // 86400}d") from None
        except DurationError:
            raise _Invalid(self.expected, hint=self._FORMS) from None
        if self.positive and value <= timedelta(0):
            raise _Invalid('a duration longer than zero, like "30m"')
        return value


class Choice(Kind):
    def __init__(self, options: Sequence[str]) -> None:
        self.options = tuple(options)
        self.expected = "one of " + ", ".join(toml_string(o) for o in self.options)

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> str:
        if isinstance(raw, str):
            for option in self.options:
                if raw.strip().lower() == option.lower():
                    return option
            raise _Invalid(self.expected, hint=_did_you_mean(raw.strip(), self.options))
        raise _Invalid(self.expected)


class TimeZoneKind(Kind):
    expected = 'an IANA time zone like "America/Sao_Paulo"'

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> ZoneInfo:
        if not isinstance(raw, str) or not raw.strip():
            raise _Invalid(self.expected)
        try:
            return ZoneInfo(raw.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            hint = _did_you_mean(raw.strip(), sorted(available_timezones()))
            raise _Invalid(self.expected, hint=hint or "see the tz database's zone names") from None


def _to_date(raw: object) -> date | None:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw.strip()):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            return None
    return None


class DateKind(Kind):
    expected = 'a date like "2026-12-24"'

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> date:
        value = _to_date(raw)
        if value is None:
            raise _Invalid(self.expected, hint="YYYY-MM-DD, a real calendar day")
        return value


class Ranges(Kind):
    """Opening ranges of one day: sorted, neither overlapping nor touching."""

    expected = 'a list of time ranges like ["07:30-12:00", "13:00-17:30"]'

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> tuple[TimeRange, ...]:
        if not isinstance(raw, list):
            raise _Invalid(self.expected, hint="[] closes the day")
        ranges: list[TimeRange] = []
        for item in raw:
            if not isinstance(item, str):
                raise _Invalid(self.expected, found=show(item))
            try:
                ranges.append(TimeRange.parse(item))
            except ValueError:
                raise _Invalid(
                    self.expected,
                    found=show(item),
                    hint="HH:MM-HH:MM on a 24-hour clock, ending after it starts "
                    "(a range cannot cross midnight)",
                ) from None
        ranges.sort()
        for before, after in itertools.pairwise(ranges):
            if after.start < before.end:
                raise _Invalid(
                    "ranges that do not overlap",
                    found=f'"{before}" and "{after}"',
                    hint="a day's ranges must be separate, with breaks between them",
                )
            if after.start == before.end:
                raise _Invalid(
                    "ranges with a break between them",
                    found=f'"{before}" and "{after}", which touch',
                    hint=f'write them as one range, "{before.start:%H:%M}-{after.end:%H:%M}"',
                )
        return tuple(ranges)


class ListOf(Kind):
    def __init__(
        self,
        item: Kind,
        *,
        expected: str,
        min_items: int = 0,
        unique: Callable[[Any], object] | None = None,
    ) -> None:
        self.item = item
        self.expected = expected
        self.min_items = min_items
        self.unique = unique

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> Any:
        if not isinstance(raw, list):
            raise _Invalid(self.expected)
        if len(raw) < self.min_items:
            raise _Invalid(self.expected)
        values = [ctx.convert(self.item, item, (*path, n)) for n, item in enumerate(raw)]
        if any(value is BAD for value in values):
            return BAD
        if self.unique is not None:
            seen: set[object] = set()
            for n, value in enumerate(values):
                key = self.unique(value)
                if key in seen:
                    ctx.report((*path, n), "each entry once", f"{show(raw[n])} again")
                    return BAD
                seen.add(key)
        return tuple(values)


class FilePath(Kind):
    def __init__(self, *, must_exist: bool, expected: str = "a file path") -> None:
        self.must_exist = must_exist
        self.expected = expected

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> Path:
        if not isinstance(raw, str) or not raw.strip():
            raise _Invalid(self.expected)
        resolved = ctx.resolve(raw.strip())
        if self.must_exist and not resolved.is_file():
            why = "is not a file" if resolved.exists() else "does not exist"
            raise _Invalid("an existing file", found=f"{show(raw)} ({resolved} {why})")
        return resolved


class SecretFile(Kind):
    """The path of a file holding a secret; the file itself is checked unless told not to."""

    def __init__(
        self,
        *,
        example: str,
        min_length: int = 1,
        json_key: bool = False,
        create: str = "create {path} holding the secret, readable only by the daemon's user "
        "(chmod 600 {path})",
    ) -> None:
        self.expected = f'the path of a file holding the secret, like "{example}"'
        self.min_length = min_length
        self.json_key = json_key
        self.create = create

    def locate(self, raw: str, ctx: _Context) -> Path:
        """The configured file, or its namesake in ``$CREDENTIALS_DIRECTORY`` if present."""
        configured = ctx.resolve(raw)
        credentials = ctx.environ.get("CREDENTIALS_DIRECTORY")
        if credentials:
            candidate = Path(credentials) / configured.name
            if candidate.is_file():
                return candidate
        return configured

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> Secret:
        if not isinstance(raw, str) or not raw.strip():
            raise _Invalid(self.expected, hint="secrets are read from files only")
        location = self.locate(raw.strip(), ctx)
        secret = Secret(location)
        if ctx.check_secrets:
            self._check(secret, location, raw)
        return secret

    def _check(self, secret: Secret, location: Path, raw: str) -> None:
        expected = "a readable file holding the secret"
        try:
            value = secret._read()
        except FileNotFoundError:
            raise _Invalid(
                expected,
                found=f"{show(raw)} ({location} does not exist)",
                hint=self.create.format(path=location),
            ) from None
        except OSError as error:
            raise _Invalid(
                expected,
                found=f"{show(raw)} ({location}: {error.strerror})",
                hint="the daemon's user must be able to read it; "
                "under systemd, LoadCredential= can hand it over",
            ) from None
        except UnicodeDecodeError:
            raise _Invalid(expected, found=f"{location}, which is not UTF-8 text") from None
        if not value:
            raise _Invalid(
                expected,
                found=f"{location}, which is empty",
                hint=self.create.format(path=location),
            )
        if len(value) < self.min_length:
            raise _Invalid(
                f"a secret of at least {self.min_length} characters",
                found=f"{len(value)} characters in {location}",
                hint=self.create.format(path=location),
            )
        if self.json_key:
            try:
                document = json.loads(value)
            except ValueError:
                document = None
            if not isinstance(document, dict) or "type" not in document:
                raise _Invalid(
                    "a Google service-account key or authorized-user token (JSON)",
                    found=f"{location}, which is not one",
                    hint="download a service-account key in the Google Cloud console",
                )


class Url(Kind):
    def __init__(
        self, expected: str = 'an http(s) URL like "https://cal.example.com/ana/work/"'
    ) -> None:
        self.expected = expected

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> str:
        if not isinstance(raw, str):
            raise _Invalid(self.expected)
        value = raw.strip()
        try:
            parts = urlsplit(value)
            _ = parts.port  # raises ValueError for a bad port
        except ValueError:
            raise _Invalid(self.expected) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Invalid(self.expected)
        if parts.password is not None:
            masked = value.replace(f":{parts.password}@", ":***@", 1)
            raise _Invalid(
                "a URL without a password",
                found=show(masked),
                hint="put the user name in username and the password in a file named by "
                "password_file",
            )
        return value


class Listen(Kind):
    expected = 'an address and port like "127.0.0.1:8080"'

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> tuple[str, int]:
        if not isinstance(raw, str):
            raise _Invalid(self.expected)
        match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:\[\]]+):(\d{1,5})", raw.strip())
        if not match:
            raise _Invalid(
                self.expected,
                hint='write host:port; an IPv6 address goes in brackets, "[::1]:8080"',
            )
        host = match.group(1) or match.group(3)
        port = int(match.group(2) or match.group(4))
        if port > 65535:
            raise _Invalid(self.expected, hint="ports go up to 65535")
        return host, port


class ClosedDates(Kind):
    expected = (
        'a list of dates like ["2026-12-24"], '
        'or a table of dates and names like { "2026-12-24" = "Véspera de Natal" }'
    )

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> Any:
        entries: list[tuple[object, object, KeyPath]]
        if isinstance(raw, list):
            entries = [(item, "", (*path, n)) for n, item in enumerate(raw)]
        elif isinstance(raw, dict):
            entries = [(key, label, (*path, key)) for key, label in raw.items()]
        else:
            raise _Invalid(self.expected)
        result: dict[date, str] = {}
        failed = False
        for key, label, where in entries:
            day = ctx.convert(DateKind(), key, where)
            name = ctx.convert(Text("a name for the day", empty=True), label, where)
            if day is BAD or name is BAD:
                failed = True
            elif day in result:
                ctx.report(where, "each date once", f"{day.isoformat()} again")
                failed = True
            else:
                result[day] = name
        return BAD if failed else result


@dataclass(frozen=True)
class Setting:
    """One key: its type, default (a raw TOML value, REQUIRED or OPTIONAL) and help.

    ``example`` is shown in the example file for a key with no default.
    """

    name: str
    kind: Kind
    default: object = OPTIONAL
    help: str = ""
    example: object = None


class Table(Kind):
    """A TOML table with known keys.

    With ``variants``, the value of the ``kind`` key selects further keys (a CalDAV or a
    Google calendar). With ``extra``, keys not in ``settings`` are data (dates in
    ``[overrides]``), converted by the pair of types given.
    """

    def __init__(
        self,
        settings: Sequence[Setting],
        *,
        expected: str = "a table",
        variants: Mapping[str, Sequence[Setting]] | None = None,
        extra: tuple[Kind, Kind] | None = None,
        extra_example: str = "",
        misplaced: Mapping[str, str] | None = None,
        compact: bool = False,
    ) -> None:
        self.settings = tuple(settings)
        self.compact = compact  # the example file shows the keys without their help
        self.expected = expected
        self.variants = {k: tuple(v) for k, v in (variants or {}).items()}
        self.extra = extra
        self.extra_example = extra_example
        self.misplaced = dict(misplaced or {})

    def settings_for(self, variant: str | None) -> tuple[Setting, ...]:
        return self.settings + (self.variants.get(variant, ()) if variant else ())

    def all_names(self) -> list[str]:
        names = [s.name for s in self.settings]
        for settings in self.variants.values():
            names += [s.name for s in settings if s.name not in names]
        return names

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> Any:
        if not isinstance(raw, dict):
            raise _Invalid(self.expected)
        variant = None
        if self.variants:
            chosen = raw.get("kind")
            if isinstance(chosen, str) and chosen.strip().lower() in self.variants:
                variant = chosen.strip().lower()
        known = {s.name: s for s in self.settings_for(variant)}
        variant_keys = {s.name: name for name, settings in self.variants.items() for s in settings}
        out: dict[Any, Any] = {}
        for name, value in raw.items():
            setting = known.get(name)
            if setting is not None:
                out[name] = ctx.convert(setting.kind, value, (*path, name))
            elif self.extra is not None:
                key = ctx.convert(self.extra[0], name, (*path, name))
                converted = ctx.convert(self.extra[1], value, (*path, name))
                out[name if key is BAD else key] = BAD if key is BAD else converted
            elif variant is None and name in variant_keys:
                continue  # the missing or wrong kind is reported; its keys cannot be judged
            else:
                self._unknown(name, ctx, path, known, variant, variant_keys)
        for setting in known.values():
            if setting.name in raw:
                continue
            if setting.default is REQUIRED:
                ctx.report(
                    (*path, setting.name), setting.kind.expected, "nothing", "this key is required"
                )
                out[setting.name] = BAD
            elif setting.default is OPTIONAL:
                out[setting.name] = None
            else:
                out[setting.name] = ctx.convert(
                    setting.kind, setting.default, (*path, setting.name), default=True
                )
        return out

    def _unknown(
        self,
        name: str,
        ctx: _Context,
        path: KeyPath,
        known: Mapping[str, Setting],
        variant: str | None,
        variant_keys: Mapping[str, str],
    ) -> None:
        where = (*path, name)
        file_key = f"{name}_file"
        secret_setting = next((s for s in self._every_setting() if s.name == file_key), None)
        if secret_setting is not None and isinstance(secret_setting.kind, SecretFile):
            ctx.report(
                where,
                f'{file_key} = "path/to/file"',
                "an inline secret (not shown)",
                f"secrets are read from files only: put it in a file readable only by the "
                f"daemon and name that file in {file_key}",
            )
        elif name in variant_keys:
            ctx.report(
                where,
                f'a key of kind = "{variant}"',
                f'a key of kind = "{variant_keys[name]}"',
                f'remove it, or set kind = "{variant_keys[name]}"',
            )
        elif name in self.misplaced:
            ctx.report(where, "a known key", "an unknown key", self.misplaced[name])
        else:
            hint = _did_you_mean(name, list(known)) or "known keys: " + ", ".join(known)
            ctx.report(where, "a known key", "an unknown key", hint)

    def _every_setting(self) -> Iterator[Setting]:
        yield from self.settings
        for settings in self.variants.values():
            yield from settings


class ArrayOfTables(Kind):
    def __init__(self, table: Table, *, name: str, min_items: int = 0) -> None:
        self.table = table
        self.name = name
        self.min_items = min_items
        self.expected = f"a list of tables, each written [[{name}]]"

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> Any:
        if isinstance(raw, dict):
            raise _Invalid(
                self.expected,
                found=f"a single table [{self.name}]",
                hint=f"write [[{self.name}]] (double brackets) before each entry",
            )
        if not isinstance(raw, list):
            raise _Invalid(self.expected)
        if len(raw) < self.min_items:
            raise _Invalid(f"at least one [[{self.name}]] entry", found="none")
        return [ctx.convert(self.table, item, (*path, n)) for n, item in enumerate(raw)]


@dataclass(frozen=True)
class HolidaySource:
    """Which public holidays close the desk: a country, a subdivision, categories."""

    country: str
    subdivision: str | None = None
    categories: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = self.country + (f", subdivision {self.subdivision}" if self.subdivision else "")
        return where + (f", categories {', '.join(self.categories)}" if self.categories else "")


class Holidays(Kind):
    expected = 'a table like { country = "BR", subdivision = "SP" }, or false'

    def __init__(self) -> None:
        self.table = Table(
            [
                Setting("country", Text('a country code like "BR"'), REQUIRED),
                Setting("subdivision", Text('a subdivision code like "SP"')),
                Setting(
                    "categories",
                    ListOf(Text("a category name"), expected='a list like ["public"]'),
                ),
            ],
            expected=self.expected,
        )

    def convert(self, raw: object, ctx: _Context, path: KeyPath) -> Any:
        if raw is False:
            return None
        if not isinstance(raw, dict):
            raise _Invalid(self.expected)
        values = self.table.convert(raw, ctx, path)
        if BAD in values.values():
            return BAD
        return _holiday_source(values, ctx, path)


def _holiday_source(values: Mapping[str, Any], ctx: _Context, path: KeyPath) -> Any:
    supported = holidays_lib.list_supported_countries()
    country = str(values["country"]).upper()
    if country not in supported:
        ctx.report(
            (*path, "country"),
            'an ISO 3166 country code known to the holidays package, like "BR"',
            show(values["country"]),
            _did_you_mean(country, sorted(supported)) or 'e.g. "BR", "PT", "US"',
        )
        return BAD
    base = holidays_lib.country_holidays(country)
    subdivision = values.get("subdivision")
    if subdivision is not None:
        codes = {str(code).lower(): str(code) for code in getattr(base, "subdivisions", ())}
        aliases = getattr(base, "subdivisions_aliases", {}) or {}
        for alias, code in aliases.items():
            codes.setdefault(str(alias).lower(), str(code))
        found = codes.get(subdivision.lower())
        if found is None:
            listed = ", ".join(sorted({c for c in codes.values()})) or "none"
            ctx.report(
                (*path, "subdivision"),
                f"a subdivision of {country} ({listed})",
                show(subdivision),
                _did_you_mean(subdivision.upper(), sorted(set(codes.values()))),
            )
            return BAD
        subdivision = found
    categories: list[str] = []
    supported_categories = tuple(getattr(base, "supported_categories", ("public",)))
    for n, category in enumerate(values.get("categories") or ()):
        if category.lower() not in supported_categories:
            ctx.report(
                (*path, "categories", n),
                f"a category of {country}'s holidays: " + ", ".join(supported_categories),
                show(category),
            )
            return BAD
        categories.append(category.lower())
    return HolidaySource(country, subdivision, tuple(categories))


# ---------------------------------------------------------------------------------------
# The schema

SEED_DAY = ["07:30-12:00", "13:00-17:30"]
DEFAULT_SESSION_TYPES = [
    {
        "name": "standard",
        "label": "Atendimento remoto",
        "duration": "30m",
        "min_notice": "15m",
    },
    {
        "name": "extended",
        "label": "Atendimento longo (agendado com antecedência)",
        "duration": "2h",
        "min_notice": "24h",
    },
]
# An English desk that keeps the default session types shows them in English.
_DEFAULT_LABELS_EN = {
    "Atendimento remoto": "Remote session",
    "Atendimento longo (agendado com antecedência)": "Long session (booked in advance)",
}
# What a webhook can ask for: each status a session reaches, and "moved" (the technician
# gave it another valid time; the status stays "booked").
SESSION_EVENTS = (*(str(status) for status in Status), "moved")

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

_DAY_NAMES = {
    "pt-BR": (
        "segunda-feira",
        "terça-feira",
        "quarta-feira",
        "quinta-feira",
        "sexta-feira",
        "sábado",
        "domingo",
    ),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}

# How to fill a file that must hold a random value.
_RANDOM_FILL_HINT = (
    "create it with a random value: head -c 32 /dev/urandom | base64 > {path}; chmod 600 {path}"
)

# fmt: off
S = Setting  # the schema below reads as a table of keys

CALENDAR = Table(
    [
        S("kind", Choice(("caldav", "google")), REQUIRED,
          'Where the calendar lives: "caldav" (any CalDAV server) or "google".'),
    ],
    expected="a calendar table with a kind",
    variants={
        "caldav": [
            S("url", Url(), REQUIRED, "The calendar collection's URL.",
              "http://127.0.0.1:5232/ana/work/"),
            S("username", Text("a user name"), help="User name, if the server wants one."),
            S("password_file", SecretFile(example="secrets/ana.caldav"),
              help="File holding the password (with username).", example="secrets/ana.caldav"),
            S("ca_file", FilePath(must_exist=True),
              help="A CA bundle (PEM) to trust for this server, e.g. a private CA.",
              example="certs/ca.pem"),
            S("verify_tls", Boolean(), True,
              "Check the server's TLS certificate. Turn off only for a test server."),
        ],
        "google": [
            S("calendar_id", Text('a Google calendar id like "ana@empresa.com.br"'), REQUIRED,
              'The calendar\'s id ("primary" or an address).', "ana@empresa.com.br"),
            S("credentials_file", SecretFile(example="secrets/google.json", json_key=True),
              REQUIRED, "A service-account key or an OAuth authorized-user token (JSON).",
              "secrets/google.json"),
            S("subject", EMAIL,
              help="With a service account: the user to act as (domain-wide delegation).",
              example="ana@empresa.com.br"),
            S("api_endpoint", Url('an http(s) URL like "https://www.googleapis.com/calendar/v3/"'),
              help="Another Calendar v3 endpoint: a proxy or a local test server.",
              example="https://www.googleapis.com/calendar/v3/"),
        ],
    },
)

DESK = Table(
    [
        S("name", Text("the desk's name"), "Suporte Técnico",
          "The desk's name, shown on the booking page, in e-mails and in the rules."),
        S("timezone", TimeZoneKind(), "America/Sao_Paulo",
          "The desk's time zone: hours, dates and the times clients see are in it."),
        S("language", Choice(LANGUAGES), "pt-BR",
          'Language of pages, e-mails and messages: "pt-BR" or "en".'),
        S("holidays", Holidays(), {"country": "BR"},
          "Public holidays are closed days. country is an ISO code; add subdivision for state "
          'holidays (e.g. { country = "BR", subdivision = "SP" }) and categories to widen the '
          'set (e.g. ["public", "optional"]); false opens on holidays.'),
        S("closed_dates", ClosedDates(), [],
          'The desk\'s own closed days, e.g. ["2026-12-24", "2026-12-31"], or with names: '
          '{ "2026-12-24" = "Véspera de Natal" }.'),
        S("phone", Text("a phone number"),
          help="The desk's phone, which clients call when ready (rule 2).",
          example="+55 11 4000-0000"),
        S("whatsapp", Text("a WhatsApp number"),
          help="The desk's WhatsApp, which clients call when ready (rule 2).",
          example="+55 11 94000-0000"),
        S("email", EMAIL, help="The desk's e-mail address, shown to clients.",
          example="suporte@example.com"),
        S("rules_text", Text("the rules as text", max_length=20000),
          help="The rules clients read and accept before booking. Default: the desk's policy "
          "document, in pt-BR and English, with this file's hours, tolerance, tools and "
          "session types filled in.",
          example="1. O acesso remoto se dará através do AnyDesk. ..."),
        S("rules_file", FilePath(must_exist=True),
          help="Or read the rules from this UTF-8 text file.", example="rules.txt"),
    ],
    misplaced={"hours": "opening hours go in their own [hours] section"},
)

HOURS = Table(
    [
        S(day, Ranges(), SEED_DAY if n < 5 else [], f"{name}'s opening ranges.")
        for n, (day, name) in enumerate(zip(WEEKDAYS, _DAY_NAMES["en"], strict=True))
    ],
    compact=True,
)

OVERRIDES = Table(
    [],
    expected='a table of dates and ranges like { "2026-12-23" = ["08:00-12:00"] }',
    extra=(DateKind(), Ranges()),
    extra_example='"2026-12-23" = ["08:00-12:00"]',
)

BOOKING = Table(
    [
        S("slot_step", Duration(positive=True), "30m",
          "Spacing of the start times offered, counted from each range's start."),
        S("buffer", Duration(), "0m",
          "Free time kept around each session: between it and the technician's other "
          "sessions and calendar events, before and after."),
        S("horizon", Duration(positive=True), "30d", "How far ahead clients can book."),
        S("grace", Duration(), "10m",
          "Tolerated delay (rule 5): with no check-in this long after the start, the session "
          "is marked rescheduled and the client is asked to book again."),
        S("checkin_early", Duration(), "30m",
          "How long before the start a session can be checked in."),
        S("cancel_cutoff", Duration(), "2h",
          "Clients can cancel or rebook through their link until this long before the start."),
        S("reminder", Duration(), "1h",
          'Remind the client this long before the start; "0m" sends no reminder.'),
        S("remote_tools",
          ListOf(Text("a tool name"), expected='a list of tool names like ["AnyDesk"]',
                 min_items=1, unique=lambda name: str(name).lower()),
          ["AnyDesk"],
          "Remote-access tools clients may choose (rule 1), the first by default. Access IDs "
          "are checked for AnyDesk, TeamViewer, RustDesk and Chrome Remote Desktop; other "
          "tools accept any ID."),
        S("required_fields",
          ListOf(Choice(BOOKING_FIELDS), expected="a list of booking fields",
                 unique=lambda name: name),
          [f for f in BOOKING_FIELDS if f in DEFAULT_REQUIRED_FIELDS],
          "Booking fields clients must fill in, among: " + ", ".join(BOOKING_FIELDS)
          + ". The responsible person and phone are rule 7."),
        S("rate_limit", Integer(0, 100000), 10,
          "Bookings accepted from one client address per rate_window; 0 means no limit. "
          "A booking in progress holds its place until it is refused, so a burst of "
          "simultaneous attempts from one address cannot slip past the limit."),
        S("refusal_limit", Integer(0, 100000), 30,
          "Refused bookings (a rule broken, a slot taken meanwhile) from one client address "
          "per rate_window; past it the address is refused with 429 too. Refusals are "
          "counted apart so that correcting a form costs no booking, and limited because "
          "each one is kept in the audit log. 0 means no limit."),
        S("rate_window", Duration(positive=True), "1h",
          "The period rate_limit and refusal_limit count over, per client address (an IPv6 "
          "address counts as its /64, the block one subscriber gets)."),
    ]
)

SESSION_TYPE = Table(
    [
        S("name", _identifier("standard"), REQUIRED,
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
        S("id", _identifier("ana"), REQUIRED, "Stable identifier, stored with each session."),
        S("name", Text("a name"), REQUIRED, "Shown to clients."),
        S("email", EMAIL, help="Where the technician's notifications go.",
          example="ana@example.com"),
        S("calendar", CALENDAR, REQUIRED,
          "The session calendar: sessions are written here, and its events block time."),
        S("busy", ArrayOfTables(CALENDAR, name="technicians.busy"), [],
          "Further calendars that only block time (only busy/free is read)."),
    ]
)

SERVER = Table(
    [
        S("listen", Listen(), "127.0.0.1:8080",
          "Address and port the web server binds. Behind a reverse proxy keep it on "
          "127.0.0.1."),
        S("public_url", Url('an http(s) URL like "https://agenda.example.com"'),
          "http://127.0.0.1:8080",
          "The address clients and technicians use, for links in e-mails and calendar "
          "events."),
        S("admin_token_file",
          SecretFile(example="secrets/admin-token", min_length=16, create=_RANDOM_FILL_HINT),
          "secrets/admin-token",
          "File holding the bearer token of the admin API (at least 16 characters)."),
        S("signing_key_file",
          SecretFile(example="secrets/signing-key", min_length=16, create=_RANDOM_FILL_HINT),
          "secrets/signing-key",
          "File holding the key that signs check-in and manage links; changing it voids the "
          "links already sent."),
        S("behind_proxy", Boolean(), False,
          "Trust X-Forwarded-For and X-Forwarded-Proto from a reverse proxy."),
    ]
)

STORE = Table(
    [
        S("path", FilePath(must_exist=False), "expediente.db",
          "The SQLite database: sessions, busy-time cache, outbox. Back it up. Under "
          "systemd it belongs in the StateDirectory, the one writable place.",
          "/var/lib/expediente/expediente.db"),
        S("audit_retention", Duration(), "365d",
          "How long audit entries (bookings refused and accepted, status changes, moves, "
          "failed deliveries) are kept; older ones are deleted once a day. Sessions "
          "themselves, with their rules acceptance, are kept regardless. \"0d\" keeps "
          "the audit forever."),
    ]
)

SYNC = Table(
    [
        S("interval", Duration(positive=True), "60s",
          "How often each calendar is read for busy time and changes."),
        S("stale_after", Duration(positive=True), "5m",
          "/healthz answers 503 when a calendar's last good sync is older."),
        S("timeout", Duration(positive=True), "30s",
          "Time limit of one request to a calendar server."),
        S("max_backoff", Duration(positive=True), "15m",
          "Longest wait between retries after a calendar fails."),
    ]
)

NOTIFICATIONS = Table(
    [
        S("client_email", Boolean(), True,
          "E-mail clients their confirmation (with an .ics invitation), reminder and changes. "
          "Needs [smtp]."),
        S("technician_email", Boolean(), False,
          "Also e-mail the technician (their email key) about their sessions."),
        S("admin_email", EMAIL,
          help="Where problems that need a person go (refused credentials, calendar writes "
          "that keep failing).",
          example="suporte@example.com"),
    ]
)

SMTP = Table(
    [
        S("host", Text("a host name"), REQUIRED, "The mail server.", "smtp.example.com"),
        S("port", Integer(1, 65535), 587, "Its port."),
        S("security", Choice(("starttls", "tls", "none")), "starttls",
          '"starttls" (port 587), "tls" (port 465), or "none" for a local relay.'),
        S("username", Text("a user name"), help="Login.", example="agenda"),
        S("password_file", SecretFile(example="secrets/smtp-password"),
          help="File holding the login's password.", example="secrets/smtp-password"),
        S("from_address", EMAIL, REQUIRED, "Sender address.", "suporte@example.com"),
        S("from_name", Text("a name"), help="Sender name; default: the desk's name.",
          example="Suporte Técnico"),
        S("timeout", Duration(positive=True), "30s", "Time limit of one delivery."),
    ]
)

WEBHOOK = Table(
    [
        S("url", Url('an http(s) URL like "https://hooks.example.com/expediente"'), REQUIRED,
          "Receives a JSON POST for each session change.",
          "https://hooks.example.com/expediente"),
        S("events",
          ListOf(Choice(SESSION_EVENTS), expected="a list of session statuses or \"moved\"",
                 min_items=1, unique=lambda name: name),
          list(SESSION_EVENTS),
          'Session statuses to send, and "moved" (the technician moved the session to '
          "another valid time)."),
        S("secret_file", SecretFile(example="secrets/webhook-key", min_length=16),
          help="File holding the key that signs each request (HMAC-SHA256 of "
          '"<timestamp>.<body>"). The key is the file\'s text without surrounding whitespace '
          "(the newline echo or base64 leave is not part of it); deploy/README.md shows how "
          "a receiver checks it.",
          example="secrets/webhook-key"),
        S("timeout", Duration(positive=True), "10s", "Time limit of one delivery."),
    ]
)

LOG = Table(
    [
        S("level", Choice(("debug", "info", "warning", "error")), "info",
          "Least important messages logged (to stderr; journald under systemd)."),
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


# ---------------------------------------------------------------------------------------
# The configuration as the rest of the daemon sees it


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


# ---------------------------------------------------------------------------------------
# Loading


def load_config(
    path: str | os.PathLike[str],
    *,
    check_secrets: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate the file at ``path``.

    Raises :class:`ConfigError` listing every problem. With ``check_secrets=False`` the
    secret files are not read (checking a configuration on another machine); each
    :class:`Secret` then reads its file on first use.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise ConfigError(
            [ConfigProblem(str(file), "", "", f"cannot read the file: {error.strerror}")]
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            [ConfigProblem(str(file), "", "UTF-8 text", "bytes that are not UTF-8")]
        ) from None
    return parse_config(text, path=file, check_secrets=check_secrets, environ=environ)


def parse_config(
    text: str,
    *,
    path: Path,
    check_secrets: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate configuration ``text`` as if read from ``path`` (relative paths start there)."""
    ctx = _Context(
        file=str(path),
        base=path.resolve().parent,
        environ=os.environ if environ is None else environ,
        check_secrets=check_secrets,
    )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            [
                ConfigProblem(
                    str(path),
                    "",
                    "valid TOML",
                    f"a syntax error: {error}",
                    'text values need double quotes, e.g. slot_step = "30m"',
                )
            ]
        ) from None
    root = SCHEMA.convert(document, ctx, ())
    config = _build(root, ctx, path.resolve())
    if ctx.problems or config is None:
        raise ConfigError(ctx.problems)
    return config


def _ok(*values: object) -> bool:
    return all(value is not BAD for value in values)


def _section(root: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = root.get(name)
    return value if isinstance(value, dict) else {}


def _calendar_id(technician: str, role: str, kind: str, address: str) -> str:
    digest = hashlib.sha256(f"{kind}\n{address}".encode()).hexdigest()[:8]
    return f"{technician}:{role}:{digest}"


def _build(root: Mapping[str, Any], ctx: _Context, path: Path) -> Config | None:
    """Cross-key checks, then the typed configuration (``None`` when anything is wrong)."""
    desk = _section(root, "desk")
    hours = _section(root, "hours")
    overrides = _section(root, "overrides")
    booking = _section(root, "booking")
    sync = _section(root, "sync")
    types = root.get("session_types")
    techs = root.get("technicians")

    weekly = {n: hours.get(day, BAD) for n, day in enumerate(WEEKDAYS)}
    everything_closed = not any(weekly.values()) and not any(overrides.values())
    if hours and _ok(*weekly.values(), *overrides.values()) and everything_closed:
        ctx.report(("hours",), "at least one open range", "every day closed")
    closed = desk.get("closed_dates", BAD)
    if _ok(closed) and isinstance(closed, dict):
        for day in overrides:
            if day in closed:
                ctx.report(
                    ("overrides", day.isoformat()) if isinstance(day, date) else ("overrides",),
                    "a date that is not also in [desk] closed_dates",
                    "both",
                    "a closed date wins; remove one of them",
                )
    if desk.get("rules_text") and desk.get("rules_file"):
        ctx.report(("desk", "rules_file"), "either rules_text or rules_file", "both", "keep one")
    interval, stale_after = sync.get("interval", BAD), sync.get("stale_after", BAD)
    if _ok(interval, stale_after) and stale_after <= interval:
        ctx.report(
            ("sync", "stale_after"),
            f"longer than [sync] interval ({format_duration(interval)})",
            format_duration(stale_after),
            "a calendar would count as stale between two normal syncs",
        )

    if isinstance(types, list):
        _check_session_types(types, booking, weekly, overrides, ctx)
    if isinstance(techs, list):
        _check_technicians(techs, ctx)

    if ctx.problems:
        return None
    return _assemble(root, ctx, path)


def _check_session_types(
    types: list[Any],
    booking: Mapping[str, Any],
    weekly: Mapping[int, Any],
    overrides: Mapping[Any, Any],
    ctx: _Context,
) -> None:
    horizon = booking.get("horizon", BAD)
    ranges = [r for day in (*weekly.values(), *overrides.values()) if _ok(day) for r in day]
    longest = max(
        (datetime.combine(date.min, r.end) - datetime.combine(date.min, r.start) for r in ranges),
        default=None,
    )
    names: set[str] = set()
    for n, entry in enumerate(types):
        if not isinstance(entry, dict):
            continue
        name = entry.get("name", BAD)
        if _ok(name):
            if name in names:
                ctx.report(("session_types", n, "name"), "a name used once", f'"{name}" again')
            names.add(name)
        notice = entry.get("min_notice", BAD)
        if _ok(notice, horizon) and notice > horizon:
            ctx.report(
                ("session_types", n, "min_notice"),
                f"a notice no longer than [booking] horizon ({format_duration(horizon)})",
                format_duration(notice),
                "such a session could never be booked",
            )
        duration = entry.get("duration", BAD)
        if _ok(duration) and longest is not None and duration > longest:
            ctx.report(
                ("session_types", n, "duration"),
                f"a duration that fits in one opening range (the longest is "
                f"{format_duration(longest)})",
                format_duration(duration),
                "such a session could never be booked",
            )


def _check_technicians(techs: list[Any], ctx: _Context) -> None:
    ids: set[str] = set()
    session_calendars: dict[tuple[str, str], int] = {}
    for n, tech in enumerate(techs):
        if not isinstance(tech, dict):
            continue
        tech_id = tech.get("id", BAD)
        if _ok(tech_id):
            if tech_id in ids:
                ctx.report(("technicians", n, "id"), "an id used once", f'"{tech_id}" again')
            ids.add(tech_id)
        seen: set[tuple[str, str]] = set()
        busy = tech.get("busy")
        entries: list[tuple[KeyPath, Any]] = [
            (("technicians", n, "calendar"), tech.get("calendar"))
        ]
        if isinstance(busy, list):
            entries += [(("technicians", n, "busy", b), cal) for b, cal in enumerate(busy)]
        for where, calendar in entries:
            if not isinstance(calendar, dict) or not _ok(*calendar.values()):
                continue
            if calendar.get("password_file") is not None and not calendar.get("username"):
                ctx.report((*where, "username"), "a user name to go with password_file", "nothing")
            address = calendar.get("url") or calendar.get("calendar_id")
            if not isinstance(address, str):
                continue
            ident = (calendar["kind"], address)
            if ident in seen:
                ctx.report(where, "each calendar once per technician", f"{address} again")
            seen.add(ident)
            if where[2] == "calendar":
                if ident in session_calendars:
                    ctx.report(
                        (*where, "url" if calendar["kind"] == "caldav" else "calendar_id"),
                        "a session calendar of this technician alone",
                        f"the session calendar of technicians[{session_calendars[ident] + 1}]",
                        "sessions in a shared calendar would block every technician; list "
                        "a shared calendar under [[technicians.busy]] instead",
                    )
                else:
                    session_calendars[ident] = n


def _calendar(
    raw: Mapping[str, Any], tech: str, role: Literal["sessions", "busy"], key: KeyPath
) -> CalendarConfig:
    kind = raw["kind"]
    address = raw.get("url") or raw.get("calendar_id") or ""
    return CalendarConfig(
        id=_calendar_id(tech, role, kind, address),
        technician=tech,
        role=role,
        kind=kind,
        key=render_key(key),
        url=raw.get("url"),
        username=raw.get("username"),
        password=raw.get("password_file"),
        ca_file=raw.get("ca_file"),
        verify_tls=raw.get("verify_tls", True),
        calendar_id=raw.get("calendar_id"),
        credentials=raw.get("credentials_file"),
        subject=raw.get("subject"),
        api_endpoint=raw.get("api_endpoint"),
    )


def _holiday_language(source: HolidaySource, language: str) -> str | None:
    base = holidays_lib.country_holidays(source.country)
    prefix = "pt" if language == "pt-BR" else "en"
    supported = tuple(getattr(base, "supported_languages", ()))
    preferred = "pt_BR" if prefix == "pt" else "en_US"
    if preferred in supported:
        return preferred
    return next((lang for lang in supported if lang.startswith(prefix)), None)


def _assemble(root: Mapping[str, Any], ctx: _Context, path: Path) -> Config:
    desk = root["desk"]
    booking = root["booking"]
    language = desk["language"]
    source: HolidaySource | None = desk["holidays"]
    lookup: HolidayLookup = NoHolidays()
    if source is not None:
        lookup = HolidayCalendar(
            source.country,
            source.subdivision,
            source.categories,
            language=_holiday_language(source, language),
        )
    technicians = tuple(
        TechnicianConfig(
            id=raw["id"],
            name=raw["name"],
            email=raw["email"],
            calendar=_calendar(
                raw["calendar"], raw["id"], "sessions", ("technicians", n, "calendar")
            ),
            busy=tuple(
                _calendar(cal, raw["id"], "busy", ("technicians", n, "busy", b))
                for b, cal in enumerate(raw["busy"])
            ),
        )
        for n, raw in enumerate(root["technicians"])
    )
    tools = tuple(remote_tool(name) for name in booking["remote_tools"])
    policy = Policy(
        timezone=desk["timezone"],
        weekly={n: root["hours"][day] for n, day in enumerate(WEEKDAYS)},
        session_types={
            t["name"]: SessionType(
                t["name"],
                _DEFAULT_LABELS_EN.get(t["label"], t["label"])
                if desk["language"] == "en"
                else t["label"],
                t["duration"],
                t["min_notice"],
                t["description"],
            )
            for t in root["session_types"]
        },
        technicians=tuple(Technician(t.id, t.name) for t in technicians),
        holidays=lookup,
        closed_dates=dict(desk["closed_dates"]),
        overrides=dict(root["overrides"]),
        slot_step=booking["slot_step"],
        buffer=booking["buffer"],
        horizon=booking["horizon"],
        grace=booking["grace"],
        checkin_early=booking["checkin_early"],
        remote_tools=tools,
        required_fields=frozenset(booking["required_fields"]),
    )
    if desk["rules_file"] is not None:
        texts = {language: desk["rules_file"].read_text(encoding="utf-8").strip()}
    elif desk["rules_text"] is not None:
        texts = {language: desk["rules_text"]}
    else:
        texts = {
            lang: default_rules_text(
                policy,
                language=lang,
                desk_name=desk["name"],
                phone=desk["phone"],
                whatsapp=desk["whatsapp"],
            )
            for lang in LANGUAGES
        }
    version = rules_version(texts)
    policy = dataclasses.replace(policy, rules_version=version)
    server = root["server"]
    host, port = server["listen"]
    smtp = root["smtp"]
    log = root["log"]
    return Config(
        path=path,
        policy=policy,
        desk=DeskConfig(
            name=desk["name"],
            language=language,
            timezone=desk["timezone"],
            holidays=source,
            closed_dates=policy.closed_dates,
            rules_text=texts[language],
            rules_texts=texts,
            rules_version=version,
            phone=desk["phone"],
            whatsapp=desk["whatsapp"],
            email=desk["email"],
        ),
        booking=BookingConfig(
            slot_step=booking["slot_step"],
            buffer=booking["buffer"],
            horizon=booking["horizon"],
            grace=booking["grace"],
            checkin_early=booking["checkin_early"],
            cancel_cutoff=booking["cancel_cutoff"],
            reminder=booking["reminder"] or None,
            remote_tools=tuple(tool.name for tool in tools),
            required_fields=frozenset(booking["required_fields"]),
            rate_limit=booking["rate_limit"] or None,
            rate_window=booking["rate_window"],
            refusal_limit=booking["refusal_limit"] or None,
        ),
        technicians=technicians,
        server=ServerConfig(
            listen=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            host=host,
            port=port,
            public_url=server["public_url"].rstrip("/"),
            admin_token=server["admin_token_file"],
            signing_key=server["signing_key_file"],
            behind_proxy=server["behind_proxy"],
        ),
        store=StoreConfig(
            path=root["store"]["path"],
            audit_retention=root["store"]["audit_retention"] or None,
        ),
        sync=SyncConfig(**root["sync"]),
        notifications=NotificationsConfig(**root["notifications"]),
        smtp=None
        if smtp is None
        else SmtpConfig(
            host=smtp["host"],
            port=smtp["port"],
            security=smtp["security"],
            username=smtp["username"],
            password=smtp["password_file"],
            from_address=smtp["from_address"],
            from_name=smtp["from_name"] or desk["name"],
            timeout=smtp["timeout"],
        ),
        webhooks=tuple(
            WebhookConfig(
                url=hook["url"],
                events=frozenset(hook["events"]),
                secret=hook["secret_file"],
                timeout=hook["timeout"],
            )
            for hook in root["webhooks"]
        ),
        log=LogConfig(level=log["level"]),
    )


def rules_version(texts: Mapping[str, str]) -> str:
    """A short hash naming the rules' wording, stored with each acceptance."""
    digest = hashlib.sha256()
    for language in sorted(texts):
        digest.update(f"{language}\n{texts[language]}\n\0".encode())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------
# The rules text clients accept, written from the desk's policy document


def spoken_duration(value: timedelta, language: str) -> str:
    """``2h`` → "2 horas" / "2 hours"; whole days from two days up."""
    pt = language == "pt-BR"
    total = int(value.total_seconds())
    if total >= 2 * 86400 and total % 86400 == 0:
        return f"{total // 86400} {'dias' if pt else 'days'}"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    words = [
        ("hora", "horas", "hour", "hours", hours),
        ("minuto", "minutos", "minute", "minutes", minutes),
        ("segundo", "segundos", "second", "seconds", seconds),
    ]
    parts = []
    for one_pt, many_pt, one_en, many_en, amount in words:
        if amount:
            one, many = (one_pt, many_pt) if pt else (one_en, many_en)
            parts.append(f"{amount} {one if amount == 1 else many}")
    if not parts:
        return "0 minutos" if pt else "0 minutes"
    return (" e " if pt else " ").join(parts)


def _join(items: Sequence[str], word: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def hours_phrase(weekly: Mapping[int, Sequence[TimeRange]], language: str) -> str:
    """The weekly hours in words, consecutive days with equal hours grouped."""
    pt = language == "pt-BR"
    names = _DAY_NAMES["pt-BR" if pt else "en"]
    groups: list[tuple[int, int, tuple[TimeRange, ...]]] = []
    for day in range(7):
        ranges = tuple(weekly.get(day, ()))
        if not ranges:
            continue
        if groups and groups[-1][1] == day - 1 and groups[-1][2] == ranges:
            groups[-1] = (groups[-1][0], day, ranges)
        else:
            groups.append((day, day, ranges))
    phrases = []
    for first, last, ranges in groups:
        if pt:
            days = names[first] if first == last else f"de {names[first]} a {names[last]}"
            times = _join([f"das {r.start:%H:%M} às {r.end:%H:%M}" for r in ranges], "e")
        else:
            days = names[first] if first == last else f"{names[first]} to {names[last]}"
            times = _join([f"{r.start:%H:%M}–{r.end:%H:%M}" for r in ranges], "and")
        phrases.append(f"{days}, {times}")
    if not phrases:
        return "somente nas datas anunciadas" if pt else "only on announced dates"
    return "; ".join(phrases)


def default_rules_text(
    policy: Policy,
    *,
    language: str,
    desk_name: str,
    phone: str | None = None,
    whatsapp: str | None = None,
) -> str:
    """The desk's policy document (seed/000_…txt) as rules for clients, from ``policy``."""
    pt = language == "pt-BR"
    tools = _join([tool.name for tool in policy.remote_tools], "ou" if pt else "or")
    contacts = [
        f"WhatsApp {whatsapp}" if whatsapp else "",
        (f"{'telefone' if pt else 'phone'} {phone}" if phone else ""),
    ]
    contact = "; ".join(c for c in contacts if c)
    contact = f" ({contact})" if contact else ""
    holidays = not isinstance(policy.holidays, NoHolidays)
    hours = hours_phrase(policy.weekly, language)
    grace = spoken_duration(policy.grace, language)
    notices = []
    for session_type in policy.session_types.values():
        duration = spoken_duration(session_type.duration, language)
        if session_type.min_notice > timedelta(0):
            notice = spoken_duration(session_type.min_notice, language)
            notice = f"pelo menos {notice}" if pt else f"at least {notice}"
        else:
            notice = "sem antecedência mínima" if pt else "no minimum notice"
        notices.append(f"{session_type.label} ({duration}): {notice}")
    notice_list = "; ".join(notices)
    if pt:
        lines = [
            f"Regras para acessos remotos — {desk_name}",
            "",
            "Para que o atendimento por acesso remoto seja eficiente, o cliente deve seguir "
            "estas regras:",
            "",
            f"1. O acesso remoto se dará através do {tools} ou de outro meio sugerido pelo "
            "suporte técnico.",
            "2. O programa de acesso remoto deve ser instalado antes do horário de início do "
            "atendimento. Quando estiver tudo pronto, o responsável deve chamar o suporte por "
            f"WhatsApp ou ligação{contact}, com os dados do acesso, para iniciar o atendimento.",
            "3. Casos que demandam mais tempo devem ser agendados previamente. Antecedência "
            f"mínima por tipo de atendimento: {notice_list}.",
            f"4. O acesso remoto é permitido {hours}"
            + (", exceto em feriados." if holidays else "."),
            "5. O horário agendado deve ser cumprido. Serão tolerados até "
            f"{grace} de atraso para o início do atendimento; se no horário agendado não "
            "houver disponibilidade, o acesso remoto terá de ser reagendado.",
            "6. O cliente só deve interferir no atendimento quando solicitado pelo suporte: "
            "não mexa no teclado nem no mouse durante o acesso remoto, pois isso torna o "
            "atendimento mais demorado.",
            "7. Um responsável do cliente deve estar disponível durante o acesso remoto, "
            "obrigatoriamente.",
            "",
            "O suporte técnico compromete-se a manter a confidencialidade, o profissionalismo, "
            "a responsabilidade e a ética.",
        ]
    else:
        lines = [
            f"Remote-access rules — {desk_name}",
            "",
            "For remote support to work well, the client agrees to these rules:",
            "",
            f"1. Remote access takes place through {tools} or another means the support desk "
            "suggests.",
            "2. Install the remote-access program before the session's start time. When "
            "everything is ready, the person responsible calls the desk by WhatsApp or "
            f"phone{contact} with the access details to begin.",
            "3. Cases that need more time must be booked in advance. Minimum notice by session "
            f"type: {notice_list}.",
            f"4. Remote access is available {hours}"
            + (", except on public holidays." if holidays else "."),
            f"5. The booked time must be kept. Up to {grace} of delay is tolerated for the "
            "session to start; if the client is not available at the booked time, the "
            "session must be rescheduled.",
            "6. The client only touches the keyboard or mouse when the technician asks: "
            "interfering during remote access makes the session take longer.",
            "7. A person responsible on the client's side must be present during the remote "
            "session.",
            "",
            "The support desk is committed to confidentiality, professionalism, responsibility "
            "and ethics.",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# check-config: the effective policy as text


def describe(config: Config) -> str:
    """The effective configuration for people (``expediente check-config``); no secrets."""
    policy = config.policy
    desk = config.desk
    booking = config.booking
    d = format_duration
    lines = [
        f"Configuration: {config.path}",
        f"Desk: {desk.name}; language {desk.language}; time zone {policy.timezone.key}",
    ]
    contacts = [
        f"{label} {value}"
        for label, value in (
            ("phone", desk.phone),
            ("WhatsApp", desk.whatsapp),
            ("e-mail", desk.email),
        )
        if value
    ]
    if contacts:
        lines.append("Contact: " + ", ".join(contacts))
    lines.append("Opening hours:")
    for n, day in enumerate(WEEKDAYS):
        ranges = policy.weekly.get(n, ())
        lines.append(f"  {day}  {', '.join(str(r) for r in ranges) or 'closed'}")
    lines.append(
        f"Public holidays: closed ({desk.holidays})"
        if desk.holidays
        else "Public holidays: open (holidays = false)"
    )
    if policy.closed_dates:
        lines.append(
            "Closed dates: "
            + ", ".join(
                closed.isoformat() + (f" ({label})" if label else "")
                for closed, label in sorted(policy.closed_dates.items())
            )
        )
    for special, ranges in sorted(policy.overrides.items()):
        lines.append(
            f"Override {special.isoformat()}: {', '.join(str(r) for r in ranges) or 'closed'}"
        )
    lines += [
        f"Booking: start times every {d(booking.slot_step)}, buffer {d(booking.buffer)}, up "
        f"to {d(booking.horizon)} ahead",
        f"No-show: rescheduled {d(booking.grace)} after the start without check-in; check-in "
        f"opens {d(booking.checkin_early)} before",
        f"Clients may cancel until {d(booking.cancel_cutoff)} before; "
        + (f"reminder {d(booking.reminder)} before" if booking.reminder else "no reminder"),
        "Rate limit: "
        + (
            f"{booking.rate_limit} bookings per client address per {d(booking.rate_window)}"
            if booking.rate_limit
            else "none"
        )
        + (
            f"; {booking.refusal_limit} refused per {d(booking.rate_window)}"
            if booking.refusal_limit
            else "; refusals not limited"
        ),
        "Remote tools: "
        + ", ".join(
            tool.name + (f" (ID like {tool.id_example})" if tool.id_example else " (any ID)")
            for tool in policy.remote_tools
        ),
        "Required fields: " + ", ".join(f for f in BOOKING_FIELDS if f in policy.required_fields),
        "Session types:",
    ]
    for t in policy.session_types.values():
        lines.append(f"  {t.name}: {t.label}; {d(t.duration)}, at least {d(t.min_notice)} ahead")
    lines.append(f"Technicians ({len(config.technicians)}):")
    for tech in config.technicians:
        lines.append(f"  {tech.id}: {tech.name}" + (f" <{tech.email}>" if tech.email else ""))
        for calendar in tech.calendars:
            lines.append(f"    {calendar.role:<8}  {_describe_calendar(calendar)}")
    server = config.server
    lines += [
        f"Server: listens on {server.listen}; public URL {server.public_url}"
        + ("; behind a reverse proxy" if server.behind_proxy else ""),
        f"  admin token from {_secret_source(server.admin_token)}; signing key from "
        f"{_secret_source(server.signing_key)}",
        f"Store: {config.store.path}; audit kept "
        + (f"{d(config.store.audit_retention)}" if config.store.audit_retention else "forever"),
        f"Sync: every {d(config.sync.interval)}; stale after {d(config.sync.stale_after)}; "
        f"request timeout {d(config.sync.timeout)}; retries up to {d(config.sync.max_backoff)} "
        "apart",
    ]
    smtp = config.smtp
    if smtp is None:
        lines.append("E-mail: off (no [smtp] section)")
    else:
        login = f" as {smtp.username}" if smtp.username else ""
        if smtp.password:
            login += f" (password from {_secret_source(smtp.password)})"
        lines.append(
            f"E-mail: {smtp.host}:{smtp.port} ({smtp.security}){login}, from "
            f"{smtp.from_name} <{smtp.from_address}>"
        )
    notes = config.notifications
    lines.append(
        f"E-mail to clients: {'yes' if notes.client_email and smtp else 'no'}; to technicians: "
        f"{'yes' if notes.technician_email and smtp else 'no'}; problems to: "
        + (notes.admin_email if notes.admin_email and smtp else "nobody")
    )
    if config.webhooks:
        for hook in config.webhooks:
            lines.append(f"Webhook: {hook.url} ({', '.join(sorted(hook.events))})")
    else:
        lines.append("Webhooks: none")
    lines.append(f"Log level: {config.log.level}")
    lines.append(f"Rules shown to clients (version {policy.rules_version}, {desk.language}):")
    lines += [f"  | {line}" if line else "  |" for line in desk.rules_text.splitlines()]
    return "\n".join(lines)


def _secret_source(secret: Secret) -> str:
    return str(secret.path) if secret.path else "the program"


def _describe_calendar(calendar: CalendarConfig) -> str:
    if calendar.kind == "caldav":
        text = f"caldav {calendar.url}"
        if calendar.username:
            text += f" as {calendar.username}"
        if calendar.password:
            text += f" (password from {_secret_source(calendar.password)})"
        if calendar.ca_file:
            text += f", CA {calendar.ca_file}"
        if not calendar.verify_tls:
            text += ", TLS NOT VERIFIED"
    else:
        text = f"google {calendar.calendar_id}"
        if calendar.subject:
            text += f" as {calendar.subject}"
        if calendar.credentials:
            text += f" (credentials from {_secret_source(calendar.credentials)})"
        if calendar.api_endpoint:
            text += f" via {calendar.api_endpoint}"
    return f"{text}  [{calendar.id}]"


# ---------------------------------------------------------------------------------------
# The example file, written from the schema

EXAMPLE_HEADER = """\
expediente configuration: every key, with its default value and what it does.

Generated from the schema in daemon/config.py by example_toml(); edit the schema, not this
file. Keys written out show their default values: change them or leave them out (the
[[technicians]] entry is an example to adapt). Keys behind a "#" are optional, shown with
an example value.

Durations: "90s", "10m", "2h", "1d", "1h30m". Hours: "07:30-12:00", in the desk's time
zone. Dates: "2026-12-24". Relative paths are relative to this file's folder.

Secrets (calendar passwords, Google credentials, the admin token, the signing key, the
SMTP password, webhook keys) are read from files, never written here: the keys ending in
_file name those files; keep them readable by the daemon's user alone (chmod 600). Under
systemd, LoadCredential=NAME:/path hands a file to the service in $CREDENTIALS_DIRECTORY;
when a file there has the same name as a configured secret file (e.g. admin-token for
secrets/admin-token), it is read instead of the configured path.

Check a file with: expediente check-config /etc/expediente/expediente.toml"""


def _comment(text: str, width: int = 98) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        if lines:
            lines.append("#")
        wrapped = textwrap.wrap(paragraph.replace("\n", " "), width - 2, break_on_hyphens=False)
        lines += [f"# {line}" for line in wrapped]
    return lines


class _ExampleWriter:
    """Renders tables of the schema; help is written the first time a table appears."""

    def __init__(self) -> None:
        self.explained: set[int] = set()

    def section(self, setting: Setting) -> list[str]:
        kind = setting.kind
        if isinstance(kind, ArrayOfTables):
            default = setting.default
            items = default if isinstance(default, list) and default else setting.example
            commented = default is not REQUIRED and not default
            lines = _comment(setting.help)
            for n, item in enumerate(items if isinstance(items, list) else []):
                lines += [""] if n else []
                lines += self.table(kind.table, setting.name, item, array=True, commented=commented)
            return lines
        if not isinstance(kind, Table):
            raise TypeError(f"section {setting.name} is neither a table nor a list of tables")
        commented = setting.default is OPTIONAL
        return _comment(setting.help) + self.table(kind, setting.name, {}, False, commented)

    def table(
        self, table: Table, header: str, values: Any, array: bool, commented: bool
    ) -> list[str]:
        explain = id(table) not in self.explained
        self.explained.add(id(table))
        title = f"[[{header}]]" if array else f"[{header}]"
        lines = [f"# {title}" if commented else title]
        values = values if isinstance(values, dict) else {}
        variant = values.get("kind") if table.variants else None
        nested: list[Setting] = []
        for setting in table.settings_for(variant):
            if isinstance(setting.kind, Table | ArrayOfTables):
                nested.append(setting)
                continue
            lines += self.key(setting, values, commented, explain, help=not table.compact)
        if table.extra_example:
            lines.append(f"# {table.extra_example}")
        if explain:
            for other, settings in table.variants.items():
                if other == variant:
                    continue
                lines += ["#", f'# Or, for kind = "{other}":', f'# kind = "{other}"']
                for setting in settings:
                    lines += self.key(setting, {}, True, True)
        for setting in nested:
            sub = values.get(setting.name, setting.example)
            name = f"{header}.{setting.name}"
            if isinstance(setting.kind, ArrayOfTables):
                subtable = setting.kind.table
                for item in sub if isinstance(sub, list) else []:
                    lines.append("")
                    if explain:
                        lines += _comment(setting.help)
                    lines += self.table(subtable, name, item, True, commented)
            elif isinstance(setting.kind, Table):
                lines.append("")
                if explain:
                    lines += _comment(setting.help)
                lines += self.table(setting.kind, name, sub, False, commented)
        return lines

    def key(
        self,
        setting: Setting,
        values: Mapping[str, Any],
        commented: bool,
        explain: bool,
        *,
        help: bool = True,
    ) -> list[str]:
        lines = _comment(setting.help) if explain and help and setting.help else []
        if not explain and setting.name not in values:
            return lines  # a repeated entry shows its own values only
        if setting.name in values:
            line = f"{setting.name} = {toml_value(values[setting.name])}"
        elif setting.default not in (REQUIRED, OPTIONAL):
            line = f"{setting.name} = {toml_value(setting.default)}"
        elif setting.example is not None:
            line = f"{setting.name} = {toml_value(setting.example)}"
            commented = commented or setting.default is OPTIONAL
        else:
            return lines
        lines.append(f"# {line}" if commented else line)
        return lines


def example_toml() -> str:
    """The commented example configuration, generated from :data:`SCHEMA`."""
    writer = _ExampleWriter()
    lines = _comment(EXAMPLE_HEADER)
    for setting in SCHEMA.settings:
        lines.append("")
        lines += writer.section(setting)
    return "\n".join(lines) + "\n"


def reference_markdown() -> str:
    """A Markdown table of every key (type, default, help), generated from :data:`SCHEMA`."""
    rows = ["| key | expects | default | what it does |", "|---|---|---|---|"]

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    def walk(table: Table, prefix: str) -> None:
        for variant in (None, *table.variants):
            settings = table.settings if variant is None else table.variants[variant]
            for setting in settings:
                name = f"{prefix}.{setting.name}" if prefix else setting.name
                kind = setting.kind
                if isinstance(kind, ArrayOfTables):
                    walk(kind.table, f"{name}[]")
                    continue
                if isinstance(kind, Table) and not kind.extra:
                    walk(kind, name)
                    continue
                if setting.default is REQUIRED:
                    default = "required"
                elif setting.default is OPTIONAL:
                    default = "—"
                else:
                    default = f"`{toml_value(setting.default)}`"
                condition = f' (kind = "{variant}")' if variant else ""
                rows.append(
                    f"| `{name}`{condition} | {cell(kind.expected)} | {cell(default)} | "
                    f"{cell(setting.help)} |"
                )

    walk(SCHEMA, "")
    return "\n".join(rows) + "\n"


# The configuration page of the documentation: a hand-written introduction, then this line,
# then the key table. Only what follows the line is generated.
REFERENCE_MARKER = (
    "<!-- Generated from the schema in daemon/config.py: edit the schema, then run "
    "python -m daemon.config --reference docs/configuration.md -->"
)


def reference_page(page: str) -> str:
    """``page`` (the text of docs/configuration.md) with everything after
    :data:`REFERENCE_MARKER` replaced by :func:`reference_markdown`; what comes before it is
    kept as written. Raises ValueError when the marker line is missing."""
    head, marker, _ = page.partition(REFERENCE_MARKER)
    if not marker:
        raise ValueError(f"the line that starts the generated part is missing: {REFERENCE_MARKER}")
    return f"{head}{marker}\n\n{reference_markdown()}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m daemon.config``: write out what the schema generates (exit 2 on error)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m daemon.config",
        description="Print or update the files generated from the configuration schema.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--example",
        action="store_true",
        help="print the commented example configuration (deploy/expediente.example.toml)",
    )
    what.add_argument(
        "--reference",
        nargs="?",
        const="",
        metavar="PAGE",
        help="print the key table in Markdown; with PAGE (docs/configuration.md), rewrite "
        "the generated part of that page and keep its introduction",
    )
    args = parser.parse_args(argv)
    if args.example:
        sys.stdout.write(example_toml())
    elif not args.reference:
        sys.stdout.write(reference_markdown())
    else:
        page = Path(args.reference)
        try:
            page.write_text(reference_page(page.read_text(encoding="utf-8")), encoding="utf-8")
        except (OSError, ValueError) as error:
            print(f"{parser.prog}: {page}: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
