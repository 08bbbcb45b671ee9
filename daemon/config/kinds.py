"""The schema's mini-language: value types (:class:`Kind`), keys (:class:`Setting`) and tables.

A kind converts one TOML value into what the daemon uses, or raises :class:`Invalid` with
what was expected; :class:`Context` turns that into a problem at the key's place and the
conversion goes on, so one run finds every problem. Composite kinds (tables, lists) report
their members' problems themselves and return :data:`BAD` when something inside was wrong.

A :class:`Setting` holds a default as a raw TOML value, converted like user input, so a
default can never drift out of its type; :data:`REQUIRED` and :data:`OPTIONAL` stand for
"must be written" and "absent means None".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from daemon.config.problems import (
    ConfigProblem,
    KeyPath,
    did_you_mean,
    render_key,
    show,
    toml_string,
)
from rules.durations import MAX_SECONDS, DurationError, DurationTooLong, parse_duration
from rules.model import TimeRange


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED: Final = _Marker("REQUIRED")  # the key must be present
OPTIONAL: Final = _Marker("OPTIONAL")  # absent means None
BAD: Final = _Marker("BAD")  # a value whose problem has been reported


class Invalid(Exception):
    """Raised by a value type: what was expected, and optionally how to show what was found."""

    def __init__(self, expected: str, *, found: str | None = None, hint: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.found = found
        self.hint = hint


@dataclass
class Context:
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
        except Invalid as invalid:
            found = invalid.found if invalid.found is not None else show(raw)
            self.report(
                path, invalid.expected, found + (" (the default)" if default else ""), invalid.hint
            )
            return BAD

    def resolve(self, raw: str) -> Path:
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.base / path


class Kind:
    """A value type: converts a TOML value, or raises :class:`Invalid`.

    Composite types (tables, lists) report their members' problems themselves through
    the context and return :data:`BAD` when something inside was wrong.
    """

    expected = "a value"
    # A secret's file path: a key of the same name without "_file" is an inline secret,
    # refused with a hint instead of "unknown key".
    holds_secret = False

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> Any:
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

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> str:
        if not isinstance(raw, str):
            raise Invalid(self.expected, hint=self.hint or "text goes in double quotes")
        value = raw.strip()
        if not value and not self.empty:
            raise Invalid(self.expected, found="an empty text", hint=self.hint)
        if len(value) > self.max_length:
            raise Invalid(
                f"{self.expected} of at most {self.max_length} characters",
                found=f"{len(value)} characters",
            )
        if value and self.pattern and not self.pattern.fullmatch(value):
            raise Invalid(self.expected, hint=self.hint)
        return value


IDENTIFIER = r"[a-z0-9][a-z0-9_-]{0,63}"


def identifier(example: str) -> Text:
    return Text(
        f'an identifier like "{example}" (lowercase letters, digits, "-" and "_")',
        pattern=IDENTIFIER,
    )


EMAIL = Text('an e-mail address like "ana@example.com"', pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+")


class Boolean(Kind):
    expected = "true or false"

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> bool:
        if not isinstance(raw, bool):
            raise Invalid(self.expected, hint="write true or false without quotes")
        return raw


class Integer(Kind):
    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.expected = f"a whole number from {minimum} to {maximum}"

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise Invalid(self.expected, hint="write the number without quotes")
        if not self.minimum <= raw <= self.maximum:
            raise Invalid(self.expected)
        return raw


class Duration(Kind):
    expected = 'a duration like "30m"'
    _FORMS = 'units d, h, m and s, largest first: "90s", "10m", "2h", "1h30m", "1d"'

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> timedelta:
        if not isinstance(raw, str):
            raise Invalid(self.expected, hint='durations are text in quotes, e.g. "30m"')
        try:
            value = parse_duration(raw)
        except DurationTooLong:
            raise Invalid(f"a duration of at most {MAX_SECONDS // 86400}d") from None
        except DurationError:
            raise Invalid(self.expected, hint=self._FORMS) from None
        if self.positive and value <= timedelta(0):
            raise Invalid('a duration longer than zero, like "30m"')
        return value


class Choice(Kind):
    def __init__(self, options: Sequence[str]) -> None:
        self.options = tuple(options)
        self.expected = "one of " + ", ".join(toml_string(o) for o in self.options)

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> str:
        if isinstance(raw, str):
            for option in self.options:
                if raw.strip().lower() == option.lower():
                    return option
            raise Invalid(self.expected, hint=did_you_mean(raw.strip(), self.options))
        raise Invalid(self.expected)


class TimeZoneKind(Kind):
    expected = 'an IANA time zone like "America/Sao_Paulo"'

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> ZoneInfo:
        if not isinstance(raw, str) or not raw.strip():
            raise Invalid(self.expected)
        try:
            return ZoneInfo(raw.strip())
        except (ZoneInfoNotFoundError, ValueError, OSError):
            hint = did_you_mean(raw.strip(), sorted(available_timezones()))
            raise Invalid(self.expected, hint=hint or "see the tz database's zone names") from None


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

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> date:
        value = _to_date(raw)
        if value is None:
            raise Invalid(self.expected, hint="YYYY-MM-DD, a real calendar day")
        return value


class Ranges(Kind):
    """Opening ranges of one day: sorted, neither overlapping nor touching."""

    expected = 'a list of time ranges like ["07:30-12:00", "13:00-17:30"]'

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> tuple[TimeRange, ...]:
        if not isinstance(raw, list):
            raise Invalid(self.expected, hint="[] closes the day")
        ranges: list[TimeRange] = []
        for item in raw:
            if not isinstance(item, str):
                raise Invalid(self.expected, found=show(item))
            try:
                ranges.append(TimeRange.parse(item))
            except ValueError:
                raise Invalid(
                    self.expected,
                    found=show(item),
                    hint="HH:MM-HH:MM on a 24-hour clock, ending after it starts "
                    "(a range cannot cross midnight)",
                ) from None
        ranges.sort()
        for before, after in itertools.pairwise(ranges):
            if after.start < before.end:
                raise Invalid(
                    "ranges that do not overlap",
                    found=f'"{before}" and "{after}"',
                    hint="a day's ranges must be separate, with breaks between them",
                )
            if after.start == before.end:
                raise Invalid(
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

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> Any:
        if not isinstance(raw, list):
            raise Invalid(self.expected)
        if len(raw) < self.min_items:
            raise Invalid(self.expected)
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

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> Path:
        if not isinstance(raw, str) or not raw.strip():
            raise Invalid(self.expected)
        resolved = ctx.resolve(raw.strip())
        if self.must_exist and not resolved.is_file():
            why = "is not a file" if resolved.exists() else "does not exist"
            raise Invalid("an existing file", found=f"{show(raw)} ({resolved} {why})")
        return resolved


class Url(Kind):
    def __init__(
        self, expected: str = 'an http(s) URL like "https://cal.example.com/ana/work/"'
    ) -> None:
        self.expected = expected

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> str:
        if not isinstance(raw, str):
            raise Invalid(self.expected)
        value = raw.strip()
        try:
            parts = urlsplit(value)
            _ = parts.port  # raises ValueError for a bad port
        except ValueError:
            raise Invalid(self.expected) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid(self.expected)
        if parts.password is not None:
            masked = value.replace(f":{parts.password}@", ":***@", 1)
            raise Invalid(
                "a URL without a password",
                found=show(masked),
                hint="put the user name in username and the password in a file named by "
                "password_file",
            )
        return value


class Listen(Kind):
    expected = 'an address and port like "127.0.0.1:8080"'

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> tuple[str, int]:
        if not isinstance(raw, str):
            raise Invalid(self.expected)
        match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^\s:\[\]]+):(\d{1,5})", raw.strip())
        if not match:
            raise Invalid(
                self.expected,
                hint='write host:port; an IPv6 address goes in brackets, "[::1]:8080"',
            )
        host = match.group(1) or match.group(3)
        port = int(match.group(2) or match.group(4))
        if port > 65535:
            raise Invalid(self.expected, hint="ports go up to 65535")
        return host, port


class ClosedDates(Kind):
    expected = (
        'a list of dates like ["2026-12-24"], '
        'or a table of dates and names like { "2026-12-24" = "Véspera de Natal" }'
    )

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> Any:
        entries: list[tuple[object, object, KeyPath]]
        if isinstance(raw, list):
            entries = [(item, "", (*path, n)) for n, item in enumerate(raw)]
        elif isinstance(raw, dict):
            entries = [(key, label, (*path, key)) for key, label in raw.items()]
        else:
            raise Invalid(self.expected)
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

    ``example`` is shown in the example file for a key with no default. The key fills the
    field of the same name in its section's typed class (:mod:`daemon.config.model`), or
    the field named by ``attribute`` (``admin_token_file`` fills ``admin_token``), with the
    converted value passed through ``then`` when given (``frozenset``, :func:`zero_is_none`).
    A plain key is written as that field, with :func:`daemon.config.model.setting`.
    """

    name: str
    kind: Kind
    default: object = OPTIONAL
    help: str = ""
    example: object = None
    attribute: str = ""
    then: Callable[[Any], Any] | None = None

    @property
    def field_name(self) -> str:
        """The typed field this key fills."""
        return self.attribute or self.name

    def typed(self, value: object) -> Any:
        """The converted ``value`` as its typed field holds it."""
        return value if self.then is None else self.then(value)


def zero_is_none(value: Any) -> Any:
    """For keys where 0 means "off": the typed field holds ``None`` instead."""
    return value or None


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

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> Any:
        if not isinstance(raw, dict):
            raise Invalid(self.expected)
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
        ctx: Context,
        path: KeyPath,
        known: Mapping[str, Setting],
        variant: str | None,
        variant_keys: Mapping[str, str],
    ) -> None:
        where = (*path, name)
        file_key = f"{name}_file"
        secret_setting = next((s for s in self.every_setting() if s.name == file_key), None)
        if secret_setting is not None and secret_setting.kind.holds_secret:
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
            hint = did_you_mean(name, list(known)) or "known keys: " + ", ".join(known)
            ctx.report(where, "a known key", "an unknown key", hint)

    def every_setting(self) -> Iterator[Setting]:
        """The keys of every variant too."""
        yield from self.settings
        for settings in self.variants.values():
            yield from settings


class ArrayOfTables(Kind):
    def __init__(self, table: Table, *, name: str, min_items: int = 0) -> None:
        self.table = table
        self.name = name
        self.min_items = min_items
        self.expected = f"a list of tables, each written [[{name}]]"

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> Any:
        if isinstance(raw, dict):
            raise Invalid(
                self.expected,
                found=f"a single table [{self.name}]",
                hint=f"write [[{self.name}]] (double brackets) before each entry",
            )
        if not isinstance(raw, list):
            raise Invalid(self.expected)
        if len(raw) < self.min_items:
            raise Invalid(f"at least one [[{self.name}]] entry", found="none")
        return [ctx.convert(self.table, item, (*path, n)) for n, item in enumerate(raw)]
