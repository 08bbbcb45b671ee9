"""Public holidays: which ones close the desk, checked against the ``holidays`` package.

``[desk] holidays`` names a country, optionally a subdivision and categories; each is checked
against what the package knows, with a suggestion for a misspelt code. The loaded
configuration hands the rules a :class:`HolidayCalendar` in the desk's language. The package
is reached only through ``holidays_internals``, which loads the desk's country alone.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from daemon.config.holidays_internals import country_codes, country_holidays, open_door
from daemon.config.kinds import BAD, REQUIRED, Context, Invalid, Kind, ListOf, Setting, Table, Text
from daemon.config.problems import KeyPath, did_you_mean, show

open_door()  # as early as can be: once any module imports holidays, its packages load whole


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

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> Any:
        if raw is False:
            return None
        if not isinstance(raw, dict):
            raise Invalid(self.expected)
        values = self.table.convert(raw, ctx, path)
        if BAD in values.values():
            return BAD
        return _holiday_source(values, ctx, path)


def _holiday_source(values: Mapping[str, Any], ctx: Context, path: KeyPath) -> Any:
    supported = country_codes()
    country = str(values["country"]).upper()
    if country not in supported:
        ctx.report(
            (*path, "country"),
            'an ISO 3166 country code known to the holidays package, like "BR"',
            show(values["country"]),
            did_you_mean(country, sorted(supported)) or 'e.g. "BR", "PT", "US"',
        )
        return BAD
    base = country_holidays(country)
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
                did_you_mean(subdivision.upper(), sorted(set(codes.values()))),
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
        self._holidays = country_holidays(
            country, subdiv=subdivision, categories=self.categories or None, language=language
        )

    def get(self, key: date, default: None = None) -> str | None:
        with self._lock:
            name = self._holidays.get(key)
        return default if name is None else str(name)

    def __str__(self) -> str:
        return str(HolidaySource(self.country, self.subdivision, self.categories))


def holiday_language(source: HolidaySource, language: str) -> str | None:
    """The holidays package's language for the desk's: the same tag (``pt_BR``), else the
    same language (``es``, ``pt_PT``, ``en_US``), else the country's own (the names people
    there use: ``pt_BR`` for an ``es`` desk in Brazil). Never ``None`` when the package
    knows the country's language: without one it would pick by the process's locale."""
    base = country_holidays(source.country)
    supported = tuple(getattr(base, "supported_languages", ()))
    wanted = language.replace("-", "_")
    if wanted in supported:
        return wanted
    primary = wanted.split("_")[0]
    same = next((tag for tag in supported if tag.split("_")[0] == primary), None)
    return same or getattr(base, "default_language", None)
